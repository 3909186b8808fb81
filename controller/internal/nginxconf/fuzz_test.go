package nginxconf

import (
	"strings"
	"testing"
)

// renderedDirectives are all directive names the renderer itself writes.
var renderedDirectives = setOf(
	"server", "listen", "server_name", "location", "root", "default_type", "try_files", "allow", "deny",
	"auth_basic", "auth_basic_user_file", "return", "client_max_body_size", "add_header",
	"proxy_pass", "proxy_http_version", "proxy_set_header", "proxy_connect_timeout", "proxy_read_timeout",
	"proxy_send_timeout", "proxy_timeout", "ssl_certificate", "ssl_certificate_key", "ssl_protocols", "ssl_ciphers",
	"ssl_prefer_server_ciphers", "ssl_session_timeout", "ssl_session_cache", "ssl_session_tickets",
	"upstream", "least_conn", "ip_hash", "hash", "random", "keepalive", "map",
	"server_names_hash_bucket_size", "server_names_hash_max_size",
	"access_log", "stub_status", "server_tokens", "limit_req_zone", "proxy_cache_path", "proxy_cache", "proxy_cache_key",
	"proxy_cache_valid", "proxy_cache_bypass", "proxy_no_cache", "proxy_cache_revalidate", "proxy_cache_lock",
	"proxy_cache_background_update", "proxy_cache_use_stale", "ssl_reject_handshake",
)

// blockDirectives may open blocks in rendered output.
var blockDirectives = setOf("server", "location", "upstream", "map")

// checkRendered re-parses every rendered file and fails when it contains a directive the
// renderer does not write (or a snippet may not contain), a block where none belongs, or
// text nginx would not parse. Injected bytes that escaped their quoting show up as exactly
// such foreign directives or blocks.
func checkRendered(t *testing.T, r Rendered) []directive {
	t.Helper()
	var all []directive
	for _, f := range r.Files {
		if strings.HasSuffix(f.Path, ".htpasswd") {
			for line := range strings.SplitSeq(strings.TrimSuffix(string(f.Content), "\n"), "\n") {
				if strings.Count(line, ":") != 1 {
					t.Fatalf("%s: malformed line %q", f.Path, line)
				}
			}
			continue
		}
		ds, err := parseConfig(string(f.Content))
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", f.Path, err, f.Content)
		}
		var visit func(ds []directive, parent string)
		visit = func(ds []directive, parent string) {
			for _, d := range ds {
				if parent == "map" {
					continue
				}
				if !renderedDirectives[d.name] && !snippetServer[d.name] && !snippetProxy[d.name] {
					t.Fatalf("%s: foreign directive %q at line %d:\n%s", f.Path, d.name, d.line, f.Content)
				}
				if d.hasBlock && !blockDirectives[d.name] {
					t.Fatalf("%s: directive %q opens a block at line %d", f.Path, d.name, d.line)
				}
				if d.name == "map" && (len(d.args) != 2 || d.args[0].text != "$http_upgrade" || d.args[1].text != "$gatehouse_connection_upgrade") {
					t.Fatalf("%s: unexpected map at line %d", f.Path, d.line)
				}
				all = append(all, d)
				visit(d.block, d.name)
			}
		}
		visit(ds, "")
	}
	return all
}

func hasArg(ds []directive, name, arg string) bool {
	for _, d := range ds {
		if d.name != name {
			continue
		}
		for _, a := range d.args {
			if a.text == arg {
				return true
			}
		}
	}
	return false
}

func FuzzValidateDomain(f *testing.F) {
	f.Add("example.com", "www.example.com", "/api/", "/v1/", "DENY", "ok", "https://example.org/x", "gzip on;", "192.0.2.0/24", "10m")
	f.Add("bücher.example", "*.example.org", "/", "", "a; } { #", "b; include x;", "https://x.example/#f", "add_header X \"y\";", "2001:db8::/32", "0")
	f.Add("a;b", "x{", "/a\nb", "$x", "\"", "\\", "javascript:1", "include /x;", "all", "1g;")
	f.Add("*.a.b", "A.B.C.", "/ws", "/$1", "v$x", "x\"y", "http://[::1]:8080/a?b=c", "location / {}", "::1", "5K")
	f.Fuzz(func(t *testing.T, name, alias, path, rewrite, header, body, target, snippet, acl, size string) {
		cfg := baseConfig()
		cfg.Domains = []Domain{{
			Name:              name,
			Aliases:           []string{alias},
			ClientMaxBodySize: size,
			ResponseHeaders:   []Header{{Name: "X-Fuzz", Value: header}},
			Allow:             []string{acl},
			Snippet:           snippet,
			Routes: []Route{
				{Path: path, Kind: RouteProxy, Upstream: "app", RewritePrefix: rewrite, WebSocket: true, CacheTTL: 60},
				{Match: MatchExact, Path: "/r", Kind: RouteRedirect, Code: 302, Target: target},
				{Match: MatchExact, Path: "/b", Kind: RouteRespond, Status: 200, Body: body},
			},
		}}
		fe := Validate(cfg)
		r, err := Render(cfg)
		if (fe == nil) != (err == nil) {
			t.Fatalf("Validate and Render disagree: %v / %v", fe, err)
		}
		if err != nil {
			return
		}
		ds := checkRendered(t, r)
		if !hasArg(ds, "location", path) {
			t.Fatalf("route path %q is not one location argument", path)
		}
		if !hasArg(ds, "add_header", header) {
			t.Fatalf("header value %q is not one add_header argument", header)
		}
		if !hasArg(ds, "return", body) {
			t.Fatalf("body %q is not one return argument", body)
		}
	})
}

func FuzzRender(f *testing.F) {
	f.Add("app", "127.0.0.1", 8080, "hash", "$request_uri", "db", 5432, "tcp", "")
	f.Add("a-b", "::1", 1, "least_conn", "", "s_1", 53, "udp", "127.0.0.1")
	f.Add("x;y", "h}st", 0, "ip_hash", "$uri;", "s{", 70000, "sctp", "::")
	f.Add("up", "backend.internal", 65535, "random_two_least_conn", "$remote_addr", "s", 80, "", "fe80::1%eth0")
	f.Fuzz(func(t *testing.T, upName, host string, port int, method, key, streamName string, listen int, proto, bind string) {
		cfg := NodeConfig{
			Webroot:     testRoot + "/acme",
			BindAddress: bind,
			Upstreams: []Upstream{{
				Name: upName, Method: Method(method), HashKey: key, Keepalive: 8,
				Targets: []Target{{Host: host, Port: port, MaxFails: 2}},
			}},
			Domains: []Domain{{Name: "example.com", Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: upName}}}},
			Streams: []Stream{{Name: streamName, ListenPort: listen, Protocol: Protocol(proto), Upstream: upName}},
		}
		r, err := Render(cfg)
		if err != nil {
			if _, ok := err.(FieldErrors); !ok {
				t.Fatalf("Render failed with %T, want FieldErrors: %v", err, err)
			}
			return
		}
		ds := checkRendered(t, r)
		if !hasArg(ds, "upstream", upName) || !hasArg(ds, "upstream", "gatehouse_stream_"+streamName) {
			t.Fatalf("upstream names %q / %q are not single arguments", upName, streamName)
		}
		if key != "" && !hasArg(ds, "hash", key) {
			t.Fatalf("hash key %q is not one argument", key)
		}
	})
}
