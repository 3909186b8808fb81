package deploy

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// TestCertificateFilesTravelInTheRelease checks that a domain's chain and key are files
// of the release nginx reads them from, that the key is stored in the revision only as a
// reference resolved when the revision is sent, and that a new certificate makes a new
// revision.
func TestCertificateFilesTravelInTheRelease(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const secretKey = "-----BEGIN EC PRIVATE KEY-----\nsecret\n-----END EC PRIVATE KEY-----\n"
		var mu sync.Mutex
		chain := "-----BEGIN CERTIFICATE-----\nfirst\n-----END CERTIFICATE-----\n"
		ref := "certificate:1"
		tlsHook := func(_ context.Context, domain string) (*TLSMaterial, error) {
			mu.Lock()
			defer mu.Unlock()
			if domain != "*.tls.example.com" {
				return nil, nil
			}
			return &TLSMaterial{
				Chain: TLSFile{Content: []byte(chain), Mode: 0o644},
				Key:   TLSFile{Content: []byte("# private key, sent sealed\n"), Ref: ref, Mode: 0o600},
			}, nil
		}
		var resolved []string
		f := newFixture(t, db, Config{TLS: tlsHook, Secret: func(_ context.Context, r string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			resolved = append(resolved, r)
			return []byte(secretKey), nil
		}})
		srv := f.server(t, "web1")
		f.site(t, "*.tls.example.com", srv.ID)
		f.site(t, "plain.example.com", srv.ID)
		rev, _, err := f.dep.Render(ctx, srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(rev.Files), "secret") {
			t.Fatal("the revision stores the private key")
		}
		files, err := Files(rev)
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string]string{}
		for _, fl := range files {
			byPath[fl.Path] = string(fl.Content)
		}
		if byPath["tls/_.tls.example.com.crt"] != chain {
			t.Fatalf("chain file: %q", byPath["tls/_.tls.example.com.crt"])
		}
		conf := byPath["http/domain-_.tls.example.com.conf"]
		for _, want := range []string{
			"ssl_certificate /etc/nginx/gatehouse/current/tls/_.tls.example.com.crt;",
			"ssl_certificate_key /etc/nginx/gatehouse/current/tls/_.tls.example.com.key;",
		} {
			if !strings.Contains(conf, want) {
				t.Errorf("domain file lacks %q:\n%s", want, conf)
			}
		}
		for p := range byPath {
			if strings.HasPrefix(p, "tls/plain") {
				t.Errorf("a domain without a certificate got %s", p)
			}
		}

		f.fake.setConnected(nodeID(srv.ID), true)
		if _, err := f.dep.Deploy(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		sentCmds := f.fake.take()
		if len(sentCmds) != 1 {
			t.Fatalf("sent %d commands", len(sentCmds))
		}
		var keyOK, chainOK bool
		for _, nf := range sentCmds[0].cmd.GetApplyNginxRelease().GetFiles() {
			switch nf.GetPath() {
			case "tls/_.tls.example.com.key":
				keyOK = string(nf.GetContent()) == secretKey && nf.GetMode() == 0o600
			case "tls/_.tls.example.com.crt":
				chainOK = string(nf.GetContent()) == chain && nf.GetMode() == 0o644
			}
		}
		if !keyOK || !chainOK {
			t.Fatalf("agent did not receive the key (%v) and chain (%v) with their modes", keyOK, chainOK)
		}
		if len(resolved) != 1 || resolved[0] != ref {
			t.Fatalf("resolved %v", resolved)
		}

		// Same certificate: same revision. New certificate: new revision.
		again, created, err := f.dep.Render(ctx, srv.ID)
		if err != nil || created || again.Number != rev.Number {
			t.Fatalf("re-render without a change: created=%v number=%d err=%v", created, again.Number, err)
		}
		mu.Lock()
		chain = "-----BEGIN CERTIFICATE-----\nsecond\n-----END CERTIFICATE-----\n"
		ref = "certificate:2"
		mu.Unlock()
		next, created, err := f.dep.Render(ctx, srv.ID)
		if err != nil || !created || next.Number != rev.Number+1 {
			t.Fatalf("re-render after a new certificate: created=%v number=%d err=%v", created, next.Number, err)
		}
	})
}
