package nginxconf

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAliasRedirectThroughNginx serves domains whose aliases redirect from
// real nginx: an alias answers 301 to the same path and query on the primary
// name (over HTTPS when the domain forces it), still serves ACME challenges
// over plain HTTP, and the primary name itself is served as before.
func TestAliasRedirectThroughNginx(t *testing.T) {
	t.Parallel()
	httpPort, httpsPort := freePort(t), freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort, cfg.HTTPSPort = httpPort, httpsPort
	cfg.Domains = []Domain{{
		Name: "example.com", Aliases: []string{"www.example.com", "*.old-example.com"}, RedirectAliases: true,
		Certificate: testCert(), ForceHTTPS: true,
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "primary"}},
	}, {
		Name: "plain.example.net", Aliases: []string{"www.plain.example.net"}, RedirectAliases: true,
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "plain"}},
	}, {
		Name: "both.example.org", Aliases: []string{"www.both.example.org"},
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "both"}},
	}}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, map[string]string{"tok-2": "tok-2.thumb"}, httpPort)
	plainAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort))

	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test's self-signed certificate
	}
	httpsPrimary := "https://example.com:" + strconv.Itoa(httpsPort)
	for _, tc := range []struct {
		name, scheme, addr, host, path string
		status                         int
		location, body                 string
	}{
		{"alias over http", "http", plainAddr, "www.example.com", "/a/b?x=1&y=2", 301, httpsPrimary + "/a/b?x=1&y=2", ""},
		{"wildcard alias", "http", plainAddr, "shop.old-example.com", "/", 301, httpsPrimary + "/", ""},
		{"alias over https", "https", tlsAddr, "www.example.com", "/deep/path?q=%20", 301, httpsPrimary + "/deep/path?q=%20", ""},
		{"acme challenge on an alias", "http", plainAddr, "www.example.com", "/.well-known/acme-challenge/tok-2", 200, "", "tok-2.thumb"},
		{"primary over https", "https", tlsAddr, "example.com", "/", 200, "", "primary"},
		{"primary over http", "http", plainAddr, "example.com", "/x", 301, "https://example.com:" + strconv.Itoa(httpsPort) + "/x", ""},
		{"alias without a certificate", "http", plainAddr, "www.plain.example.net", "/p?q=1", 301, "http://plain.example.net:" + strconv.Itoa(httpPort) + "/p?q=1", ""},
		{"primary without a certificate", "http", plainAddr, "plain.example.net", "/", 200, "", "plain"},
		{"alias served when not redirected", "http", plainAddr, "www.both.example.org", "/", 200, "", "both"},
	} {
		resp, body := fetch(t, client, tc.scheme+"://"+tc.addr+tc.path, tc.host, nil)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location || (tc.body != "" && strings.TrimSpace(body) != tc.body) {
			t.Errorf("%s: %d, location %q, body %q", tc.name, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
}

// fetch GETs url with the given Host (and extra headers) and returns the
// answer with its body read.
func fetch(t *testing.T, client *http.Client, url, host string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s for %s: %v", url, host, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestRateLimitThroughNginx: real nginx lets each client address through at
// the domain's rate plus its burst and answers 429 beyond, leaving other
// domains alone.
func TestRateLimitThroughNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort, cfg.HTTPSPort = port, freePort(t)
	cfg.Domains = []Domain{{
		// One request a minute and two more at once: three pass, the fourth does not.
		Name: "limited.example", RateLimit: &RateLimit{Rate: 1, Unit: PerMinute, Burst: 2},
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "limited"}},
	}, {
		Name: "strict.example", RateLimit: &RateLimit{Rate: 1, Unit: PerMinute},
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "strict"}},
	}, {
		Name:   "open.example",
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "open"}},
	}}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, nil, port)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	status := func(host string) int {
		t.Helper()
		resp, _ := fetch(t, http.DefaultClient, "http://"+addr+"/", host, nil)
		return resp.StatusCode
	}
	for host, want := range map[string][]int{
		"limited.example": {200, 200, 200, 429, 429},
		"strict.example":  {200, 429},
		"open.example":    {200, 200, 200, 200, 200},
	} {
		var got []int
		for range want {
			got = append(got, status(host))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s answered %v, want %v", host, got, want)
		}
	}
}

// TestRealIPThroughNginx: with the proxies in front of nginx trusted, the
// client address comes from their header, so a deny list and a rate limit
// act on the real client; from a source that is not trusted the header is
// ignored.
func TestRealIPThroughNginx(t *testing.T) {
	t.Parallel()
	serve := func(from string) string {
		port := freePort(t)
		cfg := baseConfig()
		cfg.BindAddress = "127.0.0.1"
		cfg.HTTPPort, cfg.HTTPSPort = port, freePort(t)
		cfg.RealIP = &RealIP{From: []string{from}, Header: "x-forwarded-for"}
		cfg.Domains = []Domain{{
			Name: "app.example", Deny: []string{"203.0.113.9", "203.0.113.10"}, RateLimit: &RateLimit{Rate: 1, Unit: PerMinute},
			Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "app"}},
		}}
		r, err := Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		serveNginx(t, r.Files, nil, port)
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	get := func(addr, forwardedFor string) int {
		t.Helper()
		var header map[string]string
		if forwardedFor != "" {
			header = map[string]string{"X-Forwarded-For": forwardedFor}
		}
		resp, _ := fetch(t, http.DefaultClient, "http://"+addr+"/", "app.example", header)
		return resp.StatusCode
	}
	trusted := serve("127.0.0.0/8")
	for _, step := range []struct {
		forwardedFor string
		want         int
	}{
		{"203.0.113.9", http.StatusForbidden},                // the denied client behind the proxy
		{"198.51.100.7, 203.0.113.10", http.StatusForbidden}, // the last address not trusted is the client
		{"198.51.100.7", http.StatusOK},                      // another client: its own budget
		{"198.51.100.7", http.StatusTooManyRequests},         // and it is spent
		{"198.51.100.8", http.StatusOK},                      // a third client is not held back by the second
	} {
		if got := get(trusted, step.forwardedFor); got != step.want {
			t.Errorf("trusted proxy, X-Forwarded-For %q: %d, want %d", step.forwardedFor, got, step.want)
		}
	}
	untrusted := serve("10.0.0.0/8")
	if got := get(untrusted, "203.0.113.9"); got != http.StatusOK {
		t.Errorf("untrusted source claiming a denied address: %d, want 200", got)
	}
	if got := get(untrusted, "198.51.100.7"); got != http.StatusTooManyRequests {
		t.Errorf("untrusted source claiming another address: %d, want 429 (the budget is the source's)", got)
	}
}

// TestMaintenanceThroughNginx: a domain in maintenance answers 503 with its
// own message, and its deny list still applies while it is closed.
func TestMaintenanceThroughNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort, cfg.HTTPSPort = port, freePort(t)
	cfg.Domains = []Domain{{
		Name: "closed.example", Maintenance: true, MaintenanceMessage: "Back at 14:00 UTC.",
		Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}},
	}, {
		Name: "denied.example", Maintenance: true, Deny: []string{"127.0.0.0/8"},
		Routes: []Route{{Path: "/", Kind: RouteProxy, Upstream: "app"}},
	}}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, nil, port)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, tc := range []struct {
		host   string
		status int
		body   string
	}{
		{"closed.example", http.StatusServiceUnavailable, "Back at 14:00 UTC."},
		{"denied.example", http.StatusForbidden, ""},
	} {
		resp, body := fetch(t, http.DefaultClient, "http://"+addr+"/any/path", tc.host, nil)
		if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
			t.Errorf("%s: %d %q", tc.host, resp.StatusCode, body)
		}
	}
}
