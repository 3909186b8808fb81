package alerts

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func f(v float64) *float64 { return &v }

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// series builds one observation per second ending at t0, with the given values of key.
func series(key string, values ...float64) []Observation {
	out := make([]Observation, len(values))
	for i, v := range values {
		out[i] = Observation{ServerID: 1, At: t0.Add(time.Duration(i-len(values)+1) * time.Second), Values: map[string]float64{key: v}}
	}
	return out
}

func TestCheckMetric(t *testing.T) {
	cpu := Rule{Kind: KindMetric, Metric: MetricCPU, Op: OpAbove, Warning: f(80), Critical: f(95), Window: 4 * time.Second}
	below := Rule{Kind: KindMetric, Metric: MetricFS, Mount: "/var", Op: OpBelow, Critical: f(10)}
	for _, tc := range []struct {
		name     string
		rule     Rule
		obs      []Observation
		known    bool
		breach   Severity
		starting bool
		value    float64
	}{
		{"no data", cpu, nil, false, SeverityNone, false, 0},
		{"other metric only", cpu, series("mem", 99), false, SeverityNone, false, 0},
		{"calm", cpu, series("cpu", 10, 10, 10, 10, 10), true, SeverityNone, false, 10},
		{"spike starts pending", cpu, series("cpu", 10, 10, 10, 10, 99), true, SeverityNone, true, 99},
		{"average past warning", cpu, series("cpu", 10, 90, 90, 90, 90), true, SeverityWarning, false, 90},
		{"average past critical", cpu, series("cpu", 99, 99, 99, 99, 99), true, SeverityCritical, false, 99},
		// The window is 4s: the sample 6s old does not count.
		{"old samples ignored", cpu, series("cpu", 0, 0, 85, 85, 85, 85, 85), true, SeverityWarning, false, 85},
		{"drop clears", cpu, series("cpu", 99, 10, 10, 10, 10), true, SeverityNone, false, 10},
		{"fs below, latest only", below, series("fs:/var", 50, 5), true, SeverityCritical, false, 5},
		{"fs other mount", below, series("fs:/", 5), false, SeverityNone, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckMetric(tc.rule, tc.obs, t0)
			if c.Known != tc.known || c.Breach != tc.breach || c.Starting != tc.starting || (c.Known && c.Value != tc.value) {
				t.Fatalf("CheckMetric = %+v, want known=%v breach=%q starting=%v value=%v", c, tc.known, tc.breach, tc.starting, tc.value)
			}
		})
	}
}

// TestNginxObservations: a sample with nginx's counters gives both nginx
// metrics; one without gives neither, so a rule on them knows nothing rather
// than seeing 0; a broken rate is left out.
func TestNginxObservations(t *testing.T) {
	at := timestamppb.New(t0)
	with := ObservationFromSample(1, &agentv1.MetricSample{Time: at, Nginx: &agentv1.NginxStatus{Active: 12, RequestsPerSecond: 340.5}})
	if with.Values["nginx_rps"] != 340.5 || with.Values["nginx_conns"] != 12 {
		t.Errorf("with counters: %v", with.Values)
	}
	without := ObservationFromSample(1, &agentv1.MetricSample{Time: at})
	if _, ok := without.Values["nginx_rps"]; ok {
		t.Errorf("without counters: %v", without.Values)
	}
	broken := ObservationFromSample(1, &agentv1.MetricSample{Time: at, Nginx: &agentv1.NginxStatus{RequestsPerSecond: math.NaN()}})
	if _, ok := broken.Values["nginx_rps"]; ok {
		t.Errorf("a NaN rate was kept: %v", broken.Values)
	}
	busy := Rule{Kind: KindMetric, Metric: MetricNginxRPS, Op: OpAbove, Warning: f(300), Window: 0}
	if c := CheckMetric(busy, []Observation{without}, t0); c.Known {
		t.Errorf("rule on a sample without counters: %+v", c)
	}
	if c := CheckMetric(busy, []Observation{with}, t0); c.Breach != SeverityWarning || !strings.Contains(c.Summary, "request rate is 340.5 per second") {
		t.Errorf("rule on 340.5 requests a second: %+v", c)
	}
}

func TestCheckServer(t *testing.T) {
	off := Rule{Kind: KindOffline, Window: time.Minute, Severity: SeverityCritical}
	fail := Rule{Kind: KindNginxFailed, Severity: SeverityWarning}
	drift := Rule{Kind: KindNginxDrift, Severity: SeverityWarning}
	for _, tc := range []struct {
		name     string
		rule     Rule
		facts    ServerFacts
		known    bool
		breach   Severity
		starting bool
	}{
		{"never seen", off, ServerFacts{Status: "pending"}, false, SeverityNone, false},
		{"fresh", off, ServerFacts{Status: "online", LastSeen: t0.Add(-5 * time.Second)}, true, SeverityNone, false},
		{"marked offline, not long", off, ServerFacts{Status: "offline", LastSeen: t0.Add(-30 * time.Second)}, true, SeverityNone, true},
		{"silent past window", off, ServerFacts{Status: "online", LastSeen: t0.Add(-61 * time.Second)}, true, SeverityCritical, false},
		{"apply fine", fail, ServerFacts{Status: "online"}, true, SeverityNone, false},
		{"apply failed", fail, ServerFacts{NginxFailed: true, NginxReason: "test_failed"}, true, SeverityWarning, false},
		{"no drift", drift, ServerFacts{}, true, SeverityNone, false},
		{"drift", drift, ServerFacts{DriftFiles: []string{"b.conf", "a.conf"}}, true, SeverityWarning, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckServer(tc.rule, tc.facts, t0)
			if c.Known != tc.known || c.Breach != tc.breach || c.Starting != tc.starting {
				t.Fatalf("CheckServer = %+v, want known=%v breach=%q starting=%v", c, tc.known, tc.breach, tc.starting)
			}
		})
	}
	c := CheckServer(drift, ServerFacts{DriftFiles: []string{"b.conf", "a.conf"}}, t0)
	if !strings.Contains(c.Summary, "a.conf, b.conf") {
		t.Errorf("drift summary %q does not list the files in order", c.Summary)
	}
}

func TestStep(t *testing.T) {
	hold := 10 * time.Second
	pending := &Open{State: StatePending, StartedAt: t0.Add(-5 * time.Second), Severity: SeverityWarning}
	pendingLong := &Open{State: StatePending, StartedAt: t0.Add(-10 * time.Second), Severity: SeverityWarning}
	firing := &Open{State: StateFiring, StartedAt: t0.Add(-time.Minute), Severity: SeverityWarning}
	warn := Check{Known: true, Breach: SeverityWarning}
	crit := Check{Known: true, Breach: SeverityCritical}
	clear := Check{Known: true}
	starting := Check{Known: true, Starting: true}
	for _, tc := range []struct {
		name string
		cur  *Open
		c    Check
		hold time.Duration
		want Action
	}{
		{"unknown keeps state", firing, Check{}, hold, ActNone},
		{"nothing, clear", nil, clear, hold, ActNone},
		{"breach opens pending", nil, warn, hold, ActOpen},
		{"starting opens pending", nil, starting, hold, ActOpen},
		{"breach without hold fires at once", nil, warn, 0, ActFire},
		{"pending, not held long enough", pending, warn, hold, ActUpdate},
		{"pending, held for the window", pendingLong, warn, hold, ActFire},
		{"pending, still starting", pendingLong, starting, hold, ActUpdate},
		{"pending clears", pending, clear, hold, ActCancel},
		{"firing stays", firing, warn, hold, ActUpdate},
		{"firing escalates", firing, crit, hold, ActEscalate},
		{"firing resolves", firing, clear, hold, ActResolve},
		{"firing, only latest sample past", firing, starting, hold, ActResolve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Step(tc.cur, tc.c, tc.hold, t0); got != tc.want {
				t.Fatalf("Step = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	good := Rule{Name: "High CPU", Kind: KindMetric, Enabled: true, Metric: MetricCPU, Op: OpAbove, Warning: f(80), Critical: f(95), Window: 5 * time.Minute}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid rule refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(r *Rule)
		field string
	}{
		{"markup in name", func(r *Rule) { r.Name = "<b>cpu</b>" }, "name"},
		{"unknown kind", func(r *Rule) { r.Kind = "dns" }, "kind"},
		{"unknown metric", func(r *Rule) { r.Metric = "temp" }, "metric"},
		{"fs without mount", func(r *Rule) { r.Metric = MetricFS }, "mount"},
		{"fs with relative mount", func(r *Rule) { r.Metric, r.Mount = MetricFS, "var" }, "mount"},
		{"fs with dot-dot", func(r *Rule) { r.Metric, r.Mount = MetricFS, "/var/.." }, "mount"},
		{"mount on cpu", func(r *Rule) { r.Mount = "/" }, "mount"},
		{"bad op", func(r *Rule) { r.Op = ">=" }, "op"},
		{"no levels", func(r *Rule) { r.Warning, r.Critical = nil, nil }, "critical"},
		{"percent over 100", func(r *Rule) { r.Critical = f(150) }, "critical"},
		{"warning after critical", func(r *Rule) { r.Warning = f(99) }, "warning"},
		{"window too long", func(r *Rule) { r.Window = 48 * time.Hour }, "window"},
		{"repeat too short", func(r *Rule) { r.Repeat = time.Second }, "repeat"},
		{"repeat too long", func(r *Rule) { r.Repeat = 30 * 24 * time.Hour }, "repeat"},
		{"bad label", func(r *Rule) { r.Labels = []string{"a b"} }, "labels"},
		{"bad server id", func(r *Rule) { r.ServerIDs = []int{-1} }, "servers"},
		{"days on metric", func(r *Rule) { r.Days = 3 }, "days"},
		{"offline with levels", func(r *Rule) { r.Kind, r.Severity, r.Window = KindOffline, SeverityCritical, time.Minute }, "metric"},
		{"offline bad severity", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindOffline, Window: time.Minute, Severity: "fatal"}
		}, "severity"},
		{"offline window too short", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindOffline, Window: time.Second, Severity: SeverityCritical}
		}, "window"},
		{"expiry without days", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindCertExpiring, Severity: SeverityWarning}
		}, "days"},
		{"expiry over a year", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindCertExpiring, Severity: SeverityWarning, Days: 366}
		}, "days"},
		{"days on renewal", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindCertRenewal, Severity: SeverityWarning, Days: 3}
		}, "days"},
		{"window on dns", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindDNSMismatch, Severity: SeverityWarning, Window: time.Minute}
		}, "window"},
		{"dns without severity", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindDNSMismatch}
		}, "severity"},
		{"levels on expiry", func(r *Rule) {
			*r = Rule{Name: "x", Kind: KindCertExpiring, Severity: SeverityWarning, Days: 14, Critical: f(3)}
		}, "metric"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.edit(&r)
			err := r.Validate()
			fe, ok := err.(FieldErrors)
			if !ok || fe[tc.field] == "" {
				t.Fatalf("Validate = %v, want a message for %q", err, tc.field)
			}
		})
	}
}

func TestRuleValidateDomainKinds(t *testing.T) {
	for _, r := range []Rule{
		{Name: "Expiry", Kind: KindCertExpiring, Severity: SeverityWarning, Days: 1},
		{Name: "Expiry", Kind: KindCertExpiring, Severity: SeverityCritical, Days: 365, Labels: []string{"edge"}},
		{Name: "Renewal", Kind: KindCertRenewal, Severity: SeverityCritical},
		{Name: "DNS", Kind: KindDNSMismatch, Severity: SeverityWarning, ServerIDs: []int{1}},
		{Name: "SLO", Kind: KindUptimeBelow, Warning: f(99.9), Critical: f(99), Window: 24 * time.Hour},
		{Name: "SLO", Kind: KindUptimeBelow, Critical: f(95), Window: MaxUptimeWindow, Op: OpBelow},
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
	for _, tc := range []struct {
		rule  Rule
		field string
	}{
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Window: 24 * time.Hour}, "critical"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Critical: f(100.5), Window: 24 * time.Hour}, "critical"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Warning: f(-1), Critical: f(90), Window: 24 * time.Hour}, "warning"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Warning: f(98), Critical: f(99), Window: 24 * time.Hour}, "warning"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Critical: f(99), Window: 30 * time.Minute}, "window"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Critical: f(99), Window: MaxUptimeWindow + time.Hour}, "window"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Critical: f(99), Window: time.Hour, Metric: MetricCPU}, "metric"},
		{Rule{Name: "SLO", Kind: KindUptimeBelow, Critical: f(99), Window: time.Hour, Op: OpAbove}, "metric"},
	} {
		var fe FieldErrors
		if err := tc.rule.Validate(); !errors.As(err, &fe) || fe[tc.field] == "" {
			t.Errorf("Validate(%+v) = %v, want a message for %s", tc.rule, err, tc.field)
		}
	}
}

func TestCheckMonitor(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	r := Rule{Kind: KindMonitorDown, Severity: SeverityCritical, Window: time.Minute}
	for _, tc := range []struct {
		name   string
		m      MonitorFacts
		known  bool
		breach bool
	}{
		{"never checked", MonitorFacts{Name: "a", Enabled: true}, false, false},
		{"disabled", MonitorFacts{Name: "a", Checked: true, FailingSince: now.Add(-time.Hour)}, false, false},
		{"up", MonitorFacts{Name: "a", Enabled: true, Checked: true, OK: true}, true, false},
		{"down, window not reached", MonitorFacts{Name: "a", Enabled: true, Checked: true, FailingSince: now.Add(-30 * time.Second)}, true, false},
		{"down past the window", MonitorFacts{Name: "a", Enabled: true, Checked: true, FailingSince: now.Add(-61 * time.Second), Message: "x"}, true, true},
	} {
		c := CheckMonitor(r, tc.m, now)
		if c.Known != tc.known || (c.Breach != "") != tc.breach {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
	var fe FieldErrors
	if err := (Rule{Name: "M", Kind: KindMonitorDown, Severity: SeverityWarning, ServerIDs: []int{1}}).Validate(); !errors.As(err, &fe) || fe["servers"] == "" {
		t.Errorf("a monitor rule scoped to servers: %v", err)
	}
	if err := (Rule{Name: "M", Kind: KindMonitorDown, Severity: SeverityWarning, Window: 25 * time.Hour}).Validate(); !errors.As(err, &fe) || fe["window"] == "" {
		t.Errorf("a monitor rule with a long window: %v", err)
	}
	if got := (Rule{Kind: KindMonitorDown, Enabled: true, Severity: SeverityCritical, Window: 2 * time.Minute}).Explain(nil); got !=
		"When a monitor has failed for 2 minutes, a critical incident fires for every monitor. It resolves by itself when the condition clears (the monitor answers again)." {
		t.Errorf("explain %q", got)
	}
}

func TestCheckMonitorCert(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	r := Rule{Kind: KindMonitorCert, Severity: SeverityWarning, Days: 14}
	for _, tc := range []struct {
		name    string
		m       MonitorFacts
		known   bool
		breach  bool
		summary string
	}{
		{"no certificate seen", MonitorFacts{Name: "api", Enabled: true, Checked: true}, false, false, ""},
		{"disabled", MonitorFacts{Name: "api", CertNotAfter: now.Add(time.Hour)}, false, false, ""},
		{"far off", MonitorFacts{Name: "api", Enabled: true, CertNotAfter: now.Add(60 * 24 * time.Hour)}, true, false, "in 60 days"},
		{"at the limit", MonitorFacts{Name: "api", Enabled: true, CertNotAfter: now.Add(14 * 24 * time.Hour)}, true, true, "in 14 days"},
		{"within a day", MonitorFacts{Name: "api", Enabled: true, CertNotAfter: now.Add(time.Hour)}, true, true, "in less than a day"},
		{"expired", MonitorFacts{Name: "api", Enabled: true, CertNotAfter: now.Add(-time.Hour)}, true, true, "api presents expired on 2030-01-01T11:00:00Z"},
	} {
		c := CheckMonitor(r, tc.m, now)
		if c.Known != tc.known || (c.Breach != "") != tc.breach || !strings.Contains(c.Summary, tc.summary) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
	var fe FieldErrors
	for _, bad := range []Rule{
		{Name: "C", Kind: KindMonitorCert, Severity: SeverityWarning, Days: 0},
		{Name: "C", Kind: KindMonitorCert, Severity: SeverityWarning, Days: 14, Window: time.Minute},
		{Name: "C", Kind: KindMonitorCert, Severity: SeverityWarning, Days: 14, Labels: []string{"prod"}},
	} {
		if err := bad.Validate(); !errors.As(err, &fe) {
			t.Errorf("Validate(%+v) = %v", bad, err)
		}
	}
	if got := (Rule{Kind: KindMonitorCert, Enabled: true, Severity: SeverityWarning, Days: 10}).Explain(nil); got !=
		"When the certificate a monitor's https or TLS target presents expires within 10 days, a warning incident fires for every monitor. It resolves by itself when the condition clears (a check finds a renewed certificate)." {
		t.Errorf("explain %q", got)
	}
}

func TestCheckUptime(t *testing.T) {
	r := Rule{Kind: KindUptimeBelow, Warning: f(99.9), Critical: f(99), Window: 24 * time.Hour}
	for _, tc := range []struct {
		up, down int
		known    bool
		breach   Severity
	}{
		{0, 0, false, SeverityNone},
		{1000, 0, true, SeverityNone},
		{999, 1, true, SeverityNone}, // exactly 99.9 %
		{998, 2, true, SeverityWarning},
		{989, 11, true, SeverityCritical},
	} {
		d := DomainFacts{Name: "a.example", Uptime: map[time.Duration]UptimeCount{24 * time.Hour: {tc.up, tc.down}, time.Hour: {0, 5}}}
		c := checkUptime(r, d)
		if c.Known != tc.known || c.Breach != tc.breach {
			t.Errorf("%d up, %d down: %+v", tc.up, tc.down, c)
		}
	}
	c := checkUptime(r, DomainFacts{Name: "a.example", Uptime: map[time.Duration]UptimeCount{24 * time.Hour: {9989, 11}}})
	if c.Summary != "a.example answered 99.89 % of its health probes over the last 1 day (11 of 10000 failed)" {
		t.Errorf("summary %q", c.Summary)
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{Kind: KindMetric, Enabled: true, Metric: MetricCPU, Op: OpAbove, Warning: f(80), Critical: f(95), Window: 5 * time.Minute, Repeat: time.Hour},
			"When the CPU usage averaged over 5 minutes is above 80% (warning) or 95% (critical), an incident opens as pending at the first sample past the level and fires once it has held for 5 minutes for every server. It resolves by itself when the condition clears; while it fires unacknowledged, a reminder is sent every 1 hour."},
		{Rule{Kind: KindMetric, Enabled: true, Metric: MetricFS, Mount: "/var", Op: OpAbove, Critical: f(90), ServerIDs: []int{3}, Labels: []string{"db"}},
			"When the latest usage of the filesystem mounted at /var is above 90% (critical), an incident fires for the servers web-3 and servers labelled db. It resolves by itself when the condition clears."},
		{Rule{Kind: KindOffline, Window: 2 * time.Minute, Severity: SeverityCritical},
			"When a server has sent nothing for 2 minutes, a critical incident fires for every server. It resolves by itself when the condition clears. The rule is disabled."},
		{Rule{Kind: KindCertExpiring, Enabled: true, Days: 14, Severity: SeverityWarning},
			"When the active certificate of a domain expires within 14 days, a warning incident fires for each domain served by any server. It resolves by itself when the condition clears (a renewed certificate is on record)."},
		{Rule{Kind: KindCertRenewal, Enabled: true, Severity: SeverityCritical, ServerIDs: []int{3}, Labels: []string{"edge"}},
			"When the latest attempt to issue or renew a domain's certificate failed, a critical incident fires for each domain served by the servers web-3 or servers labelled edge. It resolves by itself when the condition clears (an attempt succeeds)."},
		{Rule{Kind: KindUptimeBelow, Enabled: true, Warning: f(99.9), Critical: f(99), Window: 7 * 24 * time.Hour},
			"When a domain's uptime over the last 7 days falls below 99.9 % (warning) or 99 % (critical), an incident fires for each domain served by any server. It resolves by itself when the condition clears (the uptime is back above the level)."},
		{Rule{Kind: KindDNSMismatch, Enabled: true, Severity: SeverityWarning, Repeat: time.Hour},
			"When the newest DNS check of a domain finds it does not resolve to the servers that serve it, a warning incident fires for each domain served by any server. It resolves by itself when the condition clears (a later check finds the domain pointing at its servers); while it fires unacknowledged, a reminder is sent every 1 hour."},
	} {
		if got := tc.rule.Explain(map[int]string{3: "web-3"}); got != tc.want {
			t.Errorf("Explain =\n%s\nwant\n%s", got, tc.want)
		}
	}
}

func TestApplies(t *testing.T) {
	s := ServerRef{ID: 7, Labels: []string{"edge", "eu"}}
	for _, tc := range []struct {
		rule Rule
		want bool
	}{
		{Rule{}, true},
		{Rule{ServerIDs: []int{7}}, true},
		{Rule{ServerIDs: []int{8}}, false},
		{Rule{Labels: []string{"eu"}}, true},
		{Rule{Labels: []string{"us"}}, false},
		{Rule{ServerIDs: []int{8}, Labels: []string{"edge"}}, true},
	} {
		if got := tc.rule.Applies(s); got != tc.want {
			t.Errorf("Applies(%+v) = %v, want %v", tc.rule, got, tc.want)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	expiring := Rule{Kind: KindCertExpiring, Days: 14, Severity: SeverityWarning}
	renewal := Rule{Kind: KindCertRenewal, Severity: SeverityCritical}
	dns := Rule{Kind: KindDNSMismatch, Severity: SeverityWarning}
	cert := func(left time.Duration) *CertFacts { return &CertFacts{NotAfter: t0.Add(left), Serial: "0a"} }
	day := 24 * time.Hour
	failed := &PolicyFacts{Automatic: true, Failures: 3, LastError: "acme: error: 429 :: rateLimited\n\tToo many\r\ncertificates", LastAttempt: t0.Add(-time.Hour), NextAttempt: t0.Add(time.Hour)}
	ok := &PolicyFacts{Automatic: true, LastAttempt: t0.Add(-time.Minute)}
	res := func(status ...string) []DNSResult {
		out := make([]DNSResult, len(status))
		for i, s := range status {
			out[i] = DNSResult{Name: "n" + string(rune('a'+i)) + ".example", Status: s, Message: "n" + string(rune('a'+i)) + ".example " + s}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		rule    Rule
		facts   DomainFacts
		known   bool
		breach  Severity
		summary string // a part the summary must contain
	}{
		{"no certificate is not expiring", expiring, DomainFacts{Name: "a.example"}, false, SeverityNone, ""},
		{"far from expiry", expiring, DomainFacts{Name: "a.example", Cert: cert(60 * day)}, true, SeverityNone, "in 60 days"},
		{"just outside the window", expiring, DomainFacts{Name: "a.example", Cert: cert(14*day + time.Second)}, true, SeverityNone, "in 14 days"},
		{"exactly at the window", expiring, DomainFacts{Name: "a.example", Cert: cert(14 * day)}, true, SeverityWarning, "in 14 days"},
		{"inside the window", expiring, DomainFacts{Name: "a.example", Cert: cert(3*day + time.Hour)}, true, SeverityWarning, "in 3 days"},
		{"less than a day", expiring, DomainFacts{Name: "a.example", Cert: cert(time.Hour)}, true, SeverityWarning, "in less than a day"},
		{"expired", expiring, DomainFacts{Name: "a.example", Cert: cert(-2 * day)}, true, SeverityWarning, "expired on 2025-12-31T03:00:00Z"},
		{"never attempted", renewal, DomainFacts{Name: "a.example"}, true, SeverityNone, "No certificate attempt"},
		{"renewal failed", renewal, DomainFacts{Name: "a.example", Cert: cert(day), Policy: failed}, true, SeverityCritical,
			"Certificate renewal for a.example failed 3 times in a row, last at 2026-01-02T02:00:00Z: acme: error: 429 :: rateLimited Too many certificates; next attempt at 2026-01-02T04:00:00Z"},
		{"issuance failed", renewal, DomainFacts{Name: "a.example", Policy: failed}, true, SeverityCritical, "Certificate issuance for a.example failed"},
		{"renewal succeeded", renewal, DomainFacts{Name: "a.example", Cert: cert(90 * day), Policy: ok}, true, SeverityNone, "succeeded"},
		{"uploaded certificates are not renewed", renewal, DomainFacts{Name: "a.example", Policy: &PolicyFacts{Failures: 2, LastError: "x"}}, true, SeverityNone, "uploaded"},
		{"never checked", dns, DomainFacts{Name: "a.example"}, false, SeverityNone, ""},
		{"points here", dns, DomainFacts{Name: "a.example", DNS: res("ok", "ok")}, true, SeverityNone, "every name points"},
		{"points elsewhere", dns, DomainFacts{Name: "a.example", DNS: res("ok", "points_elsewhere")}, true, SeverityWarning, "nb.example points_elsewhere"},
		{"does not resolve", dns, DomainFacts{Name: "a.example", DNS: res("not_resolving")}, true, SeverityWarning, "na.example not_resolving"},
		{"resolver error is unknown", dns, DomainFacts{Name: "a.example", DNS: res("ok", "error")}, false, SeverityNone, ""},
		{"mismatch beats a resolver error", dns, DomainFacts{Name: "a.example", DNS: res("error", "points_elsewhere")}, true, SeverityWarning, "points_elsewhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckDomain(tc.rule, tc.facts, t0)
			if c.Known != tc.known || c.Breach != tc.breach || !strings.Contains(c.Summary, tc.summary) {
				t.Fatalf("CheckDomain = %+v, want known=%v breach=%q summary containing %q", c, tc.known, tc.breach, tc.summary)
			}
			if strings.ContainsAny(c.Summary, "\r\n\t") {
				t.Fatalf("summary %q is not one line", c.Summary)
			}
		})
	}
	// The error is clipped.
	long := &PolicyFacts{Automatic: true, Failures: 1, LastError: strings.Repeat("x", 5000)}
	if c := CheckDomain(renewal, DomainFacts{Name: "a.example", Policy: long}, t0); len([]rune(c.Summary)) > 400 {
		t.Fatalf("summary of %d runes, want the error clipped", len([]rune(c.Summary)))
	}
}

func TestDomainSubject(t *testing.T) {
	s := DomainSubject("xn--bcher-kva.example")
	if s != "domain:xn--bcher-kva.example" {
		t.Fatalf("subject %q", s)
	}
	if name, ok := SubjectDomain(s); !ok || name != "xn--bcher-kva.example" {
		t.Fatalf("SubjectDomain(%q) = %q, %v", s, name, ok)
	}
	for _, other := range []string{"server:1", "server:1/fs:/var", "domain:"} {
		if _, ok := SubjectDomain(other); ok {
			t.Errorf("SubjectDomain(%q) names a domain", other)
		}
	}
	// Server subjects are unchanged.
	if got := (Rule{Kind: KindMetric, Metric: MetricFS, Mount: "/var"}).Subject(3); got != "server:3/fs:/var" {
		t.Errorf("fs subject %q", got)
	}
}

func TestAppliesDomain(t *testing.T) {
	servers := map[int]ServerRef{1: {ID: 1, Labels: []string{"edge"}}, 2: {ID: 2}}
	for _, tc := range []struct {
		rule Rule
		ids  []int
		want bool
	}{
		{Rule{}, []int{2}, true},
		{Rule{}, nil, false},      // served by nobody
		{Rule{}, []int{9}, false}, // served only by a removed server
		{Rule{ServerIDs: []int{1}}, []int{2}, false},
		{Rule{ServerIDs: []int{1}}, []int{2, 1}, true},
		{Rule{Labels: []string{"edge"}}, []int{1}, true},
		{Rule{Labels: []string{"edge"}}, []int{2}, false},
	} {
		if got := tc.rule.appliesDomain(DomainFacts{ServerIDs: tc.ids}, servers); got != tc.want {
			t.Errorf("appliesDomain(%+v, %v) = %v, want %v", tc.rule, tc.ids, got, tc.want)
		}
	}
}
