package nginxconf

import (
	"compress/gzip"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehousehq/gatehouse/internal/nginxstatus"
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

// TestCacheAndCompressionThroughNginx: a caching route answers repeated
// requests from nginx's cache (X-Cache-Status MISS then HIT, the domain's
// own headers still sent), keyed by host; requests with credentials, and
// answers that are private or set a cookie, always reach the upstream;
// routes that do not cache are untouched; compression gzips text for clients
// that accept it and only for them.
func TestCacheAndCompressionThroughNginx(t *testing.T) {
	t.Parallel()
	css := strings.Repeat("body { color: #123456; margin: 0 auto; }\n", 64)
	var mu sync.Mutex
	hits := map[string]int{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.Host+r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/static/private":
			w.Header().Set("Cache-Control", "private")
		case "/static/cookie":
			w.Header().Set("Set-Cookie", "session=s3cret; Path=/")
		}
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, css)
	}))
	t.Cleanup(backend.Close)
	backendPort := backend.Listener.Addr().(*net.TCPAddr).Port

	port := freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort, cfg.HTTPSPort = port, freePort(t)
	cfg.Upstreams = []Upstream{{Name: "app", Targets: []Target{{Host: "127.0.0.1", Port: backendPort}}}}
	routes := []Route{
		{Path: "/static/", Kind: RouteProxy, Upstream: "app", PreserveHost: true, CacheTTL: 60},
		{Path: "/", Kind: RouteProxy, Upstream: "app", PreserveHost: true},
	}
	cfg.Domains = []Domain{
		{Name: "cache.example", Compress: true, ResponseHeaders: []Header{{Name: "X-Frame-Options", Value: "DENY"}}, Routes: routes},
		{Name: "other.example", Routes: routes},
	}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, nil, port)
	addr := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The client's own gzip handling is off, so the test sees what nginx sent.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	for i, tc := range []struct {
		host, path string
		header     map[string]string
		cache      string // X-Cache-Status
		hits       int    // the upstream's count for host+path afterwards
	}{
		{"cache.example", "/static/app.css", nil, "MISS", 1},
		{"cache.example", "/static/app.css", nil, "HIT", 1},
		{"cache.example", "/static/app.css?v=2", nil, "MISS", 2},
		{"cache.example", "/static/app.css", map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, "BYPASS", 3},
		{"cache.example", "/static/app.css", nil, "HIT", 3},
		{"other.example", "/static/app.css", nil, "MISS", 1},
		{"cache.example", "/static/private", nil, "MISS", 1},
		{"cache.example", "/static/private", nil, "MISS", 2},
		{"cache.example", "/static/cookie", nil, "MISS", 1},
		{"cache.example", "/static/cookie", nil, "MISS", 2},
		{"cache.example", "/page", nil, "", 1},
		{"cache.example", "/page", nil, "", 2},
	} {
		resp, body := fetch(t, client, addr+tc.path, tc.host, tc.header)
		mu.Lock()
		n := hits[tc.host+strings.SplitN(tc.path, "?", 2)[0]]
		mu.Unlock()
		if resp.StatusCode != http.StatusOK || body != css {
			t.Errorf("step %d, %s%s: %d, %d bytes", i, tc.host, tc.path, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("X-Cache-Status"); got != tc.cache || n != tc.hits {
			t.Errorf("step %d, %s%s: X-Cache-Status %q, upstream asked %d times; want %q and %d", i, tc.host, tc.path, got, n, tc.cache, tc.hits)
		}
		if got := resp.Header.Get("Server"); got != "nginx" {
			t.Errorf("step %d: Server %q, want nginx without its version", i, got)
		}
		if tc.host == "cache.example" && resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("step %d, %s%s: the domain's own header is missing: %v", i, tc.host, tc.path, resp.Header)
		}
	}

	for _, tc := range []struct {
		host, accept, encoding string
	}{
		{"cache.example", "gzip, deflate", "gzip"},
		{"cache.example", "", ""},
		{"other.example", "gzip", ""}, // compression is per domain
	} {
		header := map[string]string{}
		if tc.accept != "" {
			header["Accept-Encoding"] = tc.accept
		}
		resp, body := fetch(t, client, addr+"/page", tc.host, header)
		if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
			t.Errorf("%s with Accept-Encoding %q: Content-Encoding %q, want %q", tc.host, tc.accept, got, tc.encoding)
			continue
		}
		if tc.encoding == "" {
			if body != css {
				t.Errorf("%s without compression: body of %d bytes", tc.host, len(body))
			}
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: compressed answer without Vary: Accept-Encoding", tc.host)
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != css || len(body) >= len(css)/4 {
			t.Errorf("%s: gzip body of %d bytes unpacks to %d bytes (%v)", tc.host, len(body), len(plain), err)
		}
	}
}

// TestStatusBlockThroughNginx: the status block shows nginx's counters to a
// client on the node under its reserved name only; it never becomes the
// default server of the domains' listener; and a trusted proxy's header
// cannot make a remote client look local to it.
func TestStatusBlockThroughNginx(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort, cfg.HTTPSPort = port, freePort(t)
	// 127.0.0.2 plays a load balancer in front of nginx.
	cfg.RealIP = &RealIP{From: []string{"127.0.0.2"}}
	cfg.Domains = []Domain{{Name: "a.example", Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "a"}}}}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, nil, port)
	base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	fromBalancer := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	for _, tc := range []struct {
		name   string
		client *http.Client
		host   string
		path   string
		header map[string]string
		status int
		body   string
	}{
		{"the counters", http.DefaultClient, nginxstatus.Host, nginxstatus.Path, nil, 200, "Active connections:"},
		{"another path", http.DefaultClient, nginxstatus.Host, "/", nil, 404, ""},
		{"an unknown name goes to the first domain", http.DefaultClient, "unknown.example", "/", nil, 200, "a"},
		{"the domain under the status path", http.DefaultClient, "a.example", nginxstatus.Path, nil, 200, "a"},
		{"a client behind the balancer claiming to be local", fromBalancer, nginxstatus.Host, nginxstatus.Path, map[string]string{"X-Forwarded-For": "127.0.0.1"}, 403, ""},
		{"the balancer itself", fromBalancer, nginxstatus.Host, nginxstatus.Path, nil, 403, ""},
	} {
		resp, body := fetch(t, tc.client, base+tc.path, tc.host, tc.header)
		if resp.StatusCode != tc.status || !strings.HasPrefix(body, tc.body) {
			t.Errorf("%s: %d %q, want %d %q…", tc.name, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// TestUnknownNamesThroughNginx: a node set to close or answer 404 for names
// it does not serve does so over plain HTTP and refuses the TLS handshake
// for them, while its own domains answer as before.
func TestUnknownNamesThroughNginx(t *testing.T) {
	t.Parallel()
	for _, mode := range []UnknownAnswer{UnknownClose, UnknownNotFound} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			httpPort, httpsPort := freePort(t), freePort(t)
			cfg := baseConfig()
			cfg.BindAddress = "127.0.0.1"
			cfg.HTTPPort, cfg.HTTPSPort = httpPort, httpsPort
			cfg.UnknownNames = mode
			cfg.Domains = []Domain{{Name: "known.example", Certificate: testCert(), HTTP2: true,
				Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "known"}}}}
			r, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			serveNginx(t, r.Files, nil, httpPort)
			plain := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
			tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort))
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test's self-signed certificate

			if resp, body := fetch(t, client, plain+"/", "known.example", nil); resp.StatusCode != 200 || body != "known" {
				t.Errorf("known name over http: %d %q", resp.StatusCode, body)
			}
			withSNI := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "known.example", InsecureSkipVerify: true}}}
			if resp, body := fetch(t, withSNI, "https://"+tlsAddr+"/", "known.example", nil); resp.StatusCode != 200 || body != "known" {
				t.Errorf("known name over https: %d %q", resp.StatusCode, body)
			}

			req, _ := http.NewRequest(http.MethodGet, plain+"/", nil)
			req.Host = "stranger.example"
			resp, err := client.Do(req)
			switch mode {
			case UnknownClose:
				if err == nil {
					resp.Body.Close()
					t.Errorf("unknown name over http answered %d, want the connection closed", resp.StatusCode)
				}
			case UnknownNotFound:
				if err != nil {
					t.Fatalf("unknown name over http: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("unknown name over http: %d, want 404", resp.StatusCode)
				}
			}

			for _, sni := range []string{"stranger.example", ""} {
				c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
				if err == nil {
					c.Close()
					t.Errorf("TLS handshake for %q completed, want it refused", sni)
				}
			}
			c, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "known.example", InsecureSkipVerify: true})
			if err != nil {
				t.Errorf("TLS handshake for the known name: %v", err)
			} else {
				c.Close()
			}
		})
	}
}
