package alerts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/incident"
)

func TestCheckUpstream(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	servers := map[int]ServerRef{
		1: {ID: 1, Name: "web-1", Labels: []string{"edge"}},
		2: {ID: 2, Name: "web-2"},
		3: {ID: 3, Name: "db-1", Labels: []string{"db"}},
	}
	rule := Rule{Kind: KindUpstreamDown, Severity: SeverityCritical, Window: 5 * time.Minute}
	ok := func(id int) UpstreamProbe { return UpstreamProbe{ServerID: id, OK: true, At: now} }
	fail := func(id int, for_ time.Duration, why string) UpstreamProbe {
		return UpstreamProbe{ServerID: id, Error: why, At: now, FailingSince: now.Add(-for_)}
	}
	app := func(probes ...UpstreamProbe) UpstreamFacts {
		return UpstreamFacts{Upstream: "app", Address: "10.0.0.1:8080", Listed: true, Probes: probes}
	}
	scoped := func(ids []int, labels ...string) Rule {
		r := rule
		r.ServerIDs, r.Labels = ids, labels
		return r
	}
	windowless := rule
	windowless.Window = 0
	for _, tc := range []struct {
		name     string
		rule     Rule
		facts    UpstreamFacts
		known    bool
		breach   Severity
		starting bool
		value    float64
		summary  []string // fragments the summary holds
	}{
		{"another kind", Rule{Kind: KindDomainDown, Severity: SeverityCritical}, app(fail(1, time.Hour, "timeout")), false, SeverityNone, false, 0, nil},
		{"no longer a server of the upstream", rule, UpstreamFacts{Upstream: "app", Address: "10.0.0.1:8080"}, true, SeverityNone, false, 0,
			[]string{"10.0.0.1:8080 of upstream app is no longer a server of it"}},
		{"no probe", rule, app(), true, SeverityNone, false, 0, []string{"No node in scope has probed 10.0.0.1:8080 of upstream app"}},
		{"only a removed node's probe", rule, app(fail(9, time.Hour, "timeout")), true, SeverityNone, false, 0, []string{"No node in scope has probed"}},
		{"every node reaches it", rule, app(ok(1), ok(2)), true, SeverityNone, false, 0,
			[]string{"10.0.0.1:8080 of upstream app answers the probes of every node in scope (2 nodes)"}},
		{"failing for less than the window", rule, app(ok(1), fail(2, 4*time.Minute, "connection refused")), true, SeverityNone, true, 1,
			[]string{"10.0.0.1:8080 of upstream app is unreachable from 1 of 2 nodes: web-2 since 2026-05-06T06:56:00Z (connection refused)"}},
		{"failing for the window", rule, app(ok(1), fail(2, 5*time.Minute, "connection refused")), true, SeverityCritical, false, 1,
			[]string{"unreachable from 1 of 2 nodes: web-2 since 2026-05-06T06:55:00Z (connection refused)"}},
		{"two nodes, one long enough", rule, app(fail(2, time.Minute, "timeout"), fail(1, time.Hour, "connection refused")), true, SeverityCritical, false, 2,
			[]string{"from 2 of 2 nodes: web-1 since 2026-05-06T06:00:00Z (connection refused); web-2 since 2026-05-06T06:59:00Z (timeout)"}},
		{"a window of 0 fires at the first failure", windowless, app(fail(1, 0, "timeout")), true, SeverityCritical, false, 1, []string{"web-1 since 2026-05-06T07:00:00Z (timeout)"}},
		{"a failure without words", rule, app(fail(1, time.Hour, "")), true, SeverityCritical, false, 1, []string{"web-1 since 2026-05-06T06:00:00Z (unreachable)"}},
		{"a failure with no start on record counts from its probe", rule, app(UpstreamProbe{ServerID: 1, At: now.Add(-time.Minute), Error: "timeout"}),
			true, SeverityNone, true, 1, []string{"web-1 since 2026-05-06T06:59:00Z"}},
		{"labels scope: db-1's failure does not count", scoped(nil, "edge"), app(ok(1), fail(3, time.Hour, "timeout")), true, SeverityNone, false, 0,
			[]string{"answers the probes of every node in scope (1 node)"}},
		{"labels scope: no node with the label probed it", scoped(nil, "edge"), app(fail(3, time.Hour, "timeout")), true, SeverityNone, false, 0,
			[]string{"No node in scope has probed"}},
		{"servers scope", scoped([]int{3}), app(ok(1), fail(3, time.Hour, "timeout")), true, SeverityCritical, false, 1,
			[]string{"from 1 of 1 node: db-1 since"}},
		{"servers or labels", scoped([]int{3}, "edge"), app(fail(1, time.Hour, "timeout"), ok(2), fail(3, time.Hour, "timeout")), true, SeverityCritical, false, 2,
			[]string{"from 2 of 2 nodes: db-1 since", "; web-1 since"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckUpstream(tc.rule, tc.facts, servers, now)
			if c.Known != tc.known || c.Breach != tc.breach || c.Starting != tc.starting || c.Value != tc.value {
				t.Errorf("got known %v breach %q starting %v value %v, want %v %q %v %v (%s)", c.Known, c.Breach, c.Starting, c.Value,
					tc.known, tc.breach, tc.starting, tc.value, c.Summary)
			}
			for _, want := range tc.summary {
				if !strings.Contains(c.Summary, want) {
					t.Errorf("summary %q lacks %q", c.Summary, want)
				}
			}
		})
	}
}

// Names and errors from outside reach the summary as one bounded line of
// text, and a long list of failing nodes is cut short.
func TestCheckUpstreamHostileText(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	servers := map[int]ServerRef{}
	var probes []UpstreamProbe
	for i := 1; i <= 40; i++ {
		servers[i] = ServerRef{ID: i, Name: fmt.Sprintf("node-%02d", i)}
		probes = append(probes, UpstreamProbe{ServerID: i, At: now, FailingSince: now.Add(-time.Hour),
			Error: "refused\n<script>alert(1)</script>\x1b[31m\u202e" + strings.Repeat("x", 5000)})
	}
	servers[1] = ServerRef{ID: 1, Name: "evil\r\nX-Injected: 1<b>"}
	u := UpstreamFacts{Upstream: "app</b>\n\x00" + strings.Repeat("u", 500), Address: "10.0.0.1:80\n" + strings.Repeat("h", 500),
		Listed: true, Probes: probes}
	c := CheckUpstream(Rule{Kind: KindUpstreamDown, Severity: SeverityWarning, Window: time.Minute}, u, servers, now)
	if c.Breach != SeverityWarning || c.Value != 40 {
		t.Fatalf("breach %q value %v", c.Breach, c.Value)
	}
	for _, r := range c.Summary {
		if r == '\n' || r == '\r' || (unicode.IsControl(r)) {
			t.Fatalf("summary holds a control character %q: %q", r, c.Summary)
		}
	}
	if n := len([]rune(c.Summary)); n > 1500 {
		t.Errorf("summary is %d characters long", n)
	}
	if !strings.Contains(c.Summary, "and 35 more") || strings.Count(c.Summary, " since ") != 5 {
		t.Errorf("the node list is not cut short: %s", c.Summary)
	}
	if !strings.Contains(c.Summary, "evil X-Injected: 1<b>") {
		t.Errorf("a node name lost its words or kept its line break: %s", c.Summary)
	}
}

// The subject names the upstream and the address, parses back, and stays
// within what an incident holds, printable, whatever the names are.
func TestUpstreamSubject(t *testing.T) {
	t.Parallel()
	s := UpstreamSubject("app", "[2001:db8::1]:443")
	if s != "upstream:app/[2001:db8::1]:443" {
		t.Fatalf("subject %q", s)
	}
	if name, addr, ok := SubjectUpstream(s); !ok || name != "app" || addr != "[2001:db8::1]:443" {
		t.Fatalf("parsed %q %q %v", name, addr, ok)
	}
	hostile := UpstreamSubject("a/b\n\u00e9"+strings.Repeat("n", 300), "h/x:1\x00"+strings.Repeat("h", 500))
	if len(hostile) > 300 {
		t.Errorf("subject of %d bytes", len(hostile))
	}
	for i := 0; i < len(hostile); i++ {
		if hostile[i] <= ' ' || hostile[i] > '~' {
			t.Fatalf("subject %q holds byte %#x", hostile, hostile[i])
		}
	}
	if name, addr, ok := SubjectUpstream(hostile); !ok || !strings.HasPrefix(name, "a_b_") || !strings.HasPrefix(addr, "h_x:1_") {
		t.Errorf("hostile subject parsed as %q %q %v", name, addr, ok)
	}
	for _, other := range []string{"server:1", "domain:example.com", "monitor:x", "upstream:", "upstream:app", "upstream:/1.2.3.4:80", "upstream:app/"} {
		if _, _, ok := SubjectUpstream(other); ok {
			t.Errorf("%q parsed as an upstream subject", other)
		}
	}
}

func TestRuleValidateUpstreamDown(t *testing.T) {
	t.Parallel()
	base := Rule{Name: "Backends", Kind: KindUpstreamDown, Severity: SeverityCritical, Window: 5 * time.Minute}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Rule)
		field  string
	}{
		"window 0 (the first failed probe)": {func(r *Rule) { r.Window = 0 }, ""},
		"scoped by servers and labels":      {func(r *Rule) { r.ServerIDs, r.Labels = []int{1}, []string{"edge"} }, ""},
		"window over a day":                 {func(r *Rule) { r.Window = 25 * time.Hour }, "window"},
		"negative window":                   {func(r *Rule) { r.Window = -time.Second }, "window"},
		"no severity":                       {func(r *Rule) { r.Severity = "" }, "severity"},
		"days":                              {func(r *Rule) { r.Days = 3 }, "days"},
		"a metric level":                    {func(r *Rule) { r.Critical = f(1) }, "metric"},
		"a bad label":                       {func(r *Rule) { r.Labels = []string{"<b>"} }, "labels"},
	} {
		r := base
		tc.change(&r)
		err := r.Validate()
		var fe FieldErrors
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe[tc.field] == ""):
			t.Errorf("%s: %v, want a message for %s", name, err, tc.field)
		}
	}
	if !KindUpstreamDown.HasWindow() || !KindUpstreamDown.PerUpstream() || KindUpstreamDown.PerDomain() || KindUpstreamDown.PerMonitor() ||
		KindUpstreamDown.Label() != "Upstream server unreachable" || KindUpstreamDown.Description() == "" {
		t.Error("the kind's words or field groups are wrong")
	}
	got := base.Explain(map[int]string{1: "web-1"})
	if want := "When a server of an upstream has refused or timed out a node's connection probes for 5 minutes, a critical incident fires for each upstream server, as probed by any server."; !strings.HasPrefix(got, want) {
		t.Errorf("explanation %q, want it to start with %q", got, want)
	}
	scoped := base
	scoped.ServerIDs, scoped.Labels = []int{1}, []string{"edge"}
	if got := scoped.Explain(map[int]string{1: "web-1"}); !strings.Contains(got, "as probed by the servers web-1 or servers labelled edge.") {
		t.Errorf("scoped explanation %q", got)
	}
}

// probeSource plays the controller's memory of upstream probes.
type probeSource struct {
	mu     sync.Mutex
	probes map[string][]UpstreamProbe
}

func (s *probeSource) set(addr string, probes ...UpstreamProbe) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probes == nil {
		s.probes = map[string][]UpstreamProbe{}
	}
	s.probes[addr] = probes
}

func (s *probeSource) get(time.Time) map[string][]UpstreamProbe {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]UpstreamProbe, len(s.probes))
	for k, v := range s.probes {
		out[k] = append([]UpstreamProbe(nil), v...)
	}
	return out
}

// An upstream rule opens a pending incident at the first failed probe, fires
// after the window with the upstream, address, node and error in the
// notification, and resolves on a success, on the address leaving the
// upstream, or when no node probes it any more, saying which. Probes by nodes
// out of scope never count, and a silence on a failing node holds it.
func TestUpstreamDownIncident(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db) // web-1 labelled edge, web-2 unlabelled
		src := &probeSource{}
		fx.e = New(db, hclog.NewNullLogger(), Options{Audit: audit.New(db.Client, hclog.NewNullLogger()), Notifier: fx.rec, Now: fx.clk.now,
			UpstreamProbes: src.get})
		app := db.Client.Upstream.Create().SetName("app").SaveX(ctx)
		db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.1").SetPort(8080).SetPosition(0).ExecX(ctx)
		t2 := db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.2").SetPort(8080).SetPosition(1).SaveX(ctx)
		db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.3").SetPort(8080).SetPosition(2).SetDown(true).ExecX(ctx)
		r := fx.rule(t, Rule{Name: "Backends", Kind: KindUpstreamDown, Severity: SeverityCritical, Window: 5 * time.Minute, Labels: []string{"edge"}})
		sub1, sub2 := UpstreamSubject("app", "10.0.0.1:8080"), UpstreamSubject("app", "10.0.0.2:8080")
		key1, key2 := openKey(r.ID, sub1), openKey(r.ID, sub2)
		start := fx.clk.t
		down := func(id int, since time.Time, why string) UpstreamProbe {
			return UpstreamProbe{ServerID: id, Error: why, At: fx.clk.t, FailingSince: since}
		}
		up := func(id int) UpstreamProbe { return UpstreamProbe{ServerID: id, OK: true, At: fx.clk.t} }

		// web-2 is out of the rule's scope: its failures never count.
		src.set("10.0.0.1:8080", down(fx.server.ID, start, "connection refused"), down(fx.web2.ID, start.Add(-time.Hour), "timeout"))
		src.set("10.0.0.2:8080", up(fx.server.ID), down(fx.web2.ID, start.Add(-time.Hour), "timeout"))
		src.set("10.0.0.3:8080", down(fx.server.ID, start.Add(-time.Hour), "timeout")) // marked down: not judged
		fx.eval(t)
		open := fx.open(t)
		if inc := open[key1]; len(open) != 1 || inc == nil || inc.State != incident.StatePending {
			t.Fatalf("after the first failed probe: %v", keys(open))
		}
		if len(fx.rec.all()) != 0 {
			t.Fatalf("a pending incident notified: %v", fx.rec.kinds())
		}

		fx.clk.advance(2 * time.Minute)
		src.set("10.0.0.1:8080", down(fx.server.ID, start, "connection refused"))
		fx.eval(t)
		if inc := fx.open(t)[key1]; inc == nil || inc.State != incident.StatePending {
			t.Fatalf("before the window: %+v", inc)
		}

		fx.clk.advance(3 * time.Minute)
		src.set("10.0.0.1:8080", down(fx.server.ID, start, "connection refused"))
		fx.eval(t)
		inc := fx.open(t)[key1]
		if inc == nil || inc.State != incident.StateFiring || inc.ServerID != 0 || inc.Value != 1 ||
			inc.Summary != "10.0.0.1:8080 of upstream app is unreachable from 1 of 1 node: web-1 since "+start.Format(time.RFC3339)+" (connection refused)" {
			t.Fatalf("after the window: %+v", inc)
		}
		if v := ViewOf(inc, fx.clk.t); v.Upstream != "app" || v.Address != "10.0.0.1:8080" || v.Domain != "" || v.Monitor != "" {
			t.Errorf("view %+v", v)
		}
		sent := fx.rec.all()
		if len(sent) != 1 || sent[0].Kind != notify.KindFiring || sent[0].Title != "Backends on 10.0.0.1:8080 of upstream app" ||
			!hasField(sent[0], "Upstream", "app") || !hasField(sent[0], "Upstream server", "10.0.0.1:8080") ||
			!hasField(sent[0], "Unreachable from", "web-1") || !hasField(sent[0], "Detail", inc.Summary) {
			t.Fatalf("firing notification %+v", sent)
		}

		// A success resolves it, and says so.
		fx.clk.advance(time.Minute)
		src.set("10.0.0.1:8080", up(fx.server.ID))
		fx.eval(t)
		resolved := db.Client.Incident.GetX(ctx, inc.ID)
		if resolved.State != incident.StateResolved || resolved.Summary != "10.0.0.1:8080 of upstream app answers the probes of every node in scope (1 node)" {
			t.Fatalf("after a success: %+v", resolved)
		}
		if k := fx.rec.kinds(); len(k) != 2 || k[1] != string(notify.KindResolved) {
			t.Fatalf("notifications %v", k)
		}

		// A second run of failures, then the address leaves the upstream.
		failing2 := fx.clk.t
		src.set("10.0.0.2:8080", down(fx.server.ID, failing2, "timeout"))
		fx.eval(t)
		fx.clk.advance(5 * time.Minute)
		src.set("10.0.0.2:8080", down(fx.server.ID, failing2, "timeout"))
		fx.eval(t)
		if inc := fx.open(t)[key2]; inc == nil || inc.State != incident.StateFiring {
			t.Fatalf("second address: %+v", inc)
		}
		db.Client.UpstreamTarget.DeleteOne(t2).ExecX(ctx)
		fx.clk.advance(time.Minute)
		fx.eval(t)
		gone := db.Client.Incident.Query().Where(incident.Subject(sub2)).OnlyX(ctx)
		if gone.State != incident.StateResolved || gone.Summary != "10.0.0.2:8080 of upstream app is no longer a server of it" {
			t.Fatalf("after the address left the upstream: %+v", gone)
		}

		// No fresh probe at all resolves too.
		failing1 := fx.clk.t
		src.set("10.0.0.1:8080", down(fx.server.ID, failing1, "timeout"))
		fx.clk.advance(5 * time.Minute)
		src.set("10.0.0.1:8080", down(fx.server.ID, failing1, "timeout"))
		fx.eval(t)
		third := fx.open(t)[key1]
		if third == nil || third.State != incident.StateFiring {
			t.Fatalf("third run: %+v", third)
		}
		src.set("10.0.0.1:8080")
		fx.clk.advance(time.Minute)
		fx.eval(t)
		if got := db.Client.Incident.GetX(ctx, third.ID); got.State != incident.StateResolved ||
			got.Summary != "No node in scope has probed 10.0.0.1:8080 of upstream app in the last few minutes" {
			t.Fatalf("without probes: %+v", got)
		}

		// A silence scoped to the failing node holds the notification.
		before := len(fx.rec.all())
		if _, err := fx.e.CreateSilence(ctx, SilenceInput{RuleID: r.ID, ServerID: fx.server.ID, StartsAt: fx.clk.t, EndsAt: fx.clk.t.Add(time.Hour),
			Comment: "maintenance of web-1"}, audit.System("test")); err != nil {
			t.Fatal(err)
		}
		src.set("10.0.0.1:8080", down(fx.server.ID, fx.clk.t.Add(-time.Hour), "timeout"))
		fx.eval(t)
		if inc := fx.open(t)[key1]; inc == nil || inc.State != incident.StateFiring || inc.NotifiedAt != nil {
			t.Fatalf("silenced: %+v", inc)
		}
		if n := len(fx.rec.all()); n != before {
			t.Fatalf("a silenced incident notified: %v", fx.rec.kinds())
		}

		// Disabling the rule resolves what it holds open.
		r.Enabled = false
		if _, err := fx.e.SaveRule(ctx, r, audit.System("test")); err != nil {
			t.Fatal(err)
		}
		fx.eval(t)
		if open := fx.open(t); len(open) != 0 {
			t.Fatalf("after disabling the rule: %v", keys(open))
		}
	})
}

// Without a probe source, upstream rules know of no probe and open nothing.
func TestUpstreamDownWithoutSource(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newDomainFixture(t, db)
		app := db.Client.Upstream.Create().SetName("app").SaveX(ctx)
		db.Client.UpstreamTarget.Create().SetUpstreamID(app.ID).SetHost("10.0.0.1").SetPort(8080).ExecX(ctx)
		fx.rule(t, Rule{Name: "Backends", Kind: KindUpstreamDown, Severity: SeverityWarning})
		fx.eval(t)
		if n := len(fx.incidents(t)); n != 0 {
			t.Fatalf("%d incidents without probes", n)
		}
	})
}
