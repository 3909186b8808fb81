package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

// TestDNSChecks checks names against a DNS server on loopback: a name pointing
// at the server, one pointing elsewhere, one that does not exist, CAA that
// forbids the CA, and resolvers that never answer; each run is kept.
func TestDNSChecks(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openDB(t, pg)
			dns := dnstest.New(t, "example.test")
			svc, err := New(db, newBox(t), nil, nil, Config{
				DirectoryURL: "https://127.0.0.1:1/dir", CAAIdentity: "ca.test",
				Resolvers: []string{dns.Addr()}, DNSTimeout: time.Second,
			}, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			srv := db.Client.Server.Create().SetName("web1").SetAddress("192.0.2.10").SaveX(ctx)
			d := db.Client.Domain.Create().SetName("www.example.test").SetAliases([]string{"old.example.test", "gone.example.test"}).AddServers(srv).SaveX(ctx)
			dns.SetAddrs("www.example.test", addr("192.0.2.10"))
			dns.SetAddrs("old.example.test", addr("198.51.100.7"))
			dns.Add(t, `old.example.test. 60 IN CAA 0 issue "other-ca.test"`)

			rep, err := svc.CheckDomain(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range rep.Results {
				got[string(r.Kind)+" "+r.Name] = r.Status + ": " + r.Message
			}
			want := map[string][]string{
				"address www.example.test":  {"ok: ", "points here (192.0.2.10)"},
				"address old.example.test":  {"points_elsewhere: ", "points elsewhere: 198.51.100.7"},
				"address gone.example.test": {"not_resolving: ", "does not exist (NXDOMAIN)"},
				"caa www.example.test":      {"ok: ", "no CAA records"},
				"caa old.example.test":      {"forbidden: ", "forbid ca.test to issue"},
				"ns www.example.test":       {"ok: ", "zone example.test, served by ns1.example.test"},
			}
			for k, parts := range want {
				for _, p := range parts {
					if !strings.Contains(got[k], p) {
						t.Errorf("%s = %q, want it to contain %q", k, got[k], p)
					}
				}
			}
			if rep.Worst() != StatusNotResolving {
				t.Errorf("worst = %q", rep.Worst())
			}

			// The resolver stops answering: the next run says so, the first is kept.
			svc.checker.Resolvers = []string{dnstest.Blackhole(t)}
			svc.checker.Timeout = 200 * time.Millisecond
			rep2, err := svc.CheckDomain(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rep2.Worst() != StatusError || !strings.Contains(rep2.Summary(), "timed out") {
				t.Errorf("unreachable resolver: worst %q, summary %q", rep2.Worst(), rep2.Summary())
			}
			hist, err := svc.DNSHistory(ctx, d.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 2 || hist[0].Worst() != StatusError || hist[1].Worst() != StatusNotResolving {
				t.Fatalf("history: %d runs", len(hist))
			}
			latest, err := svc.LatestDNS(ctx, []int{d.ID})
			if err != nil || latest[d.ID].Worst() != StatusError {
				t.Fatalf("latest = %+v, %v", latest, err)
			}
		})
	}
}

// TestIssueOverHTTP01 orders a certificate through the nodes serving the
// domain, stores it with its key sealed, hands it to the deployer, and renews
// it when due without anyone asking.
func TestIssueOverHTTP01(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w.dns.SetAddrs("app.example.test", loopback)
	w.dns.SetAddrs("www.app.example.test", loopback)
	d := w.domain(t, "app.example.test", "www.app.example.test")

	// Adding a domain orders nothing: only a chosen policy does.
	if due, err := w.svc.Due(ctx, time.Now()); err != nil || len(due) != 0 {
		t.Fatalf("due before any policy: %v %v", due, err)
	}
	if _, err := w.svc.SetPolicy(ctx, d.ID, PolicyInput{Mode: "acme", Challenge: "http-01"}); err != nil {
		t.Fatal(err)
	}
	// While no agent of its servers is connected (a controller that just
	// started), an http-01 domain waits instead of failing into a backoff.
	w.node.setConnected(false)
	if due, _ := w.svc.Due(ctx, time.Now()); len(due) != 0 {
		t.Fatalf("an http-01 domain with no connected server is due: %v", due)
	}
	if err := w.svc.RenewDue(ctx, func(string, ...any) {}); err != nil {
		t.Fatalf("renewal job with the node offline: %v", err)
	}
	if p, _ := w.svc.Policy(ctx, d.ID); p.Failures != 0 || p.NextAttemptAt != nil {
		t.Fatalf("waiting for the node counted as a failure: %+v", p)
	}
	w.node.setConnected(true)
	if due, _ := w.svc.Due(ctx, time.Now()); len(due) != 1 {
		t.Fatalf("a domain without a certificate is not due: %v", due)
	}

	c, taskID, err := w.svc.Issue(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Names, []string{"app.example.test", "www.app.example.test"}) || c.Status != certificate.StatusActive || c.Source != certificate.SourceAcme {
		t.Fatalf("certificate = %+v", c)
	}
	if bytes.Contains(c.KeySealed, []byte("PRIVATE KEY")) {
		t.Fatal("the key is stored in the clear")
	}
	if w.node.left() != 0 {
		t.Fatalf("%d challenge tokens left on the node", w.node.left())
	}
	if ids := w.changes.take(); !slices.Equal(ids, []int{w.server.ID}) {
		t.Fatalf("servers scheduled for a new revision: %v", ids)
	}
	tk, err := w.svc.Task(ctx, taskID)
	if err != nil || tk.Status != "succeeded" || !strings.Contains(tk.Log, "preflight resolves ok") || !strings.Contains(tk.Log, "issued serial "+c.Serial) {
		t.Fatalf("task = %+v, %v", tk, err)
	}

	// What the deployer ships verifies against the CA's root, and the key
	// it resolves belongs to the certificate.
	m, err := w.svc.TLS(ctx, "app.example.test")
	if err != nil || m == nil {
		t.Fatalf("tls = %v, %v", m, err)
	}
	if bytes.Contains(m.Key.Content, []byte("PRIVATE")) || m.Key.Ref == "" {
		t.Fatalf("the release would carry the key itself: %q", m.Key.Content)
	}
	key, err := w.svc.Secret(ctx, m.Key.Ref)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(m.Chain.Content, key)
	if err != nil {
		t.Fatalf("chain and key do not pair: %v", err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		ic, _ := x509.ParseCertificate(der)
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "www.app.example.test", Roots: w.ca.Roots(), Intermediates: inter}); err != nil {
		t.Fatalf("verify against the CA root: %v", err)
	}

	// Fresh: not due. With renew_before beyond its lifetime: renewed by the job.
	if due, _ := w.svc.Due(ctx, time.Now()); len(due) != 0 {
		t.Fatalf("a fresh certificate is due: %v", due)
	}
	w.svc.cfg.RenewBefore = 100 * 24 * time.Hour
	var logged []string
	if err := w.svc.RenewDue(ctx, func(f string, a ...any) { logged = append(logged, f) }); err != nil {
		t.Fatal(err)
	}
	now, err := w.svc.Active(ctx, d.ID)
	if err != nil || now == nil || now.Fingerprint == c.Fingerprint {
		t.Fatalf("not renewed: %+v %v (log %v)", now, err, logged)
	}
	old, _ := w.db.Client.Certificate.Get(ctx, c.ID)
	if old.Status != certificate.StatusSuperseded {
		t.Fatalf("previous certificate status %s", old.Status)
	}
	if ids := w.changes.take(); len(ids) != 1 {
		t.Fatalf("renewal did not schedule a new revision: %v", ids)
	}
}

// TestPreflightRefusesBeforeOrdering: a name resolving elsewhere, or CAA
// forbidding the CA, fails before the CA sees an order, saying why.
func TestPreflightRefusesBeforeOrdering(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w.dns.SetAddrs("away.example.test", addr("203.0.113.9"))
	away := w.domain(t, "away.example.test")
	w.dns.SetAddrs("caa.example.test", loopback)
	w.dns.Add(t, `caa.example.test. 60 IN CAA 0 issue "other-ca.test"`)
	caa := w.domain(t, "caa.example.test")

	for _, tc := range []struct {
		id   int
		want []string
	}{
		{away.ID, []string{"away.example.test resolves to 203.0.113.9, not to a node that serves it"}},
		{caa.ID, []string{"forbid pebble.letsencrypt.org to issue", "other-ca.test"}},
	} {
		findings, err := w.svc.Preflight(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if acme.Blocking(findings) == nil {
			t.Fatalf("preflight passed: %+v", findings)
		}
		_, _, err = w.svc.Issue(ctx, tc.id)
		if !acme.IsPreflight(err) {
			t.Fatalf("issue err = %v, want a preflight refusal", err)
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
		}
		p, _ := w.svc.Policy(ctx, tc.id)
		if p.Failures != 1 || p.NextAttemptAt == nil || !strings.Contains(p.LastError, tc.want[0]) {
			t.Errorf("policy after a refusal: %+v", p)
		}
	}
	if w.ca.Orders() != 0 {
		t.Fatalf("the CA saw %d orders", w.ca.Orders())
	}
	// The failed domains wait out their backoff before the next automatic try.
	if due, _ := w.svc.Due(ctx, time.Now()); len(due) != 0 {
		t.Fatalf("due during backoff: %v", due)
	}
	if due, _ := w.svc.Due(ctx, time.Now().Add(61*time.Minute)); len(due) != 2 {
		t.Fatalf("due after backoff: %d", len(due))
	}
}

// TestCAErrorIsShownAsWritten: when the CA refuses, its problem document is
// what the admin reads, in the task and in the domain's last error.
func TestCAErrorIsShownAsWritten(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w.dns.AddZone("blocked.test")
	w.dns.SetAddrs("www.shop.blocked.test", loopback)
	d := w.domain(t, "www.shop.blocked.test")
	_, taskID, err := w.svc.Issue(ctx, d.ID)
	var p *acme.Problem
	if !errors.As(err, &p) || p.Type != "urn:ietf:params:acme:error:rejectedIdentifier" {
		t.Fatalf("err = %v, want the CA's rejectedIdentifier problem", err)
	}
	tk, _ := w.svc.Task(ctx, taskID)
	pol, _ := w.svc.Policy(ctx, d.ID)
	for _, text := range []string{tk.Error, tk.Log, pol.LastError} {
		if !strings.Contains(text, "the CA answered urn:ietf:params:acme:error:rejectedIdentifier: "+p.Detail) {
			t.Errorf("%q does not show the CA's words", text)
		}
	}
}

// TestDNS01Wildcard issues a wildcard through a stored RFC 2136 provider whose
// TSIG secret is sealed.
func TestDNS01Wildcard(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := w.svc.CreateProvider(ctx, ProviderInput{Name: "local", Kind: "rfc2136", Nameserver: w.dns.Addr(), TSIGKey: tsigKey, TSIGSecret: tsigSecret})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.SecretSealed, []byte(tsigSecret)) {
		t.Fatal("tsig secret stored in the clear")
	}
	d := w.domain(t, "*.wild.example.test")
	if _, err := w.svc.SetPolicy(ctx, d.ID, PolicyInput{Mode: "acme", Challenge: "dns-01"}); err == nil {
		t.Fatal("dns-01 without a provider accepted")
	}
	if _, err := w.svc.SetPolicy(ctx, d.ID, PolicyInput{Mode: "acme", Challenge: "dns-01", DNSProviderID: p.ID}); err != nil {
		t.Fatal(err)
	}
	before := w.dns.Updates()
	c, _, err := w.svc.Issue(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Names, []string{"*.wild.example.test"}) || c.Challenge != "dns-01" {
		t.Fatalf("certificate %+v", c)
	}
	if w.dns.Updates()-before != 2 {
		t.Fatalf("dns updates: %d", w.dns.Updates()-before)
	}
	if err := w.svc.DeleteProvider(ctx, p.ID); err == nil {
		t.Fatal("deleted a provider in use")
	}
	for _, bad := range []ProviderInput{
		{Name: "Bad Name", Kind: "rfc2136", Nameserver: "127.0.0.1"},
		{Name: "x", Kind: "rfc2136", Nameserver: "$(reboot)"},
		{Name: "x", Kind: "cloudflare", APIToken: "short"},
		{Name: "x", Kind: "route53"},
	} {
		var fe *FieldError
		if _, err := w.svc.CreateProvider(ctx, bad); !errors.As(err, &fe) {
			t.Errorf("%+v: err = %v, want a field error", bad, err)
		}
	}
}

// TestWatchFlagsAnotherCertificate: a node serving a different certificate
// than the stored one is reported, one serving the stored one is not.
func TestWatchFlagsAnotherCertificate(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w.dns.SetAddrs("seen.example.test", loopback)
	d := w.domain(t, "seen.example.test")
	c, _, err := w.svc.Issue(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := w.svc.TLS(ctx, d.Name)
	key, _ := w.svc.Secret(ctx, m.Key.Ref)
	stored, err := tls.X509KeyPair(m.Chain.Content, key)
	if err != nil {
		t.Fatal(err)
	}
	serving := &stored
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving, nil }}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	httpsPort, _ := strconv.Atoi(port)
	w.svc.cfg.Endpoint = func(context.Context, *ent.Server) (Endpoint, error) {
		return Endpoint{Host: host, HTTPSPort: httpsPort}, nil
	}

	obs, err := w.svc.WatchDomain(ctx, d.ID)
	if err != nil || len(obs) != 1 || !obs[0].Matches || obs[0].Fingerprint != c.Fingerprint {
		t.Fatalf("serving the stored certificate: %+v %v", obs, err)
	}
	if obs[0].Edges.Server == nil || obs[0].Edges.Server.Name != "web1" {
		t.Fatalf("observation does not name its server: %+v", obs[0].Edges.Server)
	}
	otherPEM, otherKey := selfSigned(t, "seen.example.test")
	other, err := tls.X509KeyPair(otherPEM, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	serving = &other
	obs, err = w.svc.WatchDomain(ctx, d.ID)
	if err != nil || len(obs) != 1 || obs[0].Matches {
		t.Fatalf("serving another certificate: %+v %v", obs, err)
	}
	if !strings.Contains(obs[0].Message, "server web1: the node serves a different certificate") || !strings.Contains(obs[0].Message, "expected serial "+c.Serial) {
		t.Fatalf("message = %q", obs[0].Message)
	}
	if err := w.svc.WatchAll(ctx, func(string, ...any) {}); err == nil {
		t.Fatal("watch job passed with a mismatch")
	}
	latest, err := w.svc.Served(ctx, d.ID)
	if err != nil || len(latest) != 1 || latest[0].Matches {
		t.Fatalf("latest observation %+v %v", latest, err)
	}

	// Until the node's agent says where nginx listens, nothing is dialled
	// or recorded, and the job does not fail on a guess.
	w.svc.cfg.Endpoint = func(context.Context, *ent.Server) (Endpoint, error) { return Endpoint{}, ErrEndpointUnknown }
	if obs, err := w.svc.WatchDomain(ctx, d.ID); err != nil || len(obs) != 0 {
		t.Fatalf("watch with the endpoint unknown: %+v %v", obs, err)
	}
	if err := w.svc.WatchAll(ctx, func(string, ...any) {}); err != nil {
		t.Fatalf("watch job with the endpoint unknown: %v", err)
	}
	if latest, _ := w.svc.Served(ctx, d.ID); len(latest) != 1 || latest[0].Matches {
		t.Fatalf("an unknown endpoint changed the latest observation: %+v", latest)
	}

	// A node the controller will not dial gets a result saying why, and
	// nothing is dialled.
	w.svc.cfg.Endpoint = func(_ context.Context, srv *ent.Server) (Endpoint, error) {
		_, err := ProbeHost(srv, "127.0.0.1")
		return Endpoint{}, err
	}
	obs, err = w.svc.WatchDomain(ctx, d.ID)
	if err != nil || len(obs) != 1 || obs[0].Matches || obs[0].Address != "" || !strings.Contains(obs[0].Message, "not probed") {
		t.Fatalf("watch of a node reporting loopback: %+v %v", obs, err)
	}
}

func TestPolicyAndUploadValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, false)
	svc, err := New(db, newBox(t), nil, &changes{}, Config{DirectoryURL: "https://127.0.0.1:1/dir", CAAIdentity: "ca.test"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	d := db.Client.Domain.Create().SetName("up.example.test").SaveX(ctx)
	var fe *FieldError
	if _, err := svc.SetPolicy(ctx, d.ID, PolicyInput{Mode: "magic"}); !errors.As(err, &fe) || fe.Field != "mode" {
		t.Fatalf("bad mode: %v", err)
	}
	if _, err := svc.Upload(ctx, d.ID, []byte("not pem"), []byte("nope")); !errors.As(err, &fe) || fe.Field != "certificate" {
		t.Fatalf("garbage upload: %v", err)
	}
	certPEM, keyPEM := selfSigned(t, "up.example.test")
	_, otherKey := selfSigned(t, "up.example.test")
	if _, err := svc.Upload(ctx, d.ID, certPEM, otherKey); !errors.As(err, &fe) || fe.Field != "key" {
		t.Fatalf("mismatched key: %v", err)
	}
	wrongPEM, wrongKey := selfSigned(t, "other.example.test")
	if _, err := svc.Upload(ctx, d.ID, wrongPEM, wrongKey); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not for up.example.test") {
		t.Fatalf("certificate for another name: %v", err)
	}
	c, err := svc.Upload(ctx, d.ID, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != certificate.SourceUpload || c.NotAfter.IsZero() {
		t.Fatalf("uploaded %+v", c)
	}
	p, _ := svc.Policy(ctx, d.ID)
	if p.Mode != certpolicy.ModeUpload {
		t.Fatalf("policy mode after upload: %s", p.Mode)
	}
	if due, _ := svc.Due(ctx, time.Now().Add(10*365*24*time.Hour)); len(due) != 0 {
		t.Fatal("an uploaded certificate is renewed automatically")
	}
}

// TestRenewDueSeveral: the renewal job orders the certificates of several
// due domains at once, each its own task, and every one arrives.
func TestRenewDueSeveral(t *testing.T) {
	w := newWorld(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var ids []int
	for _, name := range []string{"a.example.test", "b.example.test", "c.example.test", "d.example.test", "e.example.test", "f.example.test"} {
		w.dns.SetAddrs(name, loopback)
		d := w.domain(t, name)
		if _, err := w.svc.SetPolicy(ctx, d.ID, PolicyInput{Mode: "acme", Challenge: "http-01"}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	var mu sync.Mutex
	var logged []string
	if err := w.svc.RenewDue(ctx, func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}); err != nil {
		t.Fatalf("renewal job: %v (log %v)", err, logged)
	}
	for _, id := range ids {
		if c, err := w.svc.Active(ctx, id); err != nil || c == nil {
			t.Errorf("domain %d has no certificate: %v", id, err)
		}
	}
	if len(logged) != len(ids) {
		t.Errorf("log: %v", logged)
	}
}
