package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"html"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

// domainIncidentView is an incident as GET /api/v1/alerts/incidents shows a
// certificate or DNS one.
type domainIncidentView struct {
	ID         int     `json:"id"`
	RuleName   string  `json:"rule_name"`
	Subject    string  `json:"subject"`
	ServerID   int     `json:"server_id"`
	Domain     string  `json:"domain"`
	State      string  `json:"state"`
	Value      float64 `json:"value"`
	Summary    string  `json:"summary"`
	NotifiedAt *string `json:"notified_at"`
}

func (c *controllerProc) domainIncidents(name string) []domainIncidentView {
	c.t.Helper()
	var out struct {
		Incidents []domainIncidentView `json:"incidents"`
	}
	c.mustAPI("GET", "/api/v1/alerts/incidents", nil, &out, 200)
	var mine []domainIncidentView
	for _, inc := range out.Incidents {
		if inc.Domain == name || inc.Subject == "domain:"+name {
			mine = append(mine, inc)
		}
	}
	return mine
}

// evaluateNow runs the alert evaluation job through the API and waits until
// a run that started after the call has finished; it must succeed.
func (c *controllerProc) evaluateNow() {
	c.t.Helper()
	type job struct {
		Name      string     `json:"name"`
		Running   bool       `json:"running"`
		LastStart *time.Time `json:"last_started_at"`
		LastEnd   *time.Time `json:"last_finished_at"`
		Outcome   string     `json:"last_outcome"`
		Error     string     `json:"last_error"`
	}
	state := func() job {
		var out struct {
			Jobs []job `json:"jobs"`
		}
		c.mustAPI("GET", "/api/v1/jobs", nil, &out, 200)
		for _, j := range out.Jobs {
			if j.Name == "alerts.evaluate" {
				return j
			}
		}
		c.t.Fatalf("no alerts.evaluate job in %+v", out.Jobs)
		return job{}
	}
	// Any run that starts after this point sees every change made before it.
	var since time.Time
	if before := state(); before.LastStart != nil {
		since = *before.LastStart
	}
	eventually(c.t, 10*time.Second, "the evaluation job to accept a run", func() bool {
		switch code := c.api("POST", "/api/v1/jobs/alerts.evaluate/run", nil, nil); code {
		case 202:
			return true
		case 409: // a scheduled run is under way; it may have started too early
			return false
		default:
			c.t.Fatalf("run alerts.evaluate: %d", code)
			return false
		}
	})
	var done job
	eventually(c.t, 20*time.Second, "the triggered evaluation to finish", func() bool {
		done = state()
		return !done.Running && done.LastStart != nil && done.LastStart.After(since) && done.LastEnd != nil
	})
	if done.Outcome != "succeeded" {
		c.t.Fatalf("alert evaluation %s: %s", done.Outcome, done.Error)
	}
}

// selfSigned makes a certificate and key for name that expire after validFor.
func selfSigned(t *testing.T, name string, validFor time.Duration) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}

// TestCertificateExpiryAlert uploads a certificate that expires in five days
// for a domain a server serves, and follows a 14-day expiry rule through
// Telegram and the incidents page: one incident about the domain, one firing
// message, and after a renewed certificate is uploaded, one recovery. A
// domain whose certificate has 60 days left raises nothing.
func TestCertificateExpiryAlert(t *testing.T) {
	t.Parallel()
	const (
		name = "shop-eu.example.test"
		calm = "calm.example.test"
		rule = "Certificate expiry"
	)
	tg := telegramtest.New(t, botToken)
	tg.AddChat(opsChat, "supergroup", 0)
	// Evaluations come from the run-now API; the schedule stays out of the way.
	c := startController(t, "--alert-interval", "1h", "--telegram-api-url", tg.URL())
	c.addServer("edge-eu") // a server need not have connected to serve a domain
	sid := c.serverID("edge-eu")

	var ch struct{ ID int }
	c.mustAPI("POST", "/api/v1/alerts/channels", map[string]any{"name": "ops", "kind": "telegram", "enabled": true,
		"chat_id": opsChat, "secret": botToken}, &ch, 201)
	// flush delivers a test message through the channel's queue and returns
	// once it is through, so whatever was queued before it was sent too.
	tests := 0
	flush := func() {
		t.Helper()
		c.mustAPI("POST", fmt.Sprintf("/api/v1/alerts/channels/%d/test", ch.ID), nil, nil, 200)
		tests++
		if n := countKind(tg.Messages(), "TEST"); n != tests {
			t.Fatalf("%d test messages arrived, want %d", n, tests)
		}
	}

	domainID := map[string]int{}
	for _, d := range []string{name, calm} {
		var created struct {
			Domain struct {
				ID int `json:"id"`
			} `json:"domain"`
		}
		c.mustAPI("POST", "/api/v1/domains", map[string]any{"name": d, "servers": []int{sid}}, &created, 201)
		domainID[d] = created.Domain.ID
	}
	upload := func(domain string, validFor time.Duration) {
		t.Helper()
		cert, key := selfSigned(t, domain, validFor)
		var row struct {
			Names  []string `json:"names"`
			Source string   `json:"source"`
		}
		c.mustAPI("POST", fmt.Sprintf("/api/v1/domains/%d/certificate/upload", domainID[domain]),
			map[string]any{"certificate": cert, "key": key}, &row, 201)
		if len(row.Names) != 1 || row.Names[0] != domain || row.Source != "upload" {
			t.Fatalf("uploaded certificate for %s: %+v", domain, row)
		}
	}
	upload(name, 5*24*time.Hour)
	upload(calm, 60*24*time.Hour)

	var created struct {
		ID          int    `json:"id"`
		Days        *int   `json:"days"`
		Explanation string `json:"explanation"`
	}
	c.mustAPI("POST", "/api/v1/alerts/rules", map[string]any{"name": rule, "kind": "cert_expiring", "enabled": true,
		"severity": "warning", "days": 14}, &created, 201)
	if created.Days == nil || *created.Days != 14 || !strings.Contains(created.Explanation, "14 days") {
		t.Fatalf("created rule: days %v, explanation %q", created.Days, created.Explanation)
	}

	// 1. The certificate expires within the rule's 14 days: one firing incident
	// about the domain, with no server, and one message naming both.
	c.evaluateNow()
	incs := c.domainIncidents(name)
	if len(incs) != 1 {
		t.Fatalf("incidents for %s: %+v", name, incs)
	}
	inc := incs[0]
	if inc.Domain != name || inc.Subject != "domain:"+name || inc.ServerID != 0 || inc.State != "firing" ||
		inc.RuleName != rule || inc.Value != 4 || !strings.Contains(inc.Summary, "in 4 days") {
		t.Fatalf("incident: %+v", inc)
	}
	if other := c.domainIncidents(calm); len(other) != 0 {
		t.Fatalf("a certificate with 60 days left raised incidents: %+v", other)
	}
	tg.Wait(t, "the firing message", func() bool { return countKind(tg.Messages(), "🔥 FIRING") >= 1 })
	c.evaluateNow() // a second look at the same facts must not notify again
	flush()
	var firing []telegramtest.Message
	for _, m := range tg.Messages() {
		if strings.Contains(m.Plain, "🔥 FIRING") {
			firing = append(firing, m)
		}
	}
	if len(firing) != 1 {
		t.Fatalf("%d firing messages, want 1: %+v", len(firing), firing)
	}
	if n := countKind(tg.Messages(), "STILL FIRING"); n != 0 {
		t.Fatalf("%d reminders, want none", n)
	}
	msg := firing[0]
	if msg.ChatID != opsChat {
		t.Fatalf("firing message went to chat %d", msg.ChatID)
	}
	for _, want := range []string{rule + " on " + name, "Domain: " + name, "Served by: edge-eu", "Rule: " + rule} {
		if !strings.Contains(msg.Plain, want) {
			t.Fatalf("firing message lacks %q:\n%s", want, msg.Plain)
		}
	}
	if !strings.Contains(msg.HTML, html.EscapeString(name)) || !strings.Contains(msg.HTML, html.EscapeString(rule)) {
		t.Fatalf("firing message HTML does not name %s and %s:\n%s", name, rule, msg.HTML)
	}
	if strings.Contains(msg.Plain, calm) {
		t.Fatalf("firing message names the calm domain:\n%s", msg.Plain)
	}
	badge := `<span class="badge">domain</span> <a href="/domains/lookup?name=` + html.EscapeString(name) + `">` + html.EscapeString(name) + `</a>`
	if page := c.page("/alerts"); !strings.Contains(page, badge) {
		t.Fatalf("the incidents page lacks %q", badge)
	}
	// The link leads to the domain's TLS page.
	if page := c.page("/domains/lookup?name=" + url.QueryEscape(name)); !strings.Contains(page, html.EscapeString(name)+": TLS and DNS") {
		t.Fatalf("the incident's domain link does not lead to its TLS page:\n%s", page)
	}

	// 2. A renewed certificate resolves the same incident with one recovery.
	upload(name, 60*24*time.Hour)
	c.evaluateNow()
	incs = c.domainIncidents(name)
	if len(incs) != 1 || incs[0].ID != inc.ID || incs[0].State != "resolved" {
		t.Fatalf("incidents for %s after renewal: %+v", name, incs)
	}
	tg.Wait(t, "the recovery message", func() bool { return countKind(tg.Messages(), "RESOLVED") >= 1 })
	c.evaluateNow() // nothing is left to resolve or to fire
	flush()
	var resolved []telegramtest.Message
	for _, m := range tg.Messages() {
		if strings.Contains(m.Plain, "RESOLVED") {
			resolved = append(resolved, m)
		}
	}
	if len(resolved) != 1 || !strings.Contains(resolved[0].Plain, rule+" on "+name) || !strings.Contains(resolved[0].Plain, "Domain: "+name) {
		t.Fatalf("recovery messages, want 1 naming %s: %+v", name, resolved)
	}
	if n := countKind(tg.Messages(), "🔥 FIRING"); n != 1 {
		t.Fatalf("%d firing messages in all, want 1", n)
	}
	if incs := c.domainIncidents(name); len(incs) != 1 || incs[0].State != "resolved" {
		t.Fatalf("incidents for %s at the end: %+v", name, incs)
	}
	if other := c.domainIncidents(calm); len(other) != 0 {
		t.Fatalf("the calm domain raised incidents: %+v", other)
	}
}
