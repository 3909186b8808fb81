package nginxconf

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := nginxPath(t)
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
	env := newNginxEnv(t, r.Files, "daemon off;\nmaster_process off;\n", "")
	if err := os.WriteFile(filepath.Join(env.dir, "acme/.well-known/acme-challenge/tok-2"), []byte("tok-2.thumb"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", env.dir, "-c", env.conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	plainAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort))
	waitListening(t, plainAddr, exited, env.dir, &stderr)

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
		req, err := http.NewRequest(http.MethodGet, tc.scheme+"://"+tc.addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location || (tc.body != "" && strings.TrimSpace(string(body)) != tc.body) {
			t.Errorf("%s: %d, location %q, body %q", tc.name, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
}
