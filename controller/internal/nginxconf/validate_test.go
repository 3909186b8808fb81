package nginxconf

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeDomainName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "Example.COM", want: "example.com"},
		{in: "example.com.", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "*.Bücher.example", want: "*.xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "a-b.c-d.example", want: "a-b.c-d.example"},
		{in: "例え.テスト", want: "xn--r8jz45g.xn--zckzah"},
		{in: "localhost", wantErr: "fully qualified"},
		{in: "", wantErr: "must not be empty"},
		{in: "https://example.com", wantErr: "without a scheme"},
		{in: "-a.example.com", wantErr: "hyphen"},
		{in: "a..example.com", wantErr: "empty labels"},
		{in: "a.*.example.com", wantErr: "only letters"},
		{in: "*example.com", wantErr: "only letters"},
		{in: "exa_mple.com", wantErr: "only letters"},
		{in: strings.Repeat("a", 64) + ".com", wantErr: "at most 63"},
		{in: strings.Repeat(strings.Repeat("a", 60)+".", 5) + "com", wantErr: "at most 253"},
	}
	for _, tt := range tests {
		got, err := NormalizeDomainName(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeDomainName(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeDomainName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeFillsDefaults(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.ConfigDir = ""
	cfg.Upstreams[0].Targets[0].Host = "[::1]"
	cfg.Domains = []Domain{{
		Name:    "Bücher.Example",
		Aliases: []string{"WWW.bücher.example"},
		Allow:   []string{"192.0.2.77/24", "2001:DB8::1"},
		Routes:  []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "hi"}},
	}}
	cfg.Streams = []Stream{{Name: "s", ListenPort: 2222, Upstream: "app"}}
	n, fe := Normalize(cfg)
	if fe != nil {
		t.Fatal(fe)
	}
	d := n.Domains[0]
	checks := []struct{ name, got, want string }{
		{"config dir", n.ConfigDir, DefaultConfigDir},
		{"cache dir", n.CacheDir, "/etc/nginx/gatehouse/cache"},
		{"domain", d.Name, "xn--bcher-kva.example"},
		{"alias", d.Aliases[0], "www.xn--bcher-kva.example"},
		{"allow[0]", d.Allow[0], "192.0.2.0/24"},
		{"allow[1]", d.Allow[1], "2001:db8::1"},
		{"route match", string(d.Routes[0].Match), "prefix"},
		{"content type", d.Routes[0].ContentType, "text/plain"},
		{"method", string(n.Upstreams[0].Method), "round_robin"},
		{"target host", n.Upstreams[0].Targets[0].Host, "::1"},
		{"protocol", string(n.Streams[0].Protocol), "tcp"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if n.HTTPPort != 80 || n.HTTPSPort != 443 {
		t.Errorf("ports = %d/%d, want 80/443", n.HTTPPort, n.HTTPSPort)
	}
}

// TestValidateRules covers rules that concern more than one field's characters.
func TestValidateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*NodeConfig)
		field  string
		msg    string
	}{
		{"duplicate domain across alias", func(c *NodeConfig) {
			c.Domains = append(c.Domains, Domain{Name: "other.example.com", Aliases: []string{"EXAMPLE.com"}})
		}, "domains[1].aliases[0]", "already used by domains[0].name"},
		{"duplicate route", func(c *NodeConfig) {
			c.Domains[0].Routes = append(c.Domains[0].Routes, Route{Path: "/", Kind: RouteRespond, Status: 200})
		}, "domains[0].routes[1].path", "already matches"},
		{"acme path reserved", func(c *NodeConfig) {
			c.Domains[0].Routes[0].Path = "/.well-known/acme-challenge/x"
		}, "domains[0].routes[0].path", "reserved for ACME"},
		{"acme path prefix reserved", func(c *NodeConfig) {
			c.Domains[0].Routes[0].Path = "/.well-known/acme-challenge"
		}, "domains[0].routes[0].path", "reserved for ACME"},
		{"unknown upstream", func(c *NodeConfig) { c.Domains[0].Routes[0].Upstream = "nope" }, "domains[0].routes[0].upstream", `no upstream is named "nope"`},
		{"force https without cert", func(c *NodeConfig) { c.Domains[0].ForceHTTPS = true }, "domains[0].force_https", "needs a certificate"},
		{"alias redirect to a wildcard", func(c *NodeConfig) { c.Domains[0].Name, c.Domains[0].RedirectAliases = "*.example.com", true }, "domains[0].redirect_aliases", "not a wildcard"},
		{"rate of zero", func(c *NodeConfig) { c.Domains[0].RateLimit = &RateLimit{Rate: 0} }, "domains[0].rate_limit", "from 1 to"},
		{"rate too high", func(c *NodeConfig) { c.Domains[0].RateLimit = &RateLimit{Rate: MaxRate + 1} }, "domains[0].rate_limit", "from 1 to"},
		{"rate per hour", func(c *NodeConfig) { c.Domains[0].RateLimit = &RateLimit{Rate: 5, Unit: "h"} }, "domains[0].rate_unit", "per minute"},
		{"rate unit with syntax", func(c *NodeConfig) { c.Domains[0].RateLimit = &RateLimit{Rate: 5, Unit: "s; evil"} }, "domains[0].rate_unit", "per second"},
		{"negative burst", func(c *NodeConfig) { c.Domains[0].RateLimit = &RateLimit{Rate: 5, Burst: -1} }, "domains[0].rate_burst", "from 0 to"},
		{"hsts without cert", func(c *NodeConfig) { c.Domains[0].HSTS = true }, "domains[0].hsts", "needs a certificate"},
		{"cache size without a unit", func(c *NodeConfig) { c.CacheMaxSize = "500" }, "cache_max_size", "megabytes or gigabytes"},
		{"cache size too small", func(c *NodeConfig) { c.CacheMaxSize = "9m" }, "cache_max_size", "from 10m"},
		{"cache size too large", func(c *NodeConfig) { c.CacheMaxSize = "10001g" }, "cache_max_size", "to 10000g"},
		{"cache size with syntax", func(c *NodeConfig) { c.CacheMaxSize = "1g inactive=1s" }, "cache_max_size", "such as"},
		{"unknown answer not offered", func(c *NodeConfig) { c.UnknownNames = "redirect" }, "unknown_names", `must be "close"`},
		{"the status block's name", func(c *NodeConfig) { c.Domains[0].Name = "Gatehouse-Status.Invalid" }, "domains[0].name", "reserved for the status block"},
		{"the status block's name as an alias", func(c *NodeConfig) { c.Domains[0].Aliases = []string{"gatehouse-status.invalid"} }, "domains[0].aliases[0]", "reserved"},
		{"negative cache ttl", func(c *NodeConfig) { c.Domains[0].Routes[0].CacheTTL = -1 }, "domains[0].routes[0].cache_ttl", "between 0 and 2592000"},
		{"cache ttl over 30 days", func(c *NodeConfig) { c.Domains[0].Routes[0].CacheTTL = MaxCacheTTL + 1 }, "domains[0].routes[0].cache_ttl", "30 days"},
		{"gzip snippet beside compression", func(c *NodeConfig) { c.Domains[0].Compress, c.Domains[0].Snippet = true, "gzip_comp_level 9;" }, "domains[0].snippet", "turn compression off"},
		{"cache dir with syntax", func(c *NodeConfig) { c.CacheDir = "/var/cache/x;evil" }, "cache_dir", "absolute path"},
		{"cache dir at the root", func(c *NodeConfig) { c.CacheDir = "/" }, "cache_dir", "absolute path"},
		{"http2 without cert", func(c *NodeConfig) { c.Domains[0].HTTP2 = true }, "domains[0].http2", "needs a certificate"},
		{"backup with hash", func(c *NodeConfig) {
			c.Upstreams[0].Method, c.Upstreams[0].HashKey = MethodHash, "$uri"
			c.Upstreams[0].Targets = append(c.Upstreams[0].Targets, Target{Host: "127.0.0.1", Port: 1, Backup: true})
		}, "upstreams[0].targets[1].backup", "cannot be used with the hash method"},
		{"only backups", func(c *NodeConfig) { c.Upstreams[0].Targets[0].Backup = true }, "upstreams[0].targets", "not a backup"},
		{"no targets", func(c *NodeConfig) { c.Upstreams[0].Targets = nil }, "upstreams[0].targets", "at least one"},
		{"hash without key", func(c *NodeConfig) { c.Upstreams[0].Method = MethodHash }, "upstreams[0].hash_key", "must name the variables"},
		{"key without hash", func(c *NodeConfig) { c.Upstreams[0].HashKey = "$uri" }, "upstreams[0].hash_key", `only used with the "hash" method`},
		{"unknown method", func(c *NodeConfig) { c.Upstreams[0].Method = "fastest" }, "upstreams[0].method", "must be one of"},
		{"duplicate upstream", func(c *NodeConfig) { c.Upstreams = append(c.Upstreams, c.Upstreams[0]) }, "upstreams[1].name", "already named"},
		{"stream with ip_hash", func(c *NodeConfig) {
			c.Upstreams[0].Method = MethodIPHash
			c.Streams = []Stream{{Name: "s", ListenPort: 2222, Upstream: "app"}}
		}, "streams[0].upstream", "ip_hash"},
		{"stream hash key", func(c *NodeConfig) {
			c.Upstreams[0].Method, c.Upstreams[0].HashKey = MethodHash, "$request_uri"
			c.Streams = []Stream{{Name: "s", ListenPort: 2222, Upstream: "app"}}
		}, "streams[0].upstream", "not available to streams"},
		{"stream on http port", func(c *NodeConfig) { c.Streams = []Stream{{Name: "s", ListenPort: 80, Upstream: "app"}} }, "streams[0].listen_port", "used by the HTTP(S) servers"},
		{"stream port twice", func(c *NodeConfig) {
			c.Streams = []Stream{{Name: "a", ListenPort: 53, Protocol: ProtocolUDP, Upstream: "app"}, {Name: "b", ListenPort: 53, Protocol: ProtocolUDP, Upstream: "app"}}
		}, "streams[1].listen_port", "already used by streams[0]"},
		{"stream bad protocol", func(c *NodeConfig) {
			c.Streams = []Stream{{Name: "s", ListenPort: 22, Protocol: "sctp", Upstream: "app"}}
		}, "streams[0].protocol", `"tcp" or "udp"`},
		{"same ports", func(c *NodeConfig) { c.HTTPPort, c.HTTPSPort = 8080, 8080 }, "https_port", "must differ"},
		{"missing webroot", func(c *NodeConfig) { c.Webroot = "" }, "webroot", "must be set"},
		{"redirect code", func(c *NodeConfig) {
			c.Domains[0].Routes[0] = Route{Path: "/", Kind: RouteRedirect, Code: 303, Target: "https://example.org/"}
		}, "domains[0].routes[0].code", "301, 302, 307 or 308"},
		{"respond 3xx", func(c *NodeConfig) { c.Domains[0].Routes[0] = Route{Path: "/", Kind: RouteRespond, Status: 302} }, "domains[0].routes[0].status", "use a redirect route"},
		{"unknown kind", func(c *NodeConfig) { c.Domains[0].Routes[0].Kind = "static" }, "domains[0].routes[0].kind", `"proxy", "redirect" or "respond"`},
		{"bad match", func(c *NodeConfig) { c.Domains[0].Routes[0].Match = "regex" }, "domains[0].routes[0].match", `"prefix" or "exact"`},
		{"duplicate user", func(c *NodeConfig) {
			h := "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
			c.Domains[0].BasicAuthUsers = []BasicAuthUser{{User: "a", PasswordHash: h}, {User: "a", PasswordHash: h}}
		}, "domains[0].basic_auth_users[1].user", "listed twice"},
		{"plain password instead of hash", func(c *NodeConfig) {
			c.Domains[0].BasicAuthUsers = []BasicAuthUser{{User: "a", PasswordHash: "hunter2"}}
		}, "domains[0].basic_auth_users[0].password_hash", "crypt hash"},
		{"weight range", func(c *NodeConfig) { c.Upstreams[0].Targets[0].Weight = -1 }, "upstreams[0].targets[0].weight", "between 0 and 1000"},
		{"timeout range", func(c *NodeConfig) { c.Upstreams[0].ReadTimeout = 86401 }, "upstreams[0].read_timeout", "between 0 and 86400 seconds"},
		{"port range", func(c *NodeConfig) { c.Upstreams[0].Targets[0].Port = 65536 }, "upstreams[0].targets[0].port", "between 1 and 65535"},
		{"zero port", func(c *NodeConfig) { c.Upstreams[0].Targets[0].Port = 0 }, "upstreams[0].targets[0].port", "between 1 and 65535"},
		{"too many aliases", func(c *NodeConfig) { c.Domains[0].Aliases = make([]string, maxAliases+1) }, "domains[0].aliases", "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := validBase()
			tt.mutate(&cfg)
			fe := Validate(cfg)
			if !strings.Contains(fe[tt.field], tt.msg) {
				t.Errorf("Validate()[%q] = %q, want it to contain %q (all: %v)", tt.field, fe[tt.field], tt.msg, fe)
			}
		})
	}
	if fe := Validate(validBase()); fe != nil {
		t.Fatalf("the base configuration of these cases is invalid: %v", fe)
	}
}

func validBase() NodeConfig {
	cfg := baseConfig()
	cfg.Domains = []Domain{{Name: "example.com", Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}}}
	return cfg
}

// hostile values refused by every field that renders unquoted or holds a name or path.
var hostileCommon = []string{
	"a;b", "a{", "a}", "#a", `a"b`, "a'b", "$host", `a\b`, "a\nb", "a\x00b", "a b",
	"include /etc/passwd", "a\rb", "\t", "",
}

// TestInjection feeds hostile values to every field that reaches a configuration file and
// expects each to be refused with a message on that field.
func TestInjection(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 254)
	quotedText := []string{`a"b`, `a\b`, "$host", "${host}", "a'b", "a\nb", "a\rb", "a\x00b", "a\x7fb", "\xff"}
	fields := []struct {
		field   string
		set     func(*NodeConfig, string)
		hostile []string
	}{
		{"domains[0].name", func(c *NodeConfig, v string) { c.Domains[0].Name = v },
			with(hostileCommon, long+".com", strings.Repeat("a", 64)+".com", "https://example.com", "example.com:80", "example.com/x", "*.*.example.com", "[::1]", "192.0.2.1/24")},
		{"domains[0].aliases[0]", func(c *NodeConfig, v string) { c.Domains[0].Aliases = []string{v} },
			with(hostileCommon, long+".com", "http://www.example.com", "www.example.com;")},
		{"domains[0].routes[0].path", func(c *NodeConfig, v string) { c.Domains[0].Routes[0].Path = v },
			with(hostileCommon, "relative", "/a b", "/a?b", "/a%3b", "/a*", "/a(b)", "/"+long+long+long+long+long)},
		{"domains[0].routes[0].rewrite_prefix", func(c *NodeConfig, v string) { c.Domains[0].Routes[0].RewritePrefix = v },
			with(hostileCommon[:len(hostileCommon)-1], "v1", "/a?b=$arg_x")},
		{"domains[0].routes[0].target", func(c *NodeConfig, v string) {
			c.Domains[0].Routes[0] = Route{Path: "/", Kind: RouteRedirect, Code: 301, Target: v}
		}, with(quotedText, "", "/relative", "javascript:alert(1)", "ftp://example.com/", "https://user:pw@example.com/", "https://exa mple.com/", "https://example.com/{x}", "https://example.com:99999/", "https://-bad.example.com/", "https://example.com/ü")},
		{"domains[0].routes[0].body", func(c *NodeConfig, v string) {
			c.Domains[0].Routes[0] = Route{Path: "/", Kind: RouteRespond, Status: 200, Body: v}
		}, with(quotedText, strings.Repeat("a", maxBodyLen+1))},
		{"domains[0].maintenance_message", func(c *NodeConfig, v string) {
			c.Domains[0].Maintenance, c.Domains[0].MaintenanceMessage = true, v
		}, with(quotedText, strings.Repeat("a", maxBodyLen+1))},
		{"domains[0].routes[0].content_type", func(c *NodeConfig, v string) {
			c.Domains[0].Routes[0] = Route{Path: "/", Kind: RouteRespond, Status: 200, ContentType: v}
		}, with(hostileCommon[:len(hostileCommon)-1], "text/plain; charset=utf-8", "text", "Text/Plain")},
		{"domains[0].response_headers[0].name", func(c *NodeConfig, v string) {
			c.Domains[0].ResponseHeaders = []Header{{Name: v, Value: "x"}}
		}, with(hostileCommon, "X-A:b", "-X", strings.Repeat("X", 65))},
		{"domains[0].response_headers[0].value", func(c *NodeConfig, v string) {
			c.Domains[0].ResponseHeaders = []Header{{Name: "X-A", Value: v}}
		}, with(quotedText, "", "ü", strings.Repeat("a", maxHeaderValue+1))},
		{"domains[0].basic_auth_users[0].user", func(c *NodeConfig, v string) {
			c.Domains[0].BasicAuthUsers = []BasicAuthUser{{User: v, PasswordHash: "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"}}
		}, with(hostileCommon, "a:b", strings.Repeat("a", 65))},
		{"domains[0].basic_auth_users[0].password_hash", func(c *NodeConfig, v string) {
			c.Domains[0].BasicAuthUsers = []BasicAuthUser{{User: "a", PasswordHash: v}}
		}, with(hostileCommon, "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1\nb:x", "$1$abc$def", "$apr1$x$y")},
		{"domains[0].allow[0]", func(c *NodeConfig, v string) { c.Domains[0].Allow = []string{v} },
			with(hostileCommon, "all", "192.0.2.1/33", "fe80::1%eth0", "example.com", "192.0.2.1;deny")},
		{"domains[0].deny[0]", func(c *NodeConfig, v string) { c.Domains[0].Deny = []string{v} },
			with(hostileCommon, "all", "10.0.0.0/8 ")},
		{"domains[0].certificate.cert_path", func(c *NodeConfig, v string) {
			c.Domains[0].Certificate = &CertRef{CertPath: v, KeyPath: "/k.pem"}
		}, with(hostileCommon, "relative.pem", "/etc/../shadow", "/a//b", "/a/./b")},
		{"domains[0].certificate.key_path", func(c *NodeConfig, v string) {
			c.Domains[0].Certificate = &CertRef{CertPath: "/c.pem", KeyPath: v}
		}, with(hostileCommon, "/a/../b")},
		{"domains[0].client_max_body_size", func(c *NodeConfig, v string) { c.Domains[0].ClientMaxBodySize = v },
			with(hostileCommon[:len(hostileCommon)-1], "10mb", "-1", "1234567m", "10 m")},
		{"domains[0].snippet", func(c *NodeConfig, v string) { c.Domains[0].Snippet = v }, []string{
			"include /etc/passwd;", "load_module /tmp/x.so;", "content_by_lua_block { os.execute('id') }",
			"access_by_lua 'x';", "perl_set $x 'sub { 1 }';", "js_import x.js;", "root /etc;", "alias /;",
			"location / { return 200; }", "if ($host) { return 200; }", "add_header X y", `add_header "X;`,
			"server_name evil.example;", "proxy_pass http://evil;", "ssl_certificate /x;", "access_log /tmp/x;",
			"proxy_set_header Host evil;", "proxy_read_timeout 1s;", "}", "add_header X \"a\nb\";", "gzip;",
			"add_header X y;\x00", "error_log /tmp/e;", "limit_req_zone $x zone=z:1m rate=1r/s;",
		}},
		{"upstreams[0].name", func(c *NodeConfig, v string) { c.Upstreams[0].Name = v },
			with(hostileCommon, "App", strings.Repeat("a", 64), "-a")},
		{"upstreams[0].targets[0].host", func(c *NodeConfig, v string) { c.Upstreams[0].Targets[0].Host = v },
			with(hostileCommon, "http://backend", "backend:8080", "unix:/tmp/x.sock", "*.example.com", "fe80::1%eth0", long)},
		{"upstreams[0].hash_key", func(c *NodeConfig, v string) {
			c.Upstreams[0].Method, c.Upstreams[0].HashKey = MethodHash, v
		}, with(hostileCommon[:6], `$a\b`, "$request_uri;", "$request_uri x", "request_uri", "$secret_var", "$http_", "${uri}", "$uri\n", "$uri consistent")},
		{"streams[0].name", func(c *NodeConfig, v string) {
			c.Streams = []Stream{{Name: v, ListenPort: 2222, Upstream: "app"}}
		}, with(hostileCommon, "S")},
		{"webroot", func(c *NodeConfig, v string) { c.Webroot = v }, with(hostileCommon[:len(hostileCommon)-1], "relative", "/a/../b")},
		{"config_dir", func(c *NodeConfig, v string) { c.ConfigDir = v }, with(hostileCommon[:len(hostileCommon)-1], "/a/..")},
		{"cache_max_size", func(c *NodeConfig, v string) { c.CacheMaxSize = v }, with(hostileCommon[:len(hostileCommon)-1], "1g;", "1t", "-1g", "0m", "1g\nproxy_cache off")},
		{"cache_dir", func(c *NodeConfig, v string) { c.CacheDir = v }, with(hostileCommon[:len(hostileCommon)-1], "relative", "/a/../b", "/")},
		{"bind_address", func(c *NodeConfig, v string) { c.BindAddress = v }, with(hostileCommon[:len(hostileCommon)-1], "localhost", "0.0.0.0:80", "fe80::1%lo")},
		{"real_ip.header", func(c *NodeConfig, v string) { c.RealIP = &RealIP{From: []string{"10.0.0.0/8"}, Header: v} },
			with(hostileCommon[:len(hostileCommon)-1], "X-Evil", "X-Forwarded-For;", "Host")},
		{"real_ip.from[0]", func(c *NodeConfig, v string) { c.RealIP = &RealIP{From: []string{v}} },
			with(hostileCommon, "10.0.0.0/33", "localhost", "10.0.0.1 10.0.0.2", "fe80::1%eth0")},
		{"domains[0].rate_unit", func(c *NodeConfig, v string) { c.Domains[0].RateLimit = &RateLimit{Rate: 1, Unit: RateUnit(v)} },
			with(hostileCommon[:len(hostileCommon)-1], "h", "S", "r/s")},
	}
	for _, f := range fields {
		t.Run(f.field, func(t *testing.T) {
			t.Parallel()
			for _, v := range f.hostile {
				cfg := validBase()
				f.set(&cfg, v)
				fe := Validate(cfg)
				if fe[f.field] == "" {
					t.Errorf("value %q was not refused at %s (errors: %v)", v, f.field, fe)
				}
				if _, err := Render(cfg); err == nil {
					t.Errorf("Render accepted value %q for %s", v, f.field)
				}
			}
		})
	}
}

// TestQuotedFieldsKeepPunctuationInert shows that free-text fields rendered inside quotes may
// carry nginx punctuation, and that it stays inside one argument.
func TestQuotedFieldsKeepPunctuationInert(t *testing.T) {
	t.Parallel()
	text := "a; } { # include /etc/passwd;"
	cfg := validBase()
	cfg.Domains[0].ResponseHeaders = []Header{{Name: "X-Test", Value: text}}
	cfg.Domains[0].Routes = append(cfg.Domains[0].Routes, Route{Match: MatchExact, Path: "/t", Kind: RouteRespond, Status: 200, Body: text})
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var domainConf string
	for _, f := range r.Files {
		if f.Path == "http/domain-example.com.conf" {
			domainConf = string(f.Content)
		}
	}
	ds, err := parseConfig(domainConf)
	if err != nil {
		t.Fatal(err)
	}
	var header, body bool
	walk(ds, func(d directive) {
		if d.name == "include" {
			t.Errorf("an include directive appeared in the output")
		}
		if d.name == "add_header" && len(d.args) == 3 && d.args[1].text == text {
			header = true
		}
		if d.name == "return" && len(d.args) == 2 && d.args[1].text == text {
			body = true
		}
	})
	if !header || !body {
		t.Errorf("header found %v, body found %v as single arguments:\n%s", header, body, domainConf)
	}
	nginxCheck(t, r.Files)
}

// with returns a new slice of base followed by extra; base is never modified.
func with(base []string, extra ...string) []string { return slices.Concat(base, extra) }

func walk(ds []directive, fn func(directive)) {
	for _, d := range ds {
		fn(d)
		walk(d.block, fn)
	}
}
