package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// The controller takes from an agent's probe only what the agent may dial.
func TestProbeAddressesAllowed(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"10.0.0.1:8080": true, "[2001:db8::1]:443": true, "backend.internal:80": true, "localhost:1": true,
		"": false, "10.0.0.1": false, "10.0.0.1:0": false, "10.0.0.1:65536": false, "10.0.0.1:080": false,
		"a b:80": false, "host;rm:80": false, "<script>:80": false, ":80": false, "host:80\n": false,
		strings.Repeat("a", 300) + ":80": false,
	} {
		if got := nginxsyntax.ValidServerAddress(addr); got != want {
			t.Errorf("ValidServerAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}

// An agent's probe result is taken with care: addresses that are not plain
// host:port are dropped, errors are made printable and short, a failure
// wins over a success for the same address, and old probes are not shown.
func TestUpstreamProbesRecordAndStates(t *testing.T) {
	t.Parallel()
	var p upstreamProbes
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	web1, web2 := &ent.Server{ID: 1, Name: "web-1"}, &ent.Server{ID: 2, Name: "web-2"}
	p.record(web2, now, &agentv1.UpstreamProbeResult{Revision: 3, Targets: []*agentv1.TargetProbe{
		{Upstream: "app", Address: "10.0.0.1:8080", Ok: true, LatencyMs: 3},
		{Upstream: "app", Address: "10.0.0.2:8080", Ok: false, Error: "connection refused\x1b[31m" + strings.Repeat("x", 500)},
		{Upstream: "gatehouse_stream_pg", Address: "10.0.0.2:8080", Ok: true, LatencyMs: 1},
		{Upstream: "evil", Address: "10.0.0.3:80\n<b>", Ok: true},
		{Upstream: "app", Address: "10.0.0.4:8080", Ok: false},
	}})
	p.record(web1, now.Add(-2*time.Minute), &agentv1.UpstreamProbeResult{Targets: []*agentv1.TargetProbe{
		{Upstream: "app", Address: "10.0.0.1:8080", Ok: false, Error: "timed out"},
	}})
	got := p.states([]string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:80\n<b>", "10.0.0.4:8080", "10.0.0.9:1"}, now)
	if s := got["10.0.0.1:8080"]; len(s) != 2 || s[0].Server != "web-1" || s[0].OK || s[1].Server != "web-2" || !s[1].OK || s[1].LatencyMS != 3 {
		t.Errorf("10.0.0.1:8080: %+v, want web-1 down then web-2 up", s)
	}
	if s := got["10.0.0.2:8080"]; len(s) != 1 || s[0].OK || !strings.HasPrefix(s[0].Error, "connection refused\uFFFD[31m") || len(s[0].Error) > 4*maxProbeErrorLen {
		t.Errorf("10.0.0.2:8080: %+v, want the failure kept, cleaned and short", s)
	}
	if s := got["10.0.0.4:8080"]; len(s) != 1 || s[0].Error != "unreachable" {
		t.Errorf("a failure without a reason: %+v", s)
	}
	if _, ok := got["10.0.0.3:80\n<b>"]; ok {
		t.Error("an address that is not host:port was kept")
	}
	if _, ok := got["10.0.0.9:1"]; ok {
		t.Error("an address nobody probed has states")
	}
	// Three minutes on, web-1's probe is too old to show; web-2's is not.
	later := p.states([]string{"10.0.0.1:8080"}, now.Add(upstreamProbeFresh-time.Second))
	if s := later["10.0.0.1:8080"]; len(s) != 1 || s[0].Server != "web-2" {
		t.Errorf("after a while: %+v, want only the fresh probe", s)
	}
	p.forget(2)
	if s := p.states([]string{"10.0.0.1:8080"}, now)["10.0.0.1:8080"]; len(s) != 1 || s[0].Server != "web-1" {
		t.Errorf("after forgetting web-2: %+v", s)
	}
}

// failingSince reads what the memory holds for a server and address.
func (p *upstreamProbes) failingSinceOf(id int, addr string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.byServer[id].failingSince[addr]
	return t, ok
}

// The memory of failures: a run starts at the first failed probe, goes on
// across failures, and starts again after a success, a gap without probes,
// or the address leaving the node's release; forget drops it, and it holds
// no more than the probe does. The alert engine sees fresh probes only.
func TestUpstreamProbesFailingSince(t *testing.T) {
	t.Parallel()
	var p upstreamProbes
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	web1, web2 := &ent.Server{ID: 1, Name: "web-1"}, &ent.Server{ID: 2, Name: "web-2"}
	probe := func(srv *ent.Server, at time.Time, ok map[string]bool) {
		res := &agentv1.UpstreamProbeResult{}
		for addr, up := range ok {
			tp := &agentv1.TargetProbe{Upstream: "app", Address: addr, Ok: up}
			if !up {
				tp.Error = "connection refused"
			}
			res.Targets = append(res.Targets, tp)
		}
		p.record(srv, at, res)
	}
	const a, b = "10.0.0.1:8080", "10.0.0.2:8080"
	since := func(srv *ent.Server, addr string) time.Time {
		t.Helper()
		s, _ := p.failingSinceOf(srv.ID, addr)
		return s
	}

	probe(web1, t0, map[string]bool{a: false, b: true})
	if s := since(web1, a); !s.Equal(t0) {
		t.Fatalf("first failure: since %v, want %v", s, t0)
	}
	if _, ok := p.failingSinceOf(web1.ID, b); ok {
		t.Fatal("an address that answers has a failure on record")
	}
	probe(web1, t0.Add(time.Minute), map[string]bool{a: false, b: false})
	probe(web1, t0.Add(2*time.Minute), map[string]bool{a: false, b: false})
	if s := since(web1, a); !s.Equal(t0) {
		t.Fatalf("across failures: since %v, want %v", s, t0)
	}
	if s := since(web1, b); !s.Equal(t0.Add(time.Minute)) {
		t.Fatalf("b: since %v", s)
	}
	// Another node keeps its own clock.
	probe(web2, t0.Add(2*time.Minute), map[string]bool{a: false})
	if s := since(web2, a); !s.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("web-2: since %v", s)
	}

	got := p.forAlerts(t0.Add(2 * time.Minute))
	if l := got[a]; len(l) != 2 {
		t.Fatalf("alert view of %s: %+v", a, l)
	}
	for _, pr := range got[a] {
		want := map[int]time.Time{1: t0, 2: t0.Add(2 * time.Minute)}[pr.ServerID]
		if pr.OK || pr.Error != "connection refused" || !pr.FailingSince.Equal(want) || !pr.At.Equal(t0.Add(2*time.Minute)) ||
			pr.Server != map[int]string{1: "web-1", 2: "web-2"}[pr.ServerID] {
			t.Errorf("alert view: %+v", pr)
		}
	}

	// A success starts the run again; so does the address leaving the release.
	probe(web1, t0.Add(3*time.Minute), map[string]bool{a: true})
	if _, ok := p.failingSinceOf(web1.ID, a); ok {
		t.Fatal("a failure kept after a success")
	}
	if _, ok := p.failingSinceOf(web1.ID, b); ok {
		t.Fatal("a failure kept for an address no longer probed")
	}
	probe(web1, t0.Add(4*time.Minute), map[string]bool{a: false, b: false})
	if s := since(web1, a); !s.Equal(t0.Add(4 * time.Minute)) {
		t.Fatalf("after a success: since %v", s)
	}
	if got := p.forAlerts(t0.Add(4 * time.Minute))[a]; len(got) != 2 || got[0].OK || got[1].OK {
		t.Fatalf("alert view: %+v", got)
	}

	// A gap longer than a probe stays fresh starts it again too.
	probe(web1, t0.Add(4*time.Minute+upstreamProbeFresh+time.Second), map[string]bool{a: false})
	if s := since(web1, a); !s.Equal(t0.Add(4*time.Minute + upstreamProbeFresh + time.Second)) {
		t.Fatalf("after a gap: since %v", s)
	}
	// web-2's probe is too old to be shown to the engine now.
	if got := p.forAlerts(t0.Add(4*time.Minute + upstreamProbeFresh + time.Second))[a]; len(got) != 1 || got[0].ServerID != web1.ID {
		t.Fatalf("stale probe shown: %+v", got)
	}

	p.forget(web1.ID)
	if _, ok := p.failingSinceOf(web1.ID, a); ok {
		t.Fatal("forget kept the failure")
	}
	if got := p.forAlerts(t0.Add(2 * time.Minute)); len(got[a]) != 1 || got[a][0].ServerID != web2.ID {
		t.Fatalf("after forget: %+v", got)
	}

	// However many addresses fail, no more are remembered than a probe holds.
	many := map[string]bool{}
	for i := range maxProbeTargets + 100 {
		many[fmt.Sprintf("10.1.%d.%d:80", i/250, i%250+1)] = false
	}
	probe(web1, t0, many)
	probe(web1, t0.Add(time.Minute), many)
	p.mu.Lock()
	n, m := len(p.byServer[web1.ID].failingSince), len(p.byServer[web1.ID].targets)
	p.mu.Unlock()
	if n != maxProbeTargets || m != maxProbeTargets {
		t.Fatalf("%d failures and %d targets remembered, want %d", n, m, maxProbeTargets)
	}
}

// An upstream server that a node's probes fail to reach, end to end inside
// the controller: the probes are recorded as the probe job does, the
// upstream and its servers are in the database, the engine is built as the
// controller builds it (with a clock the test turns), and the firing and
// recovery notices reach a Telegram chat through the Bot API stand-in.
func TestUpstreamDownNotifiesThroughTelegram(t *testing.T) {
	const token, chat = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", int64(-100777)
	tg := telegramtest.New(t, token)
	tg.AddChat(chat, "group", 0)
	cfg := testConfig(t, t.TempDir())
	cfg.TelegramAPIURL = tg.URL()
	log := hclog.NewNullLogger()
	ctx := context.Background()
	c, err := New(ctx, cfg, log, Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.channels.Run(runCtx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	by := audit.System("test")
	if _, err := c.channels.SaveChannel(ctx, alerts.ChannelInput{Name: "ops", Kind: "telegram", Enabled: true, ChatID: chat, Secret: token}, by); err != nil {
		t.Fatal(err)
	}
	web1 := c.db.Client.Server.Create().SetName("web-1").SetStatus(server.StatusOnline).SetLabels([]string{"edge"}).SaveX(ctx)
	web2 := c.db.Client.Server.Create().SetName("web-2").SetStatus(server.StatusOnline).SaveX(ctx)
	app := c.db.Client.Upstream.Create().SetName("app").SaveX(ctx)
	c.db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.1").SetPort(8080).ExecX(ctx)
	c.db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.2").SetPort(8080).SetPosition(1).ExecX(ctx)

	clk := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	e := alerts.New(c.db, log, c.alertOptions(func() time.Time { return clk }))
	rule, err := e.SaveRule(ctx, alerts.Rule{Name: "Backends", Kind: alerts.KindUpstreamDown, Enabled: true, Severity: alerts.SeverityCritical,
		Window: 5 * time.Minute, Labels: []string{"edge"}}, by)
	if err != nil {
		t.Fatal(err)
	}
	probe := func(ok bool) {
		t.Helper()
		res := &agentv1.UpstreamProbeResult{Targets: []*agentv1.TargetProbe{{Upstream: "app", Address: "10.0.0.2:8080", Ok: true}}}
		first := &agentv1.TargetProbe{Upstream: "app", Address: "10.0.0.1:8080", Ok: ok}
		if !ok {
			first.Error = "connection refused <b>by peer</b>"
		}
		res.Targets = append(res.Targets, first)
		c.upstreamProbes.record(web1, clk, res)
		// web-2 is out of the rule's scope: its failure of the other server never counts.
		c.upstreamProbes.record(web2, clk, &agentv1.UpstreamProbeResult{Targets: []*agentv1.TargetProbe{
			{Upstream: "app", Address: "10.0.0.2:8080", Error: "timeout"}}})
	}
	evaluate := func() *ent.Incident {
		t.Helper()
		if err := e.Evaluate(ctx, nopLogger{}); err != nil {
			t.Fatal(err)
		}
		list := c.db.Client.Incident.Query().AllX(ctx)
		if len(list) > 1 {
			t.Fatalf("%d incidents, want at most 1: %v", len(list), list)
		}
		if len(list) == 0 {
			return nil
		}
		if want := alerts.UpstreamSubject("app", "10.0.0.1:8080"); list[0].Subject != want || list[0].RuleID != rule.ID {
			t.Fatalf("incident about %q, want %q", list[0].Subject, want)
		}
		return list[0]
	}

	start := clk
	probe(false)
	if inc := evaluate(); inc == nil || inc.State != incident.StatePending {
		t.Fatalf("after the first failed probe: %v", inc)
	}
	for range 4 {
		clk = clk.Add(time.Minute)
		probe(false)
		if inc := evaluate(); inc == nil || inc.State != incident.StatePending {
			t.Fatalf("at %v: %v", clk.Sub(start), inc)
		}
	}
	clk = clk.Add(time.Minute)
	probe(false)
	inc := evaluate()
	if inc == nil || inc.State != incident.StateFiring {
		t.Fatalf("after the window: %v", inc)
	}
	tg.Wait(t, "the firing message", func() bool { return len(tg.Messages()) >= 1 })
	firing := tg.Messages()[0]
	for _, want := range []string{"FIRING", "Backends on 10.0.0.1:8080 of upstream app", "Upstream: app", "Upstream server: 10.0.0.1:8080",
		"Unreachable from: web-1", "web-1 since " + start.Format(time.RFC3339) + " (connection refused <b>by peer</b>)"} {
		if !strings.Contains(firing.Plain, want) {
			t.Errorf("the firing message lacks %q:\n%s", want, firing.Plain)
		}
	}
	if !strings.Contains(firing.HTML, "&lt;b&gt;by peer&lt;/b&gt;") {
		t.Errorf("the agent's error is not escaped:\n%s", firing.HTML)
	}
	if firing.ChatID != chat {
		t.Errorf("sent to chat %d", firing.ChatID)
	}

	clk = clk.Add(time.Minute)
	probe(true)
	if inc := evaluate(); inc == nil || inc.State != incident.StateResolved ||
		inc.Summary != "10.0.0.1:8080 of upstream app answers the probes of every node in scope (1 node)" {
		t.Fatalf("after a success: %v", inc)
	}
	tg.Wait(t, "the recovery message", func() bool { return len(tg.Messages()) >= 2 })
	if msgs := tg.Messages(); len(msgs) != 2 || !strings.Contains(msgs[1].Plain, "RESOLVED") ||
		!strings.Contains(msgs[1].Plain, "answers the probes of every node in scope") {
		t.Fatalf("messages: %+v", msgs)
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// An upstream rule is made on the form like any other kind (the metric
// fields, always posted, are ignored; the window and scope are kept), and
// through the API; a window past a day is refused on both with a message.
func TestUpstreamDownRuleFormAndAPI(t *testing.T) {
	e := newEditEnv(t)
	cl := e.browser(e.adminLogin)
	base := e.base + "/alerts/rules"
	v := url.Values{"name": {"Backends"}, "kind": {"upstream_down"}, "window": {"10m"}, "enabled": {"on"}, "severity": {"warning"},
		"labels": {"edge"}, "metric": {"cpu"}, "op": {">"}, "warning": {"80"}, "critical": {"95"}, "days": {"14"}}
	bad := url.Values{}
	for k, x := range v {
		bad[k] = x
	}
	bad.Set("window", "25h")
	if code, _, body := send(t, cl, "POST", base, bad); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "must be between 0 (the first failed probe) and 24h") || !strings.Contains(body, `<option value="upstream_down" data-description=`) {
		t.Fatalf("a window past a day: %d\n%s", code, body)
	}
	if code, loc, body := send(t, cl, "POST", base, v); code != http.StatusSeeOther || loc != "/alerts/rules" {
		t.Fatalf("save: %d %s %s", code, loc, body)
	}
	var out struct {
		Rules []ruleJSON `json:"rules"`
	}
	e.api("GET", "/api/v1/alerts/rules", e.admin, nil, &out)
	if len(out.Rules) != 1 {
		t.Fatalf("rules %+v", out.Rules)
	}
	r := out.Rules[0]
	if r.Kind != "upstream_down" || r.Window != "10m0s" || r.Severity != "warning" || r.Metric != "" || r.Warning != nil || r.Days != nil ||
		len(r.Labels) != 1 || r.Labels[0] != "edge" ||
		!strings.Contains(r.Explanation, "for 10 minutes, a warning incident fires for each upstream server, as probed by servers labelled edge") {
		t.Fatalf("stored %+v", r)
	}
	if _, _, page := send(t, cl, "GET", fmt.Sprintf("%s/%d", base, r.ID), nil); !strings.Contains(page, `<option value="upstream_down" data-description="A server of an upstream has refused or timed out`) ||
		!strings.Contains(page, `selected>Upstream server unreachable</option>`) || !strings.Contains(page, `name="window" value="10m0s"`) {
		t.Fatalf("the edit form does not show the rule:\n%s", page)
	}

	var created ruleJSON
	if code, body := e.api("POST", "/api/v1/alerts/rules", e.admin, map[string]any{"name": "Backends now", "kind": "upstream_down", "severity": "critical"}, &created); code != http.StatusCreated ||
		created.Window != "" || !strings.Contains(created.Explanation, "When a server of an upstream refuses or times out a node's connection probe, a critical incident fires") {
		t.Fatalf("create through the API: %d %s", code, body)
	}
	if code, body := e.api("POST", "/api/v1/alerts/rules", e.admin, map[string]any{"name": "Backends long", "kind": "upstream_down", "severity": "critical", "window": "48h"}, nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "the first failed probe") {
		t.Fatalf("a window past a day through the API: %d %s", code, body)
	}
	// An open incident of the rule is listed with the upstream and the
	// address, on the page and through the API.
	subject := alerts.UpstreamSubject("app", "10.0.0.1:8080")
	now := time.Now()
	e.c.db.Client.Incident.Create().SetRuleID(r.ID).SetRuleName(r.Name).SetSubject(subject).SetOpenKey(fmt.Sprintf("%d:%s", r.ID, subject)).
		SetState(incident.StateFiring).SetSeverity("warning").SetStartedAt(now).SetFiredAt(now).
		SetSummary("10.0.0.1:8080 of upstream app is unreachable from 1 of 1 node: web-1 since x (timeout)").ExecX(context.Background())
	if _, _, page := send(t, cl, "GET", e.base+"/alerts", nil); !strings.Contains(page, `<span class="badge">upstream</span> <a href="/upstreams/lookup?name=app">app</a> 10.0.0.1:8080`) {
		t.Fatalf("the incidents page does not name the upstream server:\n%s", page)
	}
	var incs struct {
		Incidents []alerts.IncidentView `json:"incidents"`
	}
	e.api("GET", "/api/v1/alerts/incidents?state=open", e.admin, nil, &incs)
	if len(incs.Incidents) != 1 || incs.Incidents[0].Upstream != "app" || incs.Incidents[0].Address != "10.0.0.1:8080" || incs.Incidents[0].Subject != subject {
		t.Fatalf("incidents through the API: %+v", incs)
	}
}
