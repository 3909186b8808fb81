package controller

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
)

// The certificates overview lists every domain, the soonest expiry first
// and those without a certificate last, with its renewal state and what the
// nodes serve, and every https monitor's certificate; users read it,
// anonymous callers do not.
func TestCertificatesOverview(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	now := time.Now()
	edge := db.Server.Create().SetName("edge").SaveX(ctx)
	cert := func(name string, left time.Duration, source certificate.Source) int {
		d := db.Domain.Create().SetName(name).AddServers(edge).SaveX(ctx)
		db.Certificate.Create().SetDomainID(d.ID).SetNames([]string{name, "www." + name}).SetNotBefore(now.Add(-time.Hour)).
			SetNotAfter(now.Add(left)).SetFingerprint(name).SetCertPem("x").SetKeySealed([]byte("x")).SetIssuer("Test CA").
			SetSource(source).ExecX(ctx)
		return d.ID
	}
	later := cert("later.example", 60*24*time.Hour, certificate.SourceAcme)
	soon := cert("soon.example", 5*24*time.Hour, certificate.SourceUpload)
	cert("gone.example", -time.Hour, certificate.SourceAcme)
	bare := db.Domain.Create().SetName("bare.example").SaveX(ctx)
	db.CertPolicy.Create().SetDomainID(bare.ID).SetFailures(2).SetLastError(`urn:ietf:params:acme:error:dns: <b>NXDOMAIN</b>`).
		SetNextAttemptAt(now.Add(time.Hour)).ExecX(ctx)
	db.CertPolicy.Create().SetDomainID(soon).SetMode(certpolicy.ModeUpload).ExecX(ctx)
	db.ServedCertificate.Create().SetDomainID(later).SetServerID(edge.ID).SetAddress("127.0.0.1:443").SetMatches(false).ExecX(ctx)
	db.Monitor.Create().SetName("api").SetKind("http").SetTarget("https://api.example.test/").SetCertNotAfter(now.Add(3 * 24 * time.Hour)).
		SetIgnoreTLSErrors(true).ExecX(ctx)
	db.Monitor.Create().SetName("db").SetKind("tcp").SetTarget("127.0.0.1:1").ExecX(ctx)

	if code, _ := e.api("GET", "/api/v1/certificates", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", code)
	}
	var v certOverviewJSON
	if code, b := e.api("GET", "/api/v1/certificates", e.user, nil, &v); code != http.StatusOK {
		t.Fatalf("overview: %d %s", code, b)
	}
	var order, states []string
	for _, d := range v.Domains {
		order, states = append(order, d.Domain), append(states, d.State)
	}
	if strings.Join(order, " ") != "gone.example soon.example later.example bare.example" ||
		strings.Join(states, " ") != "expired expiring ok missing" {
		t.Fatalf("domains %v %v", order, states)
	}
	byName := map[string]domainCertJSON{}
	for _, d := range v.Domains {
		byName[d.Domain] = d
	}
	if d := byName["soon.example"]; d.Renewal != "manual" || d.DaysLeft == nil || *d.DaysLeft != 4 || d.Source != "upload" || len(d.Names) != 2 {
		t.Errorf("soon.example: %+v", d)
	}
	if d := byName["later.example"]; d.Served != 1 || d.Mismatched != 1 || d.Renewal != "automatic" || d.Issuer != "Test CA" {
		t.Errorf("later.example: %+v", d)
	}
	if d := byName["bare.example"]; d.NotAfter != nil || d.Failures != 2 || d.NextAttemptAt == nil || !strings.Contains(d.LastError, "NXDOMAIN") {
		t.Errorf("bare.example: %+v", d)
	}
	if len(v.Monitors) != 1 || v.Monitors[0].Monitor != "api" || v.Monitors[0].State != "expiring" || !v.Monitors[0].Accepted {
		t.Errorf("monitors: %+v", v.Monitors)
	}

	code, _, page := send(t, e.browser(e.userLogin), "GET", e.base+"/certificates", nil)
	if code != http.StatusOK || !strings.Contains(page, `data-cert-domain="gone.example" data-cert-state="expired"`) ||
		!strings.Contains(page, "1 of 1 nodes serve another") || !strings.Contains(page, "2 failed attempts") ||
		strings.Contains(page, "<b>NXDOMAIN</b>") || !strings.Contains(page, `data-cert-monitor="api" data-cert-state="expiring"`) {
		t.Errorf("certificates page: %d", code)
	}
	if _, _, page := send(t, e.browser(e.userLogin), "GET", e.base+"/domains", nil); !strings.Contains(page, `href="/certificates"`) {
		t.Error("the domains page does not link the certificates")
	}
}
