package nginxconf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the renderer's output")

func testCert() *CertRef {
	return &CertRef{CertPath: testRoot + "/tls/cert.pem", KeyPath: testRoot + "/tls/key.pem"}
}

func baseConfig() NodeConfig {
	return NodeConfig{
		Webroot:   testRoot + "/acme",
		ConfigDir: testRoot + "/release",
		Status:    true,
		Upstreams: []Upstream{{Name: "app", Targets: []Target{{Host: "127.0.0.1", Port: 8080}}}},
	}
}

// goldenCases are representative configurations; each renders to testdata/<name>.golden and
// must pass nginx -t.
func goldenCases() []struct {
	name string
	cfg  NodeConfig
} {
	minimal := baseConfig()
	minimal.Domains = []Domain{{
		Name:   "example.com",
		Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}},
	}}

	full := baseConfig()
	full.Upstreams = append(full.Upstreams, Upstream{
		Name: "api", Method: MethodLeastConn, Keepalive: 16, ConnectTimeout: 5, ReadTimeout: 60, SendTimeout: 60,
		Targets: []Target{{Host: "127.0.0.1", Port: 9001}, {Host: "::1", Port: 9001, Backup: true}},
	})
	full.Domains = []Domain{{
		Name:              "Shop.Example.com",
		Aliases:           []string{"www.shop.example.com", "bücher.example"},
		ForceHTTPS:        true,
		HSTS:              true,
		HTTP2:             true,
		ClientMaxBodySize: "25m",
		ResponseHeaders: []Header{
			{Name: "X-Frame-Options", Value: "DENY"},
			{Name: "Content-Security-Policy", Value: "default-src https:; img-src * data:; frame-ancestors none"},
		},
		BasicAuthUsers: []BasicAuthUser{
			{User: "zoe", PasswordHash: "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
			{User: "alice", PasswordHash: "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		},
		Allow:       []string{"2001:db8::/32", "192.0.2.0/24"},
		Deny:        []string{"192.0.2.13"},
		RateLimit:   &RateLimit{Rate: 20, Burst: 40},
		Certificate: testCert(),
		Snippet: `# tuned by ops
gzip on;
gzip_types text/css application/javascript;
add_header X-Served-By "gatehouse edge" always;
proxy_buffering off;
proxy_set_header X-Request-Id $request_id;
client_body_timeout 30s;`,
		Routes: []Route{
			{Path: "/", Kind: RouteProxy, Upstream: "app", PreserveHost: true},
			{Path: "/api/", Kind: RouteProxy, Upstream: "api", RewritePrefix: "/v2/"},
			{Path: "/ws", Kind: RouteProxy, Upstream: "app", WebSocket: true, PreserveHost: true},
			{Match: MatchExact, Path: "/old-shop", Kind: RouteRedirect, Code: 308, Target: "https://shop.example.com/new?from=old#top"},
			{Match: MatchExact, Path: "/healthz", Kind: RouteRespond, Status: 200, Body: "ok", ContentType: "text/plain"},
			{Path: "/robots.txt", Kind: RouteRespond, Status: 200, Body: "User-agent: *; Disallow: /admin {#}", ContentType: "text/plain"},
		},
	}}

	tlsNoForce := baseConfig()
	tlsNoForce.Domains = []Domain{{
		Name:        "*.apps.example.org",
		Certificate: testCert(),
		Routes:      []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}},
	}}

	methods := baseConfig()
	methods.Upstreams = []Upstream{
		{Name: "rr", Targets: []Target{
			{Host: "127.0.0.1", Port: 8001, Weight: 5, MaxFails: 3, FailTimeout: 30},
			{Host: "127.0.0.2", Port: 8001, Down: true},
			{Host: "localhost", Port: 8002, Backup: true},
		}},
		{Name: "lc", Method: MethodLeastConn, Keepalive: 32, Targets: []Target{{Host: "[::1]", Port: 8003}}},
		{Name: "iph", Method: MethodIPHash, Targets: []Target{{Host: "127.0.0.1", Port: 8004}, {Host: "127.0.0.1", Port: 8005}}},
		{Name: "hashed", Method: MethodHash, HashKey: "$host$request_uri", HashConsistent: true, Targets: []Target{{Host: "127.0.0.1", Port: 8006}}},
		{Name: "cookie-hash", Method: MethodHash, HashKey: "$cookie_session", Targets: []Target{{Host: "127.0.0.1", Port: 8007}}},
		{Name: "random", Method: MethodRandomTwoLeastConn, Targets: []Target{{Host: "127.0.0.1", Port: 8008}, {Host: "127.0.0.1", Port: 8009}}},
	}
	methods.Domains = []Domain{{
		Name: "lb.example.net",
		Routes: []Route{
			{Path: "/rr/", Kind: RouteProxy, Upstream: "rr"},
			{Path: "/lc/", Kind: RouteProxy, Upstream: "lc"},
			{Path: "/iph/", Kind: RouteProxy, Upstream: "iph"},
			{Path: "/hashed/", Kind: RouteProxy, Upstream: "hashed"},
			{Path: "/cookie/", Kind: RouteProxy, Upstream: "cookie-hash"},
			{Path: "/random/", Kind: RouteProxy, Upstream: "random"},
		},
	}}

	streams := baseConfig()
	streams.Upstreams = append(streams.Upstreams,
		Upstream{Name: "pg", Method: MethodHash, HashKey: "$remote_addr", HashConsistent: true, ConnectTimeout: 3, ReadTimeout: 600,
			Targets: []Target{{Host: "127.0.0.1", Port: 5432}, {Host: "127.0.0.1", Port: 5433}}},
		Upstream{Name: "dns", Targets: []Target{{Host: "127.0.0.1", Port: 5353}}},
	)
	streams.Streams = []Stream{
		{Name: "postgres", ListenPort: 15432, Upstream: "pg"},
		{Name: "dns", ListenPort: 53, Protocol: ProtocolUDP, Upstream: "dns"},
		{Name: "app-tcp", ListenPort: 8443, Protocol: ProtocolTCP, Upstream: "app"},
	}

	maintenance := baseConfig()
	maintenance.Domains = []Domain{{
		Name:               "status.example.com",
		Maintenance:        true,
		MaintenanceMessage: "Back at 14:00 UTC — we are moving to a bigger database {#}.",
		Certificate:        testCert(),
		ForceHTTPS:         true,
		Routes:             []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}},
	}}

	bound := baseConfig()
	bound.BindAddress = "127.0.0.1"
	bound.HTTPPort = 8080
	bound.HTTPSPort = 8443
	bound.RealIP = &RealIP{From: []string{"2001:db8::/32", "10.1.2.3/8", "192.0.2.1"}, Header: "cf-connecting-ip"}
	bound.Domains = []Domain{
		{Name: "b.example.com", Routes: []Route{{Match: MatchExact, Path: "/", Kind: RouteRedirect, Code: 302, Target: "https://a.example.com/"}}},
		{Name: "a.example.com", Certificate: testCert(), ForceHTTPS: true, Routes: []Route{{Path: "/static/", Kind: RouteRespond, Status: 404, Body: "gone", ContentType: "text/html"}}},
	}

	aliases := baseConfig()
	aliases.HTTPPort = 8080
	aliases.HTTPSPort = 8443
	aliases.Domains = []Domain{
		{Name: "example.com", Aliases: []string{"www.example.com", "*.old-example.com"}, RedirectAliases: true, Certificate: testCert(),
			ForceHTTPS: true, HSTS: true, HTTP2: true, Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}},
		{Name: "plain.example.net", Aliases: []string{"www.plain.example.net"}, RedirectAliases: true,
			RateLimit: &RateLimit{Rate: 30, Unit: PerMinute},
			Routes:    []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "plain"}}},
		// Nothing to redirect: rendered as without the option.
		{Name: "solo.example.org", RedirectAliases: true, Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "solo"}}},
	}

	cached := baseConfig()
	cached.Domains = []Domain{{
		Name: "assets.example.com", Compress: true, Certificate: testCert(), HSTS: true, CacheGeneration: 3,
		ResponseHeaders: []Header{{Name: "X-Content-Type-Options", Value: "nosniff"}},
		Routes: []Route{
			{Path: "/", Kind: RouteProxy, Upstream: "app", PreserveHost: true},
			{Path: "/static/", Kind: RouteProxy, Upstream: "app", CacheTTL: 3600},
			// Only proxied answers are cached: the setting is dropped here.
			{Match: MatchExact, Path: "/ping", Kind: RouteRespond, Status: 200, Body: "pong", CacheTTL: 60},
		},
	}, {
		Name:   "plain.example.com",
		Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app", CacheTTL: 90}},
	}}

	cached.CacheMaxSize = "20G"

	unknown := baseConfig()
	unknown.UnknownNames = UnknownClose
	unknown.Domains = []Domain{
		{Name: "secure.example.com", Certificate: testCert(), HTTP2: true, Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}},
		{Name: "plain.example.com", Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}},
	}

	return []struct {
		name string
		cfg  NodeConfig
	}{
		{"alias_redirect", aliases},
		{"unknown_names", unknown},
		{"cache_compress", cached},
		{"empty", NodeConfig{Webroot: testRoot + "/acme"}},
		{"minimal", minimal},
		{"full", full},
		{"tls_wildcard", tlsNoForce},
		{"upstream_methods", methods},
		{"streams", streams},
		{"maintenance", maintenance},
		{"bind_address", bound},
	}
}

// formatRelease lays a release out as one text: its hash, then each file under a header.
func formatRelease(r Rendered) []byte {
	var b bytes.Buffer
	b.WriteString("# release hash " + r.Hash + "\n")
	for _, f := range r.Files {
		b.WriteString("\n#### " + f.Path + "\n")
		b.Write(f.Content)
	}
	return b.Bytes()
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Render(tc.cfg)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := formatRelease(r)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered output differs from %s (run go test -update after checking the change):\n%s", path, lineDiff(string(want), string(got)))
			}
			nginxCheck(t, r.Files)
		})
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 10; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g + "\n")
			shown++
		}
	}
	return b.String()
}

// TestRenderDeterministic checks that list order does not change the release and that any
// change of content changes its hash.
func TestRenderDeterministic(t *testing.T) {
	t.Parallel()
	var full NodeConfig
	for _, tc := range goldenCases() {
		if tc.name == "full" {
			full = tc.cfg
		}
	}
	a, err := Render(full)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := full
	shuffled.Domains = slices.Clone(full.Domains)
	d := &shuffled.Domains[0]
	d.Routes = slices.Clone(d.Routes)
	slices.Reverse(d.Routes)
	d.Aliases = slices.Clone(d.Aliases)
	slices.Reverse(d.Aliases)
	d.BasicAuthUsers = slices.Clone(d.BasicAuthUsers)
	slices.Reverse(d.BasicAuthUsers)
	d.Allow = slices.Clone(d.Allow)
	slices.Reverse(d.Allow)
	shuffled.Upstreams = slices.Clone(full.Upstreams)
	slices.Reverse(shuffled.Upstreams)
	b, err := Render(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash || !bytes.Equal(formatRelease(a), formatRelease(b)) {
		t.Errorf("reordering lists changed the release:\n%s", lineDiff(string(formatRelease(a)), string(formatRelease(b))))
	}
	changed := shuffled
	changed.Domains = slices.Clone(shuffled.Domains)
	changed.Domains[0].ClientMaxBodySize = "26m"
	c, err := Render(changed)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash == a.Hash {
		t.Error("changing client_max_body_size did not change the release hash")
	}
}

func TestRenderRefusesInvalid(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Domains = []Domain{{Name: "example.com;", Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}}}
	r, err := Render(cfg)
	fe, ok := err.(FieldErrors)
	if !ok || fe["domains[0].name"] == "" {
		t.Fatalf("Render error = %v, want FieldErrors naming domains[0].name", err)
	}
	if len(r.Files) != 0 || r.Hash != "" {
		t.Errorf("Render returned %d files for invalid input, want none", len(r.Files))
	}
}

// TestServerTokens: every server block hides nginx's version, unless the
// domain's snippet sets server_tokens itself (nginx refuses it twice).
func TestServerTokens(t *testing.T) {
	t.Parallel()
	cfg := baseConfig()
	cfg.Domains = []Domain{
		{Name: "quiet.example", Aliases: []string{"www.quiet.example"}, RedirectAliases: true, Certificate: testCert(), ForceHTTPS: true,
			Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}},
		{Name: "loud.example", Snippet: "server_tokens on;", Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}}},
	}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Files {
		c := string(f.Content)
		switch f.Path {
		case HTTPDir + "/domain-quiet.example.conf":
			// HTTPS, the redirect to it, and both alias servers.
			if n, servers := strings.Count(c, "server_tokens off;"), strings.Count(c, "server {"); n != 4 || servers != 4 {
				t.Errorf("%s: %d server blocks, %d hide the version", f.Path, servers, n)
			}
		case HTTPDir + "/domain-loud.example.conf":
			if strings.Count(c, "server_tokens") != 1 || !strings.Contains(c, "server_tokens on;") {
				t.Errorf("%s: the snippet's server_tokens should be the only one:\n%s", f.Path, c)
			}
		}
	}
}

// TestStatusBlockOnlyWhenAsked: the status block is rendered for an nginx
// whose agent reported stub_status, and only when the node serves domains.
func TestStatusBlockOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	has := func(cfg NodeConfig) bool {
		t.Helper()
		r, err := Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(r.Files, func(f File) bool { return f.Path == StatusFile })
	}
	cfg := validBase()
	if !has(cfg) {
		t.Error("no status block for a node with domains and stub_status")
	}
	cfg.Status = false
	if has(cfg) {
		t.Error("a status block for an nginx without stub_status")
	}
	streamsOnly := baseConfig()
	streamsOnly.Streams = []Stream{{Name: "s", ListenPort: 2222, Upstream: "app"}}
	if has(streamsOnly) {
		t.Error("a status block on a node that serves no domain (it would open the HTTP port)")
	}
}

func TestCacheKeysFollowTheCacheSize(t *testing.T) {
	t.Parallel()
	for size, want := range map[string]string{"10m": "10m", "1g": "10m", "20g": "20m", "100g": "102m", "10000g": "256m"} {
		if got := cacheKeys(size); got != want {
			t.Errorf("cacheKeys(%q) = %q, want %q", size, got, want)
		}
	}
}
