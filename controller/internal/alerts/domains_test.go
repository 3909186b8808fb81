package alerts

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/ent/dnscheck"
	"github.com/gatehousehq/gatehouse/ent/healthprobe"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// domainFixture adds a second server, web-2 (unlabelled), to the fixture's
// web-1 (labelled edge), and helpers to record what the certificate service
// and the DNS check job store.
type domainFixture struct {
	*fixture
	web2 *ent.Server
}

func newDomainFixture(t *testing.T, db *store.DB) *domainFixture {
	fx := newFixture(t, db)
	web2, err := db.Client.Server.Create().SetName("web-2").SetStatus(server.StatusOnline).SetLastSeenAt(fx.clk.t).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &domainFixture{fixture: fx, web2: web2}
}

func (fx *domainFixture) domain(t *testing.T, name string, servers ...*ent.Server) *ent.Domain {
	t.Helper()
	d, err := fx.db.Client.Domain.Create().SetName(name).AddServers(servers...).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cert stores an active certificate valid for left from now, superseding the
// previous one as the certificate service does.
func (fx *domainFixture) cert(t *testing.T, d *ent.Domain, left time.Duration) {
	t.Helper()
	ctx := context.Background()
	if _, err := fx.db.Client.Certificate.Update().Where(certificate.DomainID(d.ID), certificate.StatusEQ(certificate.StatusActive)).
		SetStatus(certificate.StatusSuperseded).Save(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := fx.db.Client.Certificate.Query().Count(ctx)
	if err := fx.db.Client.Certificate.Create().SetDomainID(d.ID).SetNames([]string{d.Name}).
		SetNotBefore(fx.clk.t.Add(-time.Hour)).SetNotAfter(fx.clk.t.Add(left)).SetFingerprint(strconv.Itoa(n)).
		SetSerial("0" + strconv.Itoa(n)).SetCertPem("x").SetKeySealed([]byte("x")).SetSource(certificate.SourceAcme).Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// attempt records an automatic issuance attempt as the certificate service does.
func (fx *domainFixture) attempt(t *testing.T, d *ent.Domain, failure string) {
	t.Helper()
	ctx := context.Background()
	p, err := fx.db.Client.CertPolicy.Query().Where(certpolicy.DomainID(d.ID)).Only(ctx)
	if ent.IsNotFound(err) {
		p, err = fx.db.Client.CertPolicy.Create().SetDomainID(d.ID).Save(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	u := p.Update().SetLastAttemptAt(fx.clk.t)
	if failure == "" {
		u.SetFailures(0).SetLastError("").ClearNextAttemptAt()
	} else {
		u.SetFailures(p.Failures + 1).SetLastError(failure).SetNextAttemptAt(fx.clk.t.Add(time.Hour))
	}
	if err := u.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// dnsRun stores one DNS check run at the current time: an address result
// per name with the given status, plus an ns result that must not matter.
func (fx *domainFixture) dnsRun(t *testing.T, d *ent.Domain, status map[string]string) {
	t.Helper()
	var bulk []*ent.DNSCheckCreate
	for name, st := range status {
		bulk = append(bulk, fx.db.Client.DNSCheck.Create().SetDomainID(d.ID).SetName(name).SetKind(dnscheck.KindAddress).
			SetStatus(st).SetMessage(name+" "+strings.ReplaceAll(st, "_", " ")).SetCheckedAt(fx.clk.t))
	}
	bulk = append(bulk, fx.db.Client.DNSCheck.Create().SetDomainID(d.ID).SetName(d.Name).SetKind(dnscheck.KindNs).
		SetStatus("error").SetMessage("no answer").SetCheckedAt(fx.clk.t))
	if _, err := fx.db.Client.DNSCheck.CreateBulk(bulk...).Save(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (fx *domainFixture) rule(t *testing.T, r Rule) Rule {
	t.Helper()
	r.Enabled = true
	saved, err := fx.e.SaveRule(context.Background(), r, audit.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	return saved
}

// open returns the open incidents by rule id and subject.
func (fx *domainFixture) open(t *testing.T) map[string]*ent.Incident {
	t.Helper()
	out := map[string]*ent.Incident{}
	for _, inc := range fx.incidents(t) {
		if inc.State != incident.StateResolved {
			key := openKey(inc.RuleID, inc.Subject)
			if out[key] != nil {
				t.Fatalf("two open incidents for %s", key)
			}
			out[key] = inc
		}
	}
	return out
}

func (fx *domainFixture) sent() []notify.Notification {
	fx.rec.mu.Lock()
	defer fx.rec.mu.Unlock()
	return append([]notify.Notification(nil), fx.rec.got...)
}

func TestCertExpiringIncidents(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newDomainFixture(t, db)
		edge := fx.rule(t, Rule{Name: "Expiry edge", Kind: KindCertExpiring, Days: 14, Severity: SeverityWarning, Labels: []string{"edge"}})
		all := fx.rule(t, Rule{Name: "Expiry all", Kind: KindCertExpiring, Days: 7, Severity: SeverityCritical})
		a := fx.domain(t, "a.example", fx.server)
		b := fx.domain(t, "b.example", fx.web2) // served only outside the edge scope
		fx.domain(t, "no-cert.example", fx.server)
		far := fx.domain(t, "far.example", fx.server, fx.web2)
		fx.cert(t, a, 5*24*time.Hour)
		fx.cert(t, b, 3*24*time.Hour)
		fx.cert(t, far, 60*24*time.Hour)

		fx.eval(t)
		fx.eval(t)
		open := fx.open(t)
		if len(open) != 3 || open[openKey(edge.ID, "domain:a.example")] == nil || open[openKey(all.ID, "domain:a.example")] == nil ||
			open[openKey(all.ID, "domain:b.example")] == nil {
			t.Fatalf("open incidents %v, want edge×a, all×a and all×b", keys(open))
		}
		inc := open[openKey(edge.ID, "domain:a.example")]
		if inc.State != incident.StateFiring || inc.Severity != "warning" || inc.ServerID != 0 || inc.ServerName != "" ||
			!strings.Contains(inc.Summary, "a.example expires on") || !strings.Contains(inc.Summary, "in 5 days") {
			t.Fatalf("incident %+v", inc)
		}
		if v := ViewOf(inc, fx.clk.t); v.Domain != "a.example" {
			t.Fatalf("view names domain %q", v.Domain)
		}
		sent := fx.sent()
		if len(sent) != 3 {
			t.Fatalf("sent %d notifications over two evaluations, want one per incident", len(sent))
		}
		for _, n := range sent {
			if err := n.Validate(); err != nil {
				t.Errorf("notification %+v: %v", n, err)
			}
			if n.IncidentID == strconv.Itoa(inc.ID) {
				if n.Title != "Expiry edge on a.example" || !hasField(n, "Domain", "a.example") || !hasField(n, "Served by", "web-1") || hasField(n, "Server", "") {
					t.Errorf("notification %+v", n)
				}
			}
		}

		// A renewed certificate resolves both incidents of a.example.
		fx.clk.advance(time.Minute)
		fx.cert(t, a, 90*24*time.Hour)
		fx.eval(t)
		open = fx.open(t)
		if len(open) != 1 || open[openKey(all.ID, "domain:b.example")] == nil {
			t.Fatalf("after renewal: %v", keys(open))
		}
		resolved, err := db.Client.Incident.Get(context.Background(), inc.ID)
		if err != nil || resolved.State != incident.StateResolved || !strings.Contains(resolved.Summary, "in 90 days") {
			t.Fatalf("resolved incident %+v, %v", resolved, err)
		}
		if got := fx.rec.kinds(); len(got) != 5 || got[3] != "resolved" || got[4] != "resolved" {
			t.Fatalf("sent %v, want two recoveries", got)
		}

		// b.example leaving every server resolves its incident: no server in scope serves it.
		if err := db.Client.Domain.UpdateOne(b).ClearServers().Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after b.example left its server: %v", keys(open))
		}
	})
}

func TestCertRenewalFailedIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "Renewal", Kind: KindCertRenewal, Severity: SeverityCritical, ServerIDs: []int{fx.server.ID}})
		a := fx.domain(t, "xn--bcher-kva.example", fx.server)
		out := fx.domain(t, "out.example", fx.web2)
		fx.cert(t, a, 10*24*time.Hour)
		fx.attempt(t, out, "dns problem") // out of scope
		hostile := "acme: <b>urn:ietf:params:acme:error:rateLimited</b> & \"too many\"\n<script>alert(1)</script>"
		fx.attempt(t, a, hostile)
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "domain:xn--bcher-kva.example")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || inc.Value != 1 {
			t.Fatalf("open incidents %v", keys(open))
		}
		if strings.Contains(inc.Summary, "\n") || !strings.Contains(inc.Summary, "Certificate renewal for xn--bcher-kva.example failed") {
			t.Fatalf("summary %q", inc.Summary)
		}
		// A second failure updates the incident, not a new one or a new message.
		fx.clk.advance(time.Hour)
		fx.attempt(t, a, "timeout")
		fx.eval(t)
		if open := fx.open(t); len(open) != 1 || open[openKey(r.ID, "domain:xn--bcher-kva.example")].ID != inc.ID ||
			!strings.Contains(open[openKey(r.ID, "domain:xn--bcher-kva.example")].Summary, "2 times in a row") {
			t.Fatalf("after a second failure: %v", keys(open))
		}
		sent := fx.sent()
		if len(sent) != 1 {
			t.Fatalf("sent %d notifications, want 1", len(sent))
		}
		// Everything from outside is escaped in Telegram HTML.
		html := notify.RenderTelegram(sent[0])
		if strings.Contains(html, "<script>") || strings.Contains(html, "<b>urn") || !strings.Contains(html, "&lt;script&gt;") ||
			!strings.Contains(html, "xn--bcher-kva.example") {
			t.Fatalf("telegram message not escaped or not naming the domain:\n%s", html)
		}

		// The Telegram handler works without a server.
		h := fx.e.Handler()
		lines, err := h.Status(ctx, nil)
		if err != nil || len(lines) != 1 || lines[0].Name != "#"+strconv.Itoa(inc.ID)+" Renewal on xn--bcher-kva.example" {
			t.Fatalf("status %+v, %v", lines, err)
		}
		if err := h.Ack(ctx, strconv.Itoa(inc.ID), "@bob"); err != nil {
			t.Fatal(err)
		}
		if err := h.Silence(ctx, strconv.Itoa(inc.ID), time.Hour, "@bob"); err != nil {
			t.Fatal(err)
		}
		sils, err := fx.e.Silences(ctx)
		if err != nil || len(sils) != 1 || sils[0].RuleID != r.ID || sils[0].ServerID != 0 ||
			!strings.Contains(sils[0].Comment, "every domain") {
			t.Fatalf("silence %+v, %v", sils, err)
		}
		if err := fx.e.EndSilence(ctx, sils[0].ID, audit.System("t")); err != nil {
			t.Fatal(err)
		}

		// A success resolves it, with a recovery notice.
		fx.clk.advance(time.Hour)
		fx.attempt(t, a, "")
		fx.cert(t, a, 90*24*time.Hour)
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after a success: %v", keys(open))
		}
		if got := fx.rec.kinds(); len(got) != 2 || got[1] != "resolved" {
			t.Fatalf("sent %v", got)
		}
	})
}

func TestDNSMismatchIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "DNS", Kind: KindDNSMismatch, Severity: SeverityWarning})
		a := fx.domain(t, "a.example", fx.server)
		fixed := fx.domain(t, "fixed.example", fx.web2)
		fx.domain(t, "unchecked.example", fx.server)
		flaky := fx.domain(t, "flaky.example", fx.server)
		fx.dnsRun(t, fixed, map[string]string{"fixed.example": "points_elsewhere"})
		fx.dnsRun(t, a, map[string]string{"a.example": "ok", "www.a.example": "points_elsewhere"})
		fx.dnsRun(t, flaky, map[string]string{"flaky.example": "error"})
		fx.clk.advance(time.Second)
		fx.dnsRun(t, fixed, map[string]string{"fixed.example": "ok"}) // a newer run agrees
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "domain:a.example")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || !strings.Contains(inc.Summary, "www.a.example points elsewhere") {
			t.Fatalf("open incidents %v", keys(open))
		}
		// A resolver error keeps the state; a silence on the server serving
		// the domain holds the recovery notice.
		fx.clk.advance(time.Minute)
		fx.dnsRun(t, a, map[string]string{"a.example": "error", "www.a.example": "ok"})
		fx.eval(t)
		if open := fx.open(t); len(open) != 1 {
			t.Fatalf("after a resolver error: %v", keys(open))
		}
		if _, err := fx.e.CreateSilence(context.Background(), SilenceInput{ServerID: fx.web2.ID, StartsAt: fx.clk.t, EndsAt: fx.clk.t.Add(time.Hour)}, audit.System("t")); err != nil {
			t.Fatal(err)
		}
		fx.clk.advance(time.Minute)
		fx.dnsRun(t, a, map[string]string{"a.example": "ok", "www.a.example": "ok"})
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after a matching check: %v", keys(open))
		}
		if got := fx.rec.kinds(); len(got) != 2 || got[1] != "resolved" {
			t.Fatalf("sent %v; a silence of a server not serving the domain held the notice", got)
		}

		// A silence on web-1, which serves a.example, holds its notices.
		if _, err := fx.e.CreateSilence(context.Background(), SilenceInput{ServerID: fx.server.ID, StartsAt: fx.clk.t, EndsAt: fx.clk.t.Add(time.Hour)}, audit.System("t")); err != nil {
			t.Fatal(err)
		}
		fx.clk.advance(time.Minute)
		fx.dnsRun(t, a, map[string]string{"a.example": "not_resolving", "www.a.example": "ok"})
		fx.eval(t)
		if open := fx.open(t); len(open) != 1 || len(fx.rec.kinds()) != 2 {
			t.Fatalf("open %v, sent %v; want a silenced incident", keys(open), fx.rec.kinds())
		}
	})
}

func hasField(n notify.Notification, name, value string) bool {
	for _, f := range n.Fields {
		if f.Name == name && (value == "" || f.Value == value) {
			return true
		}
	}
	return false
}

func keys(m map[string]*ent.Incident) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A domain-down rule fires once a serving server's health probes have
// failed for the window, names the server, and resolves when it answers.
func TestDomainDownIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "Down", Kind: KindDomainDown, Severity: SeverityCritical, Window: 2 * time.Minute})
		shop := fx.domain(t, "shop.example", fx.server)
		if err := db.Client.HealthCheck.Create().SetDomainID(shop.ID).SetPath("/").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		off := fx.domain(t, "off.example", fx.server)
		if err := db.Client.HealthCheck.Create().SetDomainID(off.ID).SetPath("/").SetEnabled(false).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		probe := func(d *ent.Domain, ok bool, since time.Time) {
			t.Helper()
			// The service keeps one row per domain and server.
			if _, err := db.Client.HealthProbe.Delete().Where(healthprobe.DomainID(d.ID)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			c := db.Client.HealthProbe.Create().SetDomainID(d.ID).SetServerID(fx.server.ID).SetAt(fx.clk.t).SetOk(ok).SetStatus(502).
				SetMessage("answered 502 Bad Gateway")
			if !ok {
				c.SetFailingSince(since)
			}
			if err := c.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		start := fx.clk.t
		probe(shop, false, start)
		probe(off, false, start) // a check turned off is not judged
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("fired before the window: %v", keys(open))
		}
		fx.clk.advance(3 * time.Minute)
		probe(shop, false, start)
		probe(off, false, start)
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "domain:shop.example")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || !strings.Contains(inc.Summary, "web-1 since") ||
			!strings.Contains(inc.Summary, "502 Bad Gateway") {
			t.Fatalf("open incidents %v (%+v)", keys(open), inc)
		}
		fx.clk.advance(time.Minute)
		probe(shop, true, time.Time{})
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after the domain answered: %v", keys(open))
		}
	})
}

func TestCheckDomainDownWindow(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	d := DomainFacts{Name: "a.example", ServerIDs: []int{1, 2}}
	for _, tc := range []struct {
		name   string
		window time.Duration
		health []HealthResult
		breach bool
	}{
		{"no check", 0, nil, false},
		{"up", 0, []HealthResult{{ServerID: 1, OK: true}}, false},
		{"down at once", 0, []HealthResult{{ServerID: 1, Server: "a", FailingSince: now}}, true},
		{"down, window not reached", time.Minute, []HealthResult{{ServerID: 1, Server: "a", FailingSince: now.Add(-30 * time.Second)}}, false},
		{"down past the window", time.Minute, []HealthResult{{ServerID: 1, Server: "a", FailingSince: now.Add(-61 * time.Second)}}, true},
		{"a server that no longer serves it", 0, []HealthResult{{ServerID: 9, Server: "old", FailingSince: now.Add(-time.Hour)}}, false},
		{"in maintenance", 0, []HealthResult{{ServerID: 1, Server: "a", FailingSince: now.Add(-time.Hour)}}, false},
	} {
		d.Health, d.Maintenance = tc.health, tc.name == "in maintenance"
		c := checkDomainDown(Rule{Window: tc.window, Severity: SeverityWarning}, d, now)
		if (c.Breach != "") != tc.breach || (tc.health != nil) != c.Known {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
}

// A wrong-certificate rule fires when the newest watch of a serving server
// found another certificate, names the server, ignores older watches and
// servers that were not dialled, and resolves when the next watch matches.
func TestCertServedIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "Served", Kind: KindCertServed, Severity: SeverityWarning})
		shop := fx.domain(t, "shop.example", fx.server, fx.web2)
		fx.cert(t, shop, 40*24*time.Hour)
		watch := func(srv *ent.Server, address string, matches bool, msg string) {
			t.Helper()
			if err := db.Client.ServedCertificate.Create().SetDomainID(shop.ID).SetServerID(srv.ID).SetAddress(address).
				SetMatches(matches).SetMessage(msg).SetObservedAt(fx.clk.t).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("fired before any watch: %v", keys(open))
		}
		// An old mismatch, then a newer match on web-1; web-2 was not dialled.
		watch(fx.server, "192.0.2.1:443", false, "server web-1: serves serial 01, want 02")
		fx.clk.advance(time.Hour)
		watch(fx.server, "192.0.2.1:443", true, "")
		watch(fx.web2, "", false, "not probed: the agent of web-2 reports nginx only on 127.0.0.1")
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("fired on an old watch or an undialled server: %v", keys(open))
		}
		fx.clk.advance(time.Hour)
		watch(fx.server, "192.0.2.1:443", false, "server web-1: serves serial 01, want 02")
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "domain:shop.example")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || !strings.Contains(inc.Summary, "1 of 1 servers") ||
			!strings.Contains(inc.Summary, "web-1 (server web-1: serves serial 01, want 02)") {
			t.Fatalf("open incidents %v (%+v)", keys(open), inc)
		}
		fx.clk.advance(time.Hour)
		watch(fx.server, "192.0.2.1:443", true, "")
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after the node served the right certificate: %v", keys(open))
		}
	})
}

func TestCheckServed(t *testing.T) {
	cert := &CertFacts{NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name   string
		cert   *CertFacts
		served []ServedResult
		known  bool
		breach bool
	}{
		{"no certificate", nil, []ServedResult{{ServerID: 1, Probed: true}}, false, false},
		{"no watch yet", cert, nil, false, false},
		{"matches", cert, []ServedResult{{ServerID: 1, Probed: true, Matches: true}}, true, false},
		{"mismatch", cert, []ServedResult{{ServerID: 1, Server: "a", Probed: true}}, true, true},
		{"not dialled only", cert, []ServedResult{{ServerID: 1, Server: "a"}}, false, false},
		{"a server that no longer serves it", cert, []ServedResult{{ServerID: 9, Server: "old", Probed: true}}, false, false},
	} {
		d := DomainFacts{Name: "a.example", ServerIDs: []int{1, 2}, Cert: tc.cert, Served: tc.served}
		c := checkServed(Rule{Severity: SeverityCritical}, d)
		if (c.Breach != "") != tc.breach || c.Known != tc.known {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
}

// An uptime rule fires when the hourly counts inside its window fall below
// a level, leaves older hours out, and resolves once enough probes are up.
func TestUptimeBelowIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "SLO", Kind: KindUptimeBelow, Warning: f(99.9), Critical: f(99), Window: 24 * time.Hour})
		shop := fx.domain(t, "shop.example", fx.server, fx.web2)
		hour := func(ago time.Duration, srv *ent.Server, up, down int) {
			t.Helper()
			if err := db.Client.HealthHour.Create().SetDomainID(shop.ID).SetServerID(srv.ID).
				SetHour(fx.clk.t.UTC().Truncate(time.Hour).Add(-ago)).SetUp(up).SetDown(down).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("fired without probes: %v", keys(open))
		}
		// A bad hour two days ago is outside the window; today is 99.5 %.
		hour(48*time.Hour, fx.server, 0, 60)
		hour(0, fx.server, 597, 3)
		hour(time.Hour, fx.web2, 600, 0)
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "domain:shop.example")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || inc.Severity != string(SeverityWarning) ||
			!strings.Contains(inc.Summary, "99.75 % of its health probes over the last 1 day (3 of 1200 failed)") {
			t.Fatalf("open incidents %v (%+v)", keys(open), inc)
		}
		// More good probes lift it back above the level.
		hour(2*time.Hour, fx.web2, 3000, 0)
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after the uptime recovered: %v", keys(open))
		}
	})
}

// A monitor rule fires once a monitor has failed for the window, names it in
// the notification, leaves disabled and never-checked monitors alone, and
// resolves when the monitor answers.
func TestMonitorDownIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "Endpoint", Kind: KindMonitorDown, Severity: SeverityCritical, Window: 2 * time.Minute})
		start := fx.clk.t
		api := db.Client.Monitor.Create().SetName("billing api").SetKind("http").SetTarget("https://billing.example.test/health").
			SetCheckedAt(start).SetOk(false).SetStatus(503).SetMessage("answered 503 Service Unavailable").SetFailingSince(start).SaveX(ctx)
		db.Client.Monitor.Create().SetName("off").SetKind("tcp").SetTarget("db.example.test:5432").SetEnabled(false).
			SetCheckedAt(start).SetOk(false).SetFailingSince(start).ExecX(ctx)
		db.Client.Monitor.Create().SetName("new").SetKind("tcp").SetTarget("db.example.test:5433").ExecX(ctx)
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("fired before the window: %v", keys(open))
		}
		fx.clk.advance(3 * time.Minute)
		fx.eval(t)
		inc := fx.open(t)[openKey(r.ID, "monitor:billing api")]
		if inc == nil || inc.State != incident.StateFiring || !strings.Contains(inc.Summary, "billing api has failed since") ||
			!strings.Contains(inc.Summary, "503 Service Unavailable") {
			t.Fatalf("after the window: %+v", inc)
		}
		if v := ViewOf(inc, fx.clk.t); v.Monitor != "billing api" || v.Domain != "" {
			t.Errorf("view %+v", v)
		}
		var sent *notify.Notification
		for _, n := range fx.rec.all() {
			if n.Kind == notify.KindFiring {
				sent = &n
			}
		}
		if sent == nil || sent.Title != "Endpoint on billing api" || sent.Fields[0] != (notify.Field{Name: "Monitor", Value: "billing api"}) {
			t.Fatalf("notification %+v", sent)
		}
		db.Client.Monitor.UpdateOne(api).SetOk(true).ClearFailingSince().SetCheckedAt(fx.clk.t).ExecX(ctx)
		fx.clk.advance(time.Minute)
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after the monitor answered: %v", keys(open))
		}
	})
}

// A monitor certificate rule fires per enabled monitor whose https target's
// certificate runs out within the days, and resolves when a check finds a
// renewed one.
func TestMonitorCertIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		r := fx.rule(t, Rule{Name: "Endpoint certificate", Kind: KindMonitorCert, Severity: SeverityWarning, Days: 7})
		now := fx.clk.t
		api := db.Client.Monitor.Create().SetName("billing api").SetKind("http").SetTarget("https://billing.example.test/health").
			SetCheckedAt(now).SetOk(true).SetCertNotAfter(now.Add(5 * 24 * time.Hour)).SaveX(ctx)
		db.Client.Monitor.Create().SetName("fresh").SetKind("http").SetTarget("https://fresh.example.test/").
			SetCheckedAt(now).SetOk(true).SetCertNotAfter(now.Add(80 * 24 * time.Hour)).ExecX(ctx)
		db.Client.Monitor.Create().SetName("off").SetKind("http").SetTarget("https://off.example.test/").SetEnabled(false).
			SetCheckedAt(now).SetCertNotAfter(now.Add(time.Hour)).ExecX(ctx)
		fx.eval(t)
		open := fx.open(t)
		inc := open[openKey(r.ID, "monitor:billing api")]
		if len(open) != 1 || inc == nil || inc.State != incident.StateFiring || !strings.Contains(inc.Summary, "billing api presents expires") {
			t.Fatalf("open incidents: %v", keys(open))
		}
		db.Client.Monitor.UpdateOne(api).SetCertNotAfter(now.Add(90 * 24 * time.Hour)).ExecX(ctx)
		fx.clk.advance(time.Minute)
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after the renewal: %v", keys(open))
		}
	})
}
