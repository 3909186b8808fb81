package nginxconf

import (
	"strconv"
	"testing"
)

// bigConfig builds n domains of three routes each (proxy, websocket proxy, redirect) over
// a handful of upstreams, the shape of a large multi-tenant node.
func bigConfig(n int) NodeConfig {
	cfg := NodeConfig{Webroot: testRoot + "/acme", ConfigDir: testRoot + "/release"}
	for i := range 8 {
		cfg.Upstreams = append(cfg.Upstreams, Upstream{
			Name:      "pool-" + strconv.Itoa(i),
			Method:    MethodLeastConn,
			Keepalive: 16,
			Targets:   []Target{{Host: "127.0.0.1", Port: 9000 + i}, {Host: "127.0.0.1", Port: 9100 + i}},
		})
	}
	cfg.Domains = make([]Domain, n)
	for i := range n {
		name := "tenant-" + strconv.Itoa(i) + ".example.com"
		up := "pool-" + strconv.Itoa(i%8)
		d := Domain{
			Name:    name,
			Aliases: []string{"www." + name},
			Routes: []Route{
				{Path: "/", Kind: RouteProxy, Upstream: up, PreserveHost: true},
				{Path: "/socket/", Kind: RouteProxy, Upstream: up, WebSocket: true},
				{Match: MatchExact, Path: "/old", Kind: RouteRedirect, Code: 301, Target: "https://" + name + "/new"},
			},
			ResponseHeaders: []Header{{Name: "X-Frame-Options", Value: "SAMEORIGIN"}},
		}
		if i%2 == 0 {
			d.Certificate = &CertRef{CertPath: testRoot + "/tls/cert.pem", KeyPath: testRoot + "/tls/key.pem"}
			d.ForceHTTPS, d.HSTS, d.HTTP2 = true, true, true
		}
		cfg.Domains[i] = d
	}
	return cfg
}

func BenchmarkRender10kDomains(b *testing.B) {
	cfg := bigConfig(10000)
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		r, err := Render(cfg)
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for _, f := range r.Files {
			bytes += len(f.Content)
		}
	}
	b.ReportMetric(float64(bytes)/1e6, "MB/release")
}

// TestLargeReleasePassesNginx checks that the server-name hash sizing derived from the data
// lets nginx load thousands of names, which nginx's defaults refuse.
func TestLargeReleasePassesNginx(t *testing.T) {
	t.Parallel()
	// 60 domains x 101 names: far beyond nginx's default table of 512 buckets, in few files.
	cfg := bigConfig(60)
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		d.Certificate, d.ForceHTTPS, d.HSTS, d.HTTP2 = nil, false, false, false
		d.Aliases = nil
		for j := range maxAliases {
			d.Aliases = append(d.Aliases, "alias-"+strconv.Itoa(j)+"."+d.Name)
		}
	}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nginxCheck(t, r.Files)
}
