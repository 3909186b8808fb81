package acme

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gatehousehq/gatehouse/internal/testutil/acmetest"
	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

// tokenSink is the ChallengeSink a controller would implement by forwarding
// tokens to its nodes; here the "node" is an HTTP server on loopback.
type tokenSink struct {
	mu       sync.Mutex
	tokens   map[string]string
	presents int
	cleanups int
	drop     bool // accept tokens but never serve them
}

func (s *tokenSink) Present(_ context.Context, _, token, keyAuth string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presents++
	if !s.drop {
		s.tokens[token] = keyAuth
	}
	return nil
}

func (s *tokenSink) CleanUp(_ context.Context, _, token, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups++
	delete(s.tokens, token)
	return nil
}

func (s *tokenSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePath(""))
	s.mu.Lock()
	keyAuth, found := s.tokens[token]
	s.mu.Unlock()
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(keyAuth))
}

type fixture struct {
	dns    *dnstest.Server
	ca     *acmetest.Server
	sink   *tokenSink
	client *Client
	acct   Account
}

const (
	tsigKey    = "gatehouse-acme."
	tsigSecret = "Z2F0ZWhvdXNlLXRlc3QtdHNpZy1zZWNyZXQtMzJieXRlcw=="
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dns: dnstest.New(t, "example.test"), sink: &tokenSink{tokens: map[string]string{}}}
	f.dns.EnableTSIG(tsigKey, tsigSecret)

	node := httptest.NewServer(f.sink)
	t.Cleanup(node.Close)
	_, portStr, _ := net.SplitHostPort(node.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	f.ca = acmetest.New(t, acmetest.Options{
		DNSServer: f.dns.Addr(),
		HTTPPort:  port,
		Blocklist: []string{"blocked.test"},
	})
	var err error
	f.client, err = New(Config{
		DirectoryURL: f.ca.DirectoryURL,
		HTTPClient:   f.ca.Client,
		Resolvers:    []string{f.dns.Addr()},
		DNSTimeout:   2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.acct, err = f.client.NewAccount(ctx, "admin@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if f.acct.URI == "" || len(f.acct.KeyPEM) == 0 || f.acct.DirectoryURL != f.ca.DirectoryURL {
		t.Fatalf("account = %+v", f.acct)
	}
	return f
}

// verify checks the certificate chains to Pebble's root for every name and
// that the key belongs to it.
func (f *fixture) verify(t *testing.T, c Certificate, names ...string) {
	t.Helper()
	inter := x509.NewCertPool()
	if !inter.AppendCertsFromPEM(c.ChainPEM) {
		t.Fatal("chain holds no certificate")
	}
	leaf, err := firstCert(c.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		host := strings.Replace(n, "*", "anything", 1)
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: f.ca.Roots(), Intermediates: inter}); err != nil {
			t.Fatalf("verify %s against the CA root: %v", host, err)
		}
	}
	info, err := ParseBundle(append(slices.Clone(c.CertPEM), c.ChainPEM...), c.KeyPEM)
	if err != nil {
		t.Fatalf("issued bundle does not parse as an upload would: %v", err)
	}
	if info.Fingerprint != c.Fingerprint || info.Serial != c.Serial || !info.NotAfter.Equal(c.NotAfter) {
		t.Fatalf("bundle info %+v disagrees with certificate %+v", info, c)
	}
}

func TestIssuance(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("http-01 through the sink", func(t *testing.T) {
		f.dns.SetAddrs("www.example.test", loopback)
		f.dns.SetAddrs("example.test", loopback)
		cert, err := f.client.Obtain(ctx, f.acct, Request{
			Names:      []string{"WWW.example.test", "example.test", "www.example.test"},
			Challenge:  HTTP01,
			HTTPSolver: f.sink,
			Preflight:  &PreflightOptions{ExpectedAddrs: []netip.Addr{loopback}, CAIdentity: acmetest.CAAIdentity},
		})
		if err != nil {
			t.Fatal(err)
		}
		f.verify(t, cert, "www.example.test", "example.test")
		if !slices.Equal(cert.Names, []string{"www.example.test", "example.test"}) {
			t.Fatalf("names = %v", cert.Names)
		}
		f.sink.mu.Lock()
		defer f.sink.mu.Unlock()
		if f.sink.presents != 2 || f.sink.cleanups != 2 || len(f.sink.tokens) != 0 {
			t.Fatalf("sink saw %d presents, %d cleanups, %d tokens left", f.sink.presents, f.sink.cleanups, len(f.sink.tokens))
		}
	})

	t.Run("dns-01 wildcard over rfc2136 with tsig", func(t *testing.T) {
		before := f.dns.Updates()
		cert, err := f.client.Obtain(ctx, f.acct, Request{
			Names:     []string{"*.example.test", "example.test"},
			Challenge: DNS01,
			DNS: RFC2136{
				Nameserver:    f.dns.Addr(),
				TSIGKey:       tsigKey,
				TSIGSecret:    tsigSecret,
				TSIGAlgorithm: "hmac-sha256",
				Propagation:   Propagation{Timeout: 20 * time.Second, Interval: 50 * time.Millisecond},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		f.verify(t, cert, "*.example.test", "example.test")
		// Two names, each presented and cleaned up with a signed update.
		if got := f.dns.Updates() - before; got != 4 {
			t.Fatalf("dns updates = %d, want 4", got)
		}
		if left := f.dns.Records("_acme-challenge.example.test", dns.TypeTXT); len(left) != 0 {
			t.Fatalf("challenge records left behind: %v", left)
		}
	})

	t.Run("dns-01 through the cloudflare api", func(t *testing.T) {
		cf, api := newFakeCloudflare(t, f.dns, "example.test")
		cert, err := f.client.Obtain(ctx, f.acct, Request{
			Names:     []string{"*.cf.example.test"},
			Challenge: DNS01,
			DNS: Cloudflare{
				APIToken: cf.apiToken, ZoneToken: cf.zoneToken,
				BaseURL: api.URL + "/client/v4", HTTPClient: api.Client(),
				Propagation: Propagation{Timeout: 20 * time.Second, Interval: 50 * time.Millisecond},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		f.verify(t, cert, "*.cf.example.test")
		cf.mu.Lock()
		defer cf.mu.Unlock()
		if cf.created != 1 || cf.deleted != 1 || len(cf.records) != 0 {
			t.Fatalf("cloudflare saw %d creates and %d deletes, %d records left", cf.created, cf.deleted, len(cf.records))
		}
	})

	t.Run("dns-01 with a wrong tsig secret fails at the nameserver", func(t *testing.T) {
		orders := f.ca.Orders()
		_, err := f.client.Obtain(ctx, f.acct, Request{
			Names:     []string{"tsig.example.test"},
			Challenge: DNS01,
			DNS: RFC2136{Nameserver: f.dns.Addr(), TSIGKey: tsigKey, TSIGSecret: "d3Jvbmc=",
				Propagation: Propagation{Timeout: 2 * time.Second, Interval: 50 * time.Millisecond}},
		})
		if err == nil {
			t.Fatal("issued with a wrong TSIG secret")
		}
		if !strings.Contains(err.Error(), "dnsupdate") {
			t.Fatalf("error does not point at the DNS update: %v", err)
		}
		if f.ca.Orders() != orders+1 {
			t.Fatalf("orders = %d, want %d", f.ca.Orders(), orders+1)
		}
	})

	t.Run("a name the CA refuses is reported with its detail", func(t *testing.T) {
		_, err := f.client.Obtain(ctx, f.acct, Request{Names: []string{"www.blocked.test"}, Challenge: HTTP01, HTTPSolver: f.sink})
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("error %v carries no CA problem", err)
		}
		if p.Type != "urn:ietf:params:acme:error:rejectedIdentifier" || !strings.Contains(p.Detail, "www.blocked.test") {
			t.Fatalf("problem = %+v", p)
		}
		if !strings.Contains(err.Error(), p.Detail) || !strings.Contains(err.Error(), "obtain a certificate for [www.blocked.test]") {
			t.Fatalf("error %q lacks the CA's detail or our context", err)
		}
	})

	t.Run("a challenge that is not served is reported with the CA's detail", func(t *testing.T) {
		f.dns.SetAddrs("unserved.example.test", loopback)
		sink := &tokenSink{tokens: map[string]string{}, drop: true}
		_, err := f.client.Obtain(ctx, f.acct, Request{Names: []string{"unserved.example.test"}, Challenge: HTTP01, HTTPSolver: sink})
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("error %v carries no CA problem", err)
		}
		if p.Type != "urn:ietf:params:acme:error:unauthorized" || !strings.Contains(p.Detail, "404") {
			t.Fatalf("problem = %+v", p)
		}
		if sink.presents != 1 || sink.cleanups != 1 {
			t.Fatalf("sink saw %d presents and %d cleanups, want 1 and 1", sink.presents, sink.cleanups)
		}
	})

	t.Run("preflight stops an order for a name resolving elsewhere", func(t *testing.T) {
		f.dns.SetAddrs("x.example.test", netip.MustParseAddr("203.0.113.9"))
		orders := f.ca.Orders()
		probed := false
		_, err := f.client.Obtain(ctx, f.acct, Request{
			Names: []string{"x.example.test"}, Challenge: HTTP01, HTTPSolver: f.sink,
			Preflight: &PreflightOptions{
				ExpectedAddrs: []netip.Addr{loopback},
				Probe:         func(context.Context, string) error { probed = true; return nil },
			},
		})
		if !IsPreflight(err) {
			t.Fatalf("err = %v, want a preflight refusal", err)
		}
		if want := "x.example.test resolves to 203.0.113.9, not to a node that serves it"; !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %q, want it to say %q", err, want)
		}
		if probed {
			t.Fatal("probed port 80 of a name that does not point at a node")
		}
		if f.ca.Orders() != orders {
			t.Fatalf("the CA saw %d new orders", f.ca.Orders()-orders)
		}
	})

	t.Run("preflight reports a CAA record forbidding the CA", func(t *testing.T) {
		f.dns.SetAddrs("caa.example.test", loopback)
		f.dns.Add(t, `caa.example.test. 60 IN CAA 0 issue "other-ca.test"`)
		orders := f.ca.Orders()
		_, err := f.client.Obtain(ctx, f.acct, Request{
			Names: []string{"caa.example.test"}, Challenge: DNS01,
			DNS:       RFC2136{Nameserver: f.dns.Addr(), TSIGKey: tsigKey, TSIGSecret: tsigSecret},
			Preflight: &PreflightOptions{ExpectedAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, CAIdentity: acmetest.CAAIdentity},
		})
		var pe *PreflightError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a preflight refusal", err)
		}
		// DNS-01 ignores where the name points: only CAA fails.
		if len(pe.Failed) != 1 || pe.Failed[0].Check != CheckCAA {
			t.Fatalf("failed = %+v, want only the CAA check", pe.Failed)
		}
		if !strings.Contains(err.Error(), "forbid pebble.letsencrypt.org to issue") || !strings.Contains(err.Error(), "other-ca.test") {
			t.Fatalf("err = %q", err)
		}
		if f.ca.Orders() != orders {
			t.Fatalf("the CA saw %d new orders", f.ca.Orders()-orders)
		}
	})
}

func TestObtainValidatesRequest(t *testing.T) {
	t.Parallel()
	c, err := New(Config{DirectoryURL: "https://127.0.0.1:1/dir", Resolvers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	acct := Account{URI: "https://127.0.0.1:1/my-account/1", KeyPEM: []byte("unused")}
	sink := &tokenSink{tokens: map[string]string{}}
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"no names", Request{Challenge: HTTP01, HTTPSolver: sink}, "at least one name"},
		{"bad name", Request{Names: []string{"exa mple.com"}, Challenge: HTTP01, HTTPSolver: sink}, `name "exa mple.com"`},
		{"ip address", Request{Names: []string{"192.0.2.1"}, Challenge: HTTP01, HTTPSolver: sink}, `name "192.0.2.1"`},
		{"wildcard over http", Request{Names: []string{"*.example.com"}, Challenge: HTTP01, HTTPSolver: sink}, "only be validated with dns-01"},
		{"no sink", Request{Names: []string{"example.com"}, Challenge: HTTP01}, "challenge sink"},
		{"no provider", Request{Names: []string{"example.com"}, Challenge: DNS01}, "needs a DNS provider"},
		{"bad provider", Request{Names: []string{"example.com"}, Challenge: DNS01, DNS: RFC2136{Nameserver: "ns;rm -rf"}}, "rfc2136 nameserver"},
		{"no challenge", Request{Names: []string{"example.com"}}, "choose a challenge type"},
		{"bad account key", Request{Names: []string{"example.com"}, Challenge: HTTP01, HTTPSolver: sink}, "acme account key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Obtain(context.Background(), acct, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNewRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{DirectoryURL: "http://ca.test/dir"}); err == nil {
		t.Fatal("accepted a plain-http directory")
	}
}

func TestAccountKeyRoundTrip(t *testing.T) {
	t.Parallel()
	// The stored key must come back as the same signer.
	c := mustSelfSigned(t, "roundtrip.test")
	k, err := parseKey(c.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(again); b == nil || b.Type != "EC PRIVATE KEY" {
		t.Fatalf("re-encoded key: %q", again)
	}
}

// DNS-01 orders that use the same resolvers run side by side: each order's
// updates wait for an update of the other, which could never come if the
// orders ran one at a time.
func TestDNS01OrdersRunTogether(t *testing.T) {
	f := newFixture(t)
	var (
		mu     sync.Mutex
		seen   = map[string]bool{}
		met    = make(chan struct{})
		once   sync.Once
		gaveUp bool
	)
	f.dns.SetUpdateHook(func(names []string) {
		mu.Lock()
		for _, n := range names {
			for _, o := range []string{"one", "two"} {
				if strings.HasSuffix(n, "."+o+".example.test.") {
					seen[o] = true
				}
			}
		}
		both := seen["one"] && seen["two"]
		mu.Unlock()
		if both {
			once.Do(func() { close(met) })
		}
		select {
		case <-met:
		case <-time.After(5 * time.Second):
			mu.Lock()
			gaveUp = true
			mu.Unlock()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	provider := RFC2136{Nameserver: f.dns.Addr(), TSIGKey: tsigKey, TSIGSecret: tsigSecret, TSIGAlgorithm: "hmac-sha256",
		Propagation: Propagation{Timeout: 30 * time.Second, Interval: 50 * time.Millisecond}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"*.one.example.test", "*.two.example.test"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.client.Obtain(ctx, f.acct, Request{Names: []string{name}, Challenge: DNS01, DNS: provider})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("order %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if gaveUp {
		t.Error("an order's update waited in vain for the other order's: the orders ran one at a time")
	}
}

// Building a lego client for an order leaves the Client's own HTTP client
// as it was: lego wraps the transport of the client it is given, which on a
// shared one would add a layer per order and race between orders.
func TestOrdersLeaveTheSharedHTTPClientAlone(t *testing.T) {
	f := newFixture(t)
	before := f.client.http.Transport
	u, err := f.client.accountUser(f.acct)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := f.client.lego(u); err != nil {
			t.Fatal(err)
		}
	}
	if f.client.http.Transport != before {
		t.Fatalf("the shared transport became %T", f.client.http.Transport)
	}
}
