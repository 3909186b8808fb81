package nginxconf

import (
	"fmt"
	"strings"
)

const maxSnippetLen = 16 << 10

// snippetServer lists directives a snippet may place in a server block. All are valid in
// nginx's server context, read no files and open no blocks.
var snippetServer = setOf(
	"add_header", "add_trailer", "expires", "etag", "if_modified_since",
	"gzip", "gzip_buffers", "gzip_comp_level", "gzip_disable", "gzip_http_version",
	"gzip_min_length", "gzip_proxied", "gzip_types", "gzip_vary",
	"client_body_timeout", "client_header_timeout", "client_body_buffer_size",
	"client_header_buffer_size", "large_client_header_buffers",
	"keepalive_timeout", "keepalive_requests", "send_timeout", "reset_timedout_connection",
	"lingering_close", "lingering_time", "lingering_timeout",
	"limit_rate", "limit_rate_after",
	"limit_req", "limit_req_status", "limit_req_log_level", "limit_req_dry_run",
	"limit_conn", "limit_conn_status", "limit_conn_log_level", "limit_conn_dry_run",
	"sub_filter", "sub_filter_once", "sub_filter_types", "sub_filter_last_modified",
	"charset", "charset_types", "override_charset", "source_charset",
	"server_tokens", "ignore_invalid_headers", "underscores_in_headers", "chunked_transfer_encoding",
	"tcp_nodelay", "tcp_nopush", "log_not_found", "merge_slashes", "port_in_redirect",
	"absolute_redirect", "server_name_in_redirect",
	"real_ip_header", "set_real_ip_from", "real_ip_recursive",
)

// snippetProxy lists proxy directives a snippet may set; they are rendered inside every
// proxying location of the domain, next to the headers the renderer manages.
var snippetProxy = setOf(
	"proxy_buffering", "proxy_buffer_size", "proxy_buffers", "proxy_busy_buffers_size",
	"proxy_request_buffering", "proxy_max_temp_file_size", "proxy_temp_file_write_size",
	"proxy_set_header", "proxy_hide_header", "proxy_pass_header", "proxy_ignore_headers",
	"proxy_intercept_errors", "proxy_redirect", "proxy_cookie_path", "proxy_cookie_domain",
	"proxy_cookie_flags", "proxy_next_upstream", "proxy_next_upstream_tries",
	"proxy_next_upstream_timeout", "proxy_ssl_server_name", "proxy_ssl_name", "proxy_ssl_protocols",
	"proxy_socket_keepalive", "proxy_pass_request_body", "proxy_pass_request_headers",
	"proxy_ignore_client_abort", "proxy_limit_rate",
)

// managedProxyHeaders are request headers every proxying location sets itself.
var managedProxyHeaders = setOf(
	"host", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "upgrade", "connection",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// snippetDirective is one checked snippet directive, ready to render.
type snippetDirective struct {
	name string
	args []string
}

func (d snippetDirective) String() string {
	var b strings.Builder
	b.WriteString(d.name)
	for _, a := range d.args {
		b.WriteByte(' ')
		b.WriteString(quoteArg(a))
	}
	b.WriteByte(';')
	return b.String()
}

// parsedSnippet is a snippet split by where its directives are rendered.
type parsedSnippet struct {
	server []snippetDirective
	proxy  []snippetDirective
}

// checkSnippet parses a snippet and checks every directive against the allowlist. It returns
// one message per refused directive, prefixed with its line.
func checkSnippet(src string) (parsedSnippet, []string) {
	var out parsedSnippet
	if len(src) > maxSnippetLen {
		return out, []string{fmt.Sprintf("must be at most %d bytes long", maxSnippetLen)}
	}
	if strings.IndexByte(src, 0) >= 0 {
		return out, []string{"must not contain NUL bytes"}
	}
	ds, err := parseConfig(src)
	if err != nil {
		return out, []string{err.Error()}
	}
	var msgs []string
	for _, d := range ds {
		if msg := checkSnippetDirective(d); msg != "" {
			msgs = append(msgs, fmt.Sprintf("line %d: %s", d.line, msg))
			continue
		}
		sd := snippetDirective{name: d.name, args: make([]string, len(d.args))}
		for i, a := range d.args {
			sd.args[i] = a.text
		}
		if snippetProxy[d.name] {
			out.proxy = append(out.proxy, sd)
		} else {
			out.server = append(out.server, sd)
		}
	}
	return out, msgs
}

func checkSnippetDirective(d directive) string {
	name := d.name
	if d.hasBlock {
		return fmt.Sprintf("%q opens a block; blocks (location, if, map ...) are not allowed in snippets", name)
	}
	switch {
	case name == "include" || name == "load_module":
		return fmt.Sprintf("%q would read files outside the managed configuration and is not allowed", name)
	case strings.Contains(name, "_by_lua") || strings.HasPrefix(name, "lua_"):
		return fmt.Sprintf("%q runs Lua code and is not allowed", name)
	case strings.HasPrefix(name, "perl"):
		return fmt.Sprintf("%q runs Perl code and is not allowed", name)
	case strings.HasPrefix(name, "js_"):
		return fmt.Sprintf("%q runs JavaScript and is not allowed", name)
	case name == "root" || name == "alias":
		return fmt.Sprintf("%q would serve files outside the managed tree and is not allowed", name)
	case name == "proxy_pass" || name == "proxy_http_version":
		return fmt.Sprintf("%q is set by the route; configure it there", name)
	case name == "proxy_connect_timeout" || name == "proxy_read_timeout" || name == "proxy_send_timeout":
		return fmt.Sprintf("%q is set from the upstream's timeouts; configure it there", name)
	case strings.HasPrefix(name, "ssl_"):
		return fmt.Sprintf("%q is managed with the certificate and is not allowed", name)
	}
	if !snippetServer[name] && !snippetProxy[name] {
		return fmt.Sprintf("directive %q is not allowed in snippets; allowed are add_header, expires, gzip*, limit_*, sub_filter*, client_*_timeout, proxy_* buffering and header options and similar", name)
	}
	if len(d.args) == 0 {
		return fmt.Sprintf("%q needs at least one argument", name)
	}
	for _, a := range d.args {
		if len(a.text) > 1024 {
			return fmt.Sprintf("arguments of %q must be at most 1024 bytes long", name)
		}
		for i := 0; i < len(a.text); i++ {
			if c := a.text[i]; c < 0x20 || c == 0x7f {
				return fmt.Sprintf("arguments of %q must not contain control characters", name)
			}
		}
	}
	if name == "proxy_set_header" && managedProxyHeaders[strings.ToLower(d.args[0].text)] {
		return fmt.Sprintf("header %q is set by Gatehouse (see the route's preserve-host and WebSocket options)", d.args[0].text)
	}
	return ""
}
