package deploy

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// TestTLSFollowsTheCertificate checks that HTTPS settings take effect while the node has
// a certificate for the domain, and that losing it degrades the domain to plain HTTP
// instead of leaving the whole server unrenderable.
func TestTLSFollowsTheCertificate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		certs := map[string]*nginxconf.CertRef{"tls.example.com": {CertPath: "/etc/ssl/tls.pem", KeyPath: "/etc/ssl/tls.key"}}
		f := newFixture(t, db, Config{Certificate: func(_ context.Context, domain string) (*nginxconf.CertRef, error) {
			mu.Lock()
			defer mu.Unlock()
			return certs[domain], nil
		}})
		srv := f.server(t, "web1")
		in := proxyconf.DomainInput{Name: "tls.example.com", ForceHTTPS: true, HSTS: true, HTTP2: true, Servers: []int{srv.ID}}
		if _, err := f.svc.CreateDomain(ctx, admin, in); err != nil {
			t.Fatalf("https settings with a certificate: %v", err)
		}
		in.Name = "plain.example.com"
		if _, err := f.svc.CreateDomain(ctx, admin, in); err == nil {
			t.Fatal("https settings without a certificate were accepted")
		}
		domainFile := func() string {
			t.Helper()
			rev, _, err := f.dep.Render(ctx, srv.ID)
			if err != nil {
				t.Fatal(err)
			}
			files, err := Files(rev)
			if err != nil {
				t.Fatal(err)
			}
			for _, file := range files {
				if file.Path == "http/domain-tls.example.com.conf" {
					return string(file.Content)
				}
			}
			t.Fatal("no domain file rendered")
			return ""
		}
		conf := domainFile()
		for _, want := range []string{"ssl_certificate /etc/ssl/tls.pem;", "return 301 https://", "Strict-Transport-Security"} {
			if !strings.Contains(conf, want) {
				t.Errorf("rendered domain lacks %q:\n%s", want, conf)
			}
		}
		mu.Lock()
		delete(certs, "tls.example.com")
		mu.Unlock()
		conf = domainFile()
		for _, gone := range []string{"ssl_certificate", "return 301 https://", "Strict-Transport-Security"} {
			if strings.Contains(conf, gone) {
				t.Errorf("domain without a certificate still renders %q:\n%s", gone, conf)
			}
		}
		// Said with the revision that drops HTTPS, not again on every render
		// that changes nothing (nginx.sync renders every few minutes).
		domainFile()
		if n := strings.Count(f.logs.String(), "domain has no certificate; serving it over plain HTTP"); n != 1 {
			t.Errorf("warned %d times, want once:\n%s", n, f.logs.String())
		}
	})
}
