package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehousehq/gatehouse/internal/testutil/acmetest"
	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

const (
	certsTSIGKey    = "gatehouse-e2e."
	certsTSIGSecret = "ZTJlLXRlc3QtdHNpZy1zZWNyZXQtZm9yLWdhdGVob3VzZQ=="
)

// TestCertificatesThroughRealNode proves the certificate feature with a real controller,
// a real agent and a real nginx, against Pebble and a DNS server on loopback that plays
// the public DNS (every test name points at the node, 127.0.0.1):
//
//   - HTTP-01: the agent places the token in its webroot, nginx serves it to Pebble, the
//     certificate is deployed, and a client trusting only Pebble's root verifies the
//     node's HTTPS answer; force-HTTPS then redirects plain HTTP (but not the challenge
//     path); the DNS check says "points here" and the watch sees the stored certificate.
//   - DNS-01: a TSIG-signed RFC 2136 provider created through the API gets a wildcard
//     certificate, which the node serves for a name under it.
//   - Renewal: restarted with a renewal window as long as Pebble's certificates live,
//     the controller renews and redeploys both without an operator, and clients see the
//     new certificates.
//
// Not parallel: Pebble is configured through the environment (t.Setenv).
func TestCertificatesThroughRealNode(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	zone := dnstest.New(t, "example.test")
	zone.EnableTSIG(certsTSIGKey, certsTSIGSecret)
	zone.SetAddrs("shop.example.test", loopback)
	zone.Add(t, "*.example.test. 60 IN A 127.0.0.1")

	ngx := startNodeNginx(t)
	httpPort, httpsPort := proxyFreePort(t), proxyFreePort(t)
	ca := acmetest.New(t, acmetest.Options{DNSServer: zone.Addr(), HTTPPort: httpPort})
	client := newCertsClient(zone.Addr(), ca.Roots())

	c := startController(t,
		"--acme-directory", ca.DirectoryURL,
		"--acme-ca-roots", certsPebbleTLSFile(t, ca),
		"--acme-http-port", strconv.Itoa(httpPort),
		"--acme-email", "ops@example.test",
		"--dns-resolvers", zone.Addr(),
	)
	// Its nginx listens on loopback, which the controller dials for a node
	// only when an admin entered it as the server's address.
	token, pin := c.addServer("edge", "--address", "127.0.0.1")
	startAgent(t, c, token, pin, "http://127.0.0.1:1", ngx.agentEnv(httpPort, httpsPort)...)
	id := c.serverID("edge")
	eventually(t, 30*time.Second, "the agent to connect", func() bool { return c.server(id).Connected })

	appHost, appPort := startNamedBackend(t, "app")
	c.proxyAPI(201, "POST", "/api/v1/upstreams", map[string]any{"name": "app",
		"targets": []any{map[string]any{"host": appHost, "port": appPort}}}, nil)
	shopDomain := map[string]any{"name": "shop.example.test", "servers": []int{id},
		"routes": []any{map[string]any{"path": "/", "kind": "proxy", "upstream": "app"}}}
	var created struct {
		Domain struct {
			ID int `json:"id"`
		} `json:"domain"`
	}
	c.proxyAPI(201, "POST", "/api/v1/domains", shopDomain, &created)
	shop := created.Domain.ID
	if d := c.proxyDeploy(id); !d.Applied {
		t.Fatalf("deploy of the plain HTTP domain: %+v", d.Revision)
	}
	shopHTTP := fmt.Sprintf("http://shop.example.test:%d", httpPort)
	shopHTTPS := fmt.Sprintf("https://shop.example.test:%d", httpsPort)
	eventually(t, 15*time.Second, "shop.example.test to answer over plain HTTP", func() bool {
		return client.get(shopHTTP+"/x").body == "app /x"
	})

	// --- HTTP-01 through the agent's webroot and the node's nginx ---

	var check struct {
		Status  string `json:"status"`
		Summary string `json:"summary"`
	}
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/dns/check", shop), nil, &check)
	if check.Status != "ok" || check.Summary != "points here" {
		t.Fatalf("dns check of shop.example.test: %+v\n%+v", check, c.certsStatus(shop).DNS)
	}
	var preflight struct {
		OK       bool `json:"ok"`
		Findings []struct {
			Check   string `json:"check"`
			OK      bool   `json:"ok"`
			Message string `json:"message"`
		} `json:"findings"`
	}
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/certificate/preflight", shop), nil, &preflight)
	if !preflight.OK || len(preflight.Findings) != 3 {
		t.Fatalf("preflight of shop.example.test: %+v", preflight)
	}
	ordersBefore := ca.Orders()
	if len(certsChallengeFiles(t, ngx.dir)) != 0 {
		t.Fatal("challenge files left behind by the preflight")
	}

	task := c.certsIssue(shop)
	if !strings.Contains(task.Log, "place the challenge token on 1 server(s)") {
		t.Errorf("issuance log does not show the token placed on the node:\n%s", task.Log)
	}
	if got := ca.Orders() - ordersBefore; got != 1 {
		t.Errorf("pebble saw %d orders for one issuance", got)
	}
	if left := certsChallengeFiles(t, ngx.dir); len(left) != 0 {
		t.Errorf("challenge tokens left in the node's webroot: %v", left)
	}
	st := c.certsStatus(shop)
	if st.Certificate == nil || st.Certificate.Source != "acme" || st.Certificate.Challenge != "http-01" ||
		!slices.Equal(st.Certificate.Names, []string{"shop.example.test"}) {
		t.Fatalf("active certificate after http-01: %+v", st.Certificate)
	}
	shopCert := *st.Certificate

	// The node serves it, and a client that trusts only Pebble's root accepts it. Right
	// after a reload an old worker may still take a connection, so this polls.
	eventually(t, 30*time.Second, "the node to serve the issued certificate for shop.example.test", func() bool {
		leaf, err := client.handshake("shop.example.test", httpsPort)
		return err == nil && certsFingerprint(leaf) == shopCert.Fingerprint &&
			client.get(shopHTTPS+"/secure").body == "app /secure"
	})
	if _, err := client.handshake("other.test", httpsPort); err == nil {
		t.Error("a name the certificate does not cover verified")
	}

	// The watch compares what the node serves with what was stored.
	var served []certsServedView
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/certificate/watch", shop), nil, &served)
	if len(served) != 1 || !served[0].Matches || served[0].Fingerprint != shopCert.Fingerprint || served[0].Server != "edge" ||
		served[0].Address != net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)) {
		t.Errorf("served-certificate watch: %+v", served)
	}
	if st := c.certsStatus(shop); st.DNS.Summary != "points here" || len(st.Served) != 1 || !st.Served[0].Matches {
		t.Errorf("tls status: dns %+v, served %+v", st.DNS, st.Served)
	}

	// The domain list and the domain editor lead to the TLS page, which shows the
	// DNS verdict and the certificate the node serves.
	tlsLink := fmt.Sprintf(`href="/domains/%d/tls"`, shop)
	if page := c.proxyPage("/domains"); !strings.Contains(page, tlsLink) {
		t.Errorf("the domain list does not link to the TLS page")
	} else if !strings.Contains(page, `status-ok" href="/domains/`) || !strings.Contains(page, "points here") || !strings.Contains(page, "days left") {
		t.Errorf("the domain list does not show the DNS verdict and the certificate's validity:\n%s", page)
	}
	if page := c.proxyPage(fmt.Sprintf("/domains/%d", shop)); !strings.Contains(page, tlsLink) {
		t.Errorf("the domain editor does not link to the TLS page")
	}
	if page := c.proxyPage(fmt.Sprintf("/domains/%d/tls", shop)); !strings.Contains(page, "points here") ||
		!strings.Contains(page, shopCert.Fingerprint) || !strings.Contains(page, "matches") ||
		!strings.Contains(page, "renewed 30 days before they expire") {
		t.Errorf("the TLS page lacks the DNS verdict, the certificate, the watch or the renewal time in words:\n%s", page)
	}

	// Force HTTPS: plain HTTP redirects, except the challenge path, which renewals need.
	forced := map[string]any{"force_https": true}
	for k, v := range shopDomain {
		forced[k] = v
	}
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d", shop), forced, nil)
	if d := c.proxyDeploy(id); !d.Applied {
		t.Fatalf("deploy with force_https: %+v", d.Revision)
	}
	eventually(t, 15*time.Second, "plain HTTP to redirect to HTTPS", func() bool {
		h := client.get(shopHTTP + "/x?y=1")
		return h.code == 301 && h.location == shopHTTPS+"/x?y=1"
	})
	if h := client.get(shopHTTPS + "/x?y=1"); h.code != 200 || h.body != "app /x" {
		t.Errorf("following the redirect: %v", h)
	}
	if h := client.get(shopHTTP + "/.well-known/acme-challenge/unknown-token"); h.code != 404 {
		t.Errorf("the challenge path under force_https: %v (want a plain 404, not a redirect)", h)
	}

	// --- DNS-01 over RFC 2136 with TSIG: a wildcard ---

	var provider struct {
		ID int `json:"id"`
	}
	c.proxyAPI(201, "POST", "/api/v1/dns-providers", map[string]any{"name": "zone-primary", "kind": "rfc2136",
		"nameserver": zone.Addr(), "tsig_key": certsTSIGKey, "tsig_algorithm": "hmac-sha256", "tsig_secret": certsTSIGSecret}, &provider)
	var listed json.RawMessage
	c.proxyAPI(200, "GET", "/api/v1/dns-providers", nil, &listed)
	if !strings.Contains(string(listed), `"name":"zone-primary"`) || strings.Contains(string(listed), certsTSIGSecret) {
		t.Fatalf("dns providers list (must name the provider and never show its secret): %s", listed)
	}
	c.proxyAPI(201, "POST", "/api/v1/domains", map[string]any{"name": "*.example.test", "servers": []int{id},
		"routes": []any{map[string]any{"path": "/", "kind": "proxy", "upstream": "app"}}}, &created)
	wild := created.Domain.ID
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d/certificate/policy", wild),
		map[string]any{"mode": "acme", "challenge": "dns-01", "dns_provider_id": provider.ID}, nil)
	updates := zone.Updates()
	task = c.certsIssue(wild)
	if got := zone.Updates() - updates; got < 2 {
		t.Errorf("the DNS server applied %d signed updates; want the record added and removed", got)
	}
	if rrs := zone.Records("_acme-challenge.example.test", dns.TypeTXT); len(rrs) != 0 {
		t.Errorf("challenge records left in the zone: %v", rrs)
	}
	st = c.certsStatus(wild)
	if st.Certificate == nil || st.Certificate.Challenge != "dns-01" || !slices.Equal(st.Certificate.Names, []string{"*.example.test"}) {
		t.Fatalf("active certificate after dns-01: %+v\n%s", st.Certificate, task.Log)
	}
	wildCert := *st.Certificate
	eventually(t, 30*time.Second, "the node to serve the wildcard for api.example.test", func() bool {
		leaf, err := client.handshake("api.example.test", httpsPort)
		return err == nil && certsFingerprint(leaf) == wildCert.Fingerprint && slices.Equal(leaf.DNSNames, []string{"*.example.test"}) &&
			client.get(fmt.Sprintf("https://api.example.test:%d/v1", httpsPort)).body == "app /v1"
	})
	// The exact name keeps its own certificate.
	if leaf, err := client.handshake("shop.example.test", httpsPort); err != nil || certsFingerprint(leaf) != shopCert.Fingerprint {
		t.Errorf("shop.example.test after the wildcard was added: %v", err)
	}

	// --- Renewal without an operator ---

	// Pebble's certificates live 90 days: with a window that long both are due at once.
	c.proc.stop()
	c.extra = append(c.extra, "--renew-before", "2160h", "--cert-check-interval", "2s")
	c.restart()
	eventually(t, 30*time.Second, "the agent to reconnect", func() bool { return c.server(id).Connected })
	renewed := func(domainID int, name string, old certsCertView) {
		t.Helper()
		last := ""
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not renewed and served within 45s: %s\n%+v", name, last, c.certsStatus(domainID).Tasks)
			}
			leaf, err := client.handshake(name, httpsPort)
			if err != nil {
				last = err.Error()
				continue
			}
			fp := certsFingerprint(leaf)
			if fp == old.Fingerprint {
				last = "the node still serves the first certificate"
				continue
			}
			// What the node serves now is one of the domain's certificates from the CA.
			st := c.certsStatus(domainID)
			i := slices.IndexFunc(st.History, func(h certsCertView) bool { return h.Fingerprint == fp })
			if i < 0 {
				last = "the node serves " + fp + ", which the domain's history does not hold"
				continue
			}
			if h := st.History[i]; h.Source != "acme" || h.Challenge != old.Challenge {
				t.Fatalf("%s: renewed certificate %+v, want one from the CA over %s", name, h, old.Challenge)
			}
			break
		}
		st := c.certsStatus(domainID)
		if len(st.Tasks) < 2 || st.Policy.Failures != 0 {
			t.Errorf("%s after renewal: %d issuance tasks, policy %+v", name, len(st.Tasks), st.Policy)
		}
		for _, h := range st.History {
			if h.Fingerprint == old.Fingerprint && h.Status != "superseded" {
				t.Errorf("%s: the first certificate is %s after renewal", name, h.Status)
			}
		}
	}
	renewed(shop, "shop.example.test", shopCert)
	renewed(wild, "api.example.test", wildCert)
	if h := client.get(shopHTTPS + "/after"); h.code != 200 || h.body != "app /after" {
		t.Errorf("https after renewal: %v", h)
	}
}

// certsChallengeFiles lists the files in the agent's challenge directory.
func certsChallengeFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "acme", ".well-known", "acme-challenge"))
	if err != nil {
		t.Fatalf("read the node's challenge directory: %v", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
