package alerts

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Observation is one sample reduced to the values rules watch. Keys are
// metric names, and "fs:" + mount point for filesystems.
type Observation struct {
	ServerID int
	At       time.Time
	Values   map[string]float64
}

// ObservationFromSample extracts the watched values from an agent sample.
func ObservationFromSample(serverID int, s *agentv1.MetricSample) Observation {
	pct := func(used, total uint64) float64 {
		if total == 0 {
			return 0
		}
		return float64(used) / float64(total) * 100
	}
	v := map[string]float64{
		string(MetricCPU):    s.GetCpuPercent(),
		string(MetricMem):    pct(s.GetMemUsed(), s.GetMemTotal()),
		string(MetricSwap):   pct(s.GetSwapUsed(), s.GetSwapTotal()),
		string(MetricLoad1):  s.GetLoad1(),
		string(MetricLoad5):  s.GetLoad5(),
		string(MetricLoad15): s.GetLoad15(),
	}
	var rx, tx float64
	for _, n := range s.GetInterfaces() {
		if n.GetName() == "lo" {
			continue
		}
		rx += n.GetRxBps()
		tx += n.GetTxBps()
	}
	v[string(MetricNetRx)] = rx * 8 / 1e6
	v[string(MetricNetTx)] = tx * 8 / 1e6
	for _, fs := range s.GetFilesystems() {
		v["fs:"+fs.GetMount()] = pct(fs.GetUsed(), fs.GetSize())
	}
	// Without nginx's counters in the sample the values are unknown, not 0.
	if n := s.GetNginx(); n != nil {
		if r := n.GetRequestsPerSecond(); r >= 0 && !math.IsInf(r, 0) && !math.IsNaN(r) {
			v[string(MetricNginxRPS)] = r
		}
		v[string(MetricNginxConns)] = float64(n.GetActive())
	}
	return Observation{ServerID: serverID, At: s.GetTime().AsTime(), Values: v}
}

func (r Rule) valueKey() string {
	if r.Metric == MetricFS {
		return "fs:" + r.Mount
	}
	return string(r.Metric)
}

// Check is what a rule's condition says about one subject now.
type Check struct {
	// Known is false when there is no data to judge by; the incident then
	// keeps its state.
	Known bool
	// Breach is the severity the condition reaches, or SeverityNone.
	Breach Severity
	// Starting is true when the condition is not met yet but is on its way
	// (the latest sample is past a level while the average is not): an
	// incident opens as pending but does not fire.
	Starting bool
	Value    float64
	Summary  string
}

func (r Rule) level(v float64) Severity {
	if r.Critical != nil && r.Op.Breaches(v, *r.Critical) {
		return SeverityCritical
	}
	if r.Warning != nil && r.Op.Breaches(v, *r.Warning) {
		return SeverityWarning
	}
	return SeverityNone
}

// CheckMetric judges a metric rule on a server's observations (oldest
// first). The window average decides the breach; the latest sample alone can
// only start a pending incident.
func CheckMetric(r Rule, obs []Observation, now time.Time) Check {
	key := r.valueKey()
	var pts []point
	for _, o := range obs {
		if v, ok := o.Values[key]; ok {
			pts = append(pts, point{at: o.At.UnixNano(), v: v})
		}
	}
	return checkMetric(r, pts, now)
}

// checkMetric is CheckMetric on the buffered values of the rule's key.
func checkMetric(r Rule, pts []point, now time.Time) Check {
	from := now.Add(-r.Window).UnixNano()
	var sum float64
	var n int
	var latest float64
	var have bool
	for i := len(pts) - 1; i >= 0; i-- {
		p := pts[i]
		v := p.v
		if !have {
			latest, have = v, true
			if r.Window == 0 {
				sum, n = v, 1
				break
			}
		}
		if p.at <= from {
			break
		}
		sum += v
		n++
	}
	if !have || n == 0 {
		return Check{}
	}
	avg := sum / float64(n)
	c := Check{Known: true, Breach: r.level(avg), Value: avg}
	if c.Breach == SeverityNone && r.level(latest) != SeverityNone {
		c.Starting, c.Value = true, latest
	}
	mi, _ := metricInfo(r.Metric)
	what := mi.Label
	if r.Metric == MetricFS {
		what = "filesystem " + r.Mount + " usage"
	}
	if r.Window > 0 {
		c.Summary = fmt.Sprintf("%s averaged %s over %s (latest %s)", upperFirst(what), r.FormatValue(avg), HumanDuration(r.Window), r.FormatValue(latest))
	} else {
		c.Summary = fmt.Sprintf("%s is %s", upperFirst(what), r.FormatValue(latest))
	}
	return c
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ServerFacts is what non-metric rules judge.
type ServerFacts struct {
	ServerRef
	Hostname string
	Status   string    // pending, online, offline, removed
	LastSeen time.Time // zero: never
	// NginxFailed is set when the newest nginx revision failed to apply.
	NginxFailed bool
	NginxReason string
	// DriftFiles lists files changed behind the agent's back.
	DriftFiles []string
}

// CheckServer judges an offline or nginx rule for one server.
func CheckServer(r Rule, f ServerFacts, now time.Time) Check {
	switch r.Kind {
	case KindOffline:
		if f.Status == "pending" || f.Status == "removed" || f.LastSeen.IsZero() {
			return Check{}
		}
		silent := now.Sub(f.LastSeen)
		c := Check{Known: true, Value: silent.Seconds(),
			Summary: "No report from the agent since " + f.LastSeen.UTC().Format(time.RFC3339) + " (" + HumanDuration(silent.Truncate(time.Second)) + ")"}
		switch {
		case silent >= r.Window:
			c.Breach = r.Severity
		case f.Status == "offline":
			c.Starting = true
		}
		return c
	case KindNginxFailed:
		c := Check{Known: true}
		if f.NginxFailed {
			c.Breach, c.Value = r.Severity, 1
			c.Summary = "The newest nginx configuration failed to apply: " + f.NginxReason
		}
		return c
	case KindNginxDrift:
		c := Check{Known: true}
		if len(f.DriftFiles) > 0 {
			files := append([]string(nil), f.DriftFiles...)
			sort.Strings(files)
			if len(files) > 10 {
				files = append(files[:10], fmt.Sprintf("and %d more", len(f.DriftFiles)-10))
			}
			c.Breach, c.Value = r.Severity, float64(len(f.DriftFiles))
			c.Summary = "nginx files changed behind the agent's back: " + strings.Join(files, ", ")
		}
		return c
	}
	return Check{}
}

// Hold is how long a condition must hold before a pending incident fires.
func (r Rule) Hold() time.Duration {
	if r.Kind == KindMetric {
		return r.Window
	}
	return 0
}

// State of an incident.
type State string

// Incident states.
const (
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Open is the part of an open incident that Step needs.
type Open struct {
	State     State
	StartedAt time.Time
	Severity  Severity
}

// Action is what Step decides.
type Action int

// Actions.
const (
	ActNone     Action = iota
	ActOpen            // create a pending incident
	ActFire            // create or move to firing (notify)
	ActEscalate        // firing, severity changed (critical notifies)
	ActUpdate          // keep the state, refresh value and summary
	ActResolve         // firing → resolved (notify recovery)
	ActCancel          // pending cleared before firing (no notification)
)

// Step is the incident state machine: given the open incident (nil when
// none), the check and the rule's hold time, it returns what to do.
func Step(cur *Open, c Check, hold time.Duration, now time.Time) Action {
	if !c.Known {
		return ActNone
	}
	if cur == nil {
		switch {
		case c.Breach != SeverityNone && hold == 0:
			return ActFire
		case c.Breach != SeverityNone || c.Starting:
			return ActOpen
		}
		return ActNone
	}
	switch cur.State {
	case StatePending:
		switch {
		case c.Breach != SeverityNone && now.Sub(cur.StartedAt) >= hold:
			return ActFire
		case c.Breach != SeverityNone || c.Starting:
			return ActUpdate
		}
		return ActCancel
	case StateFiring:
		switch {
		case c.Breach == SeverityNone:
			return ActResolve
		case c.Breach != cur.Severity:
			return ActEscalate
		}
		return ActUpdate
	}
	return ActNone
}

// DomainFacts is what certificate and DNS rules judge about one domain.
type DomainFacts struct {
	ID   int
	Name string // lowercase punycode, as stored
	// Maintenance is on while the domain answers 503 on purpose.
	Maintenance bool
	// ServerIDs are the servers that serve the domain.
	ServerIDs []int
	// Cert is the domain's active certificate or, lacking one, its newest
	// expired one; nil when it has neither.
	Cert *CertFacts
	// Policy is the state of automatic issuance; nil when the domain has no
	// certificate policy (no attempt was ever made).
	Policy *PolicyFacts
	// DNS holds the address results of the newest DNS check run, taken at
	// DNSCheckedAt; empty when the domain was never checked.
	DNS          []DNSResult
	DNSCheckedAt time.Time
	// Health holds the newest health probe of each serving server; empty
	// when the domain has no enabled health check.
	Health []HealthResult
	// Served holds what the certificate watch last found each server
	// presenting; empty before the first watch.
	Served []ServedResult
	// Uptime counts health probes over each window an uptime rule asks
	// for, all serving servers together; absent without probes.
	Uptime map[time.Duration]UptimeCount
}

// MonitorFacts is what a monitor rule judges about one monitor.
type MonitorFacts struct {
	Name    string
	Enabled bool
	// Checked is false before the first check.
	Checked      bool
	OK           bool
	Status       int
	Message      string
	FailingSince time.Time // start of the current run of failures; zero when OK
	// CertNotAfter is when its https target's certificate expires; zero
	// when no check reached a certificate.
	CertNotAfter time.Time
}

// CheckMonitor judges a monitor rule for one monitor: it breaches once the
// monitor has failed for the window; its value is how long, in seconds.
func CheckMonitor(r Rule, m MonitorFacts, now time.Time) Check {
	if r.Kind == KindMonitorCert {
		return checkMonitorCert(r, m, now)
	}
	if r.Kind != KindMonitorDown || !m.Enabled || !m.Checked {
		return Check{}
	}
	c := Check{Known: true}
	if m.OK {
		c.Summary = m.Name + " answers"
		return c
	}
	down := now.Sub(m.FailingSince)
	c.Value = math.Max(0, down.Seconds())
	what := m.Message
	if what == "" {
		what = fmt.Sprintf("status %d", m.Status)
	}
	c.Summary = fmt.Sprintf("%s has failed since %s (%s)", m.Name, m.FailingSince.UTC().Format(time.RFC3339), oneLine(what, 200))
	if down >= r.Window {
		c.Breach = r.Severity
	}
	return c
}

// UptimeCount is how many health probes of a domain answered up and down.
type UptimeCount struct{ Up, Down int }

// ServedResult is the newest certificate watch of a domain on one server.
type ServedResult struct {
	ServerID int
	Server   string // its name
	// Probed is false when the controller did not dial the server (Message says why).
	Probed     bool
	Matches    bool
	Message    string
	ObservedAt time.Time
}

// HealthResult is a server's newest health probe of a domain.
type HealthResult struct {
	ServerID     int
	Server       string // its name
	OK           bool
	Status       int
	Message      string
	At           time.Time
	FailingSince time.Time // when its run of failures began; zero when OK
}

// CertFacts is the part of a certificate expiry rules look at.
type CertFacts struct {
	NotAfter time.Time
	Serial   string
}

// PolicyFacts is the outcome of a domain's latest automatic issuance attempts.
type PolicyFacts struct {
	// Automatic is false for domains that take uploaded certificates.
	Automatic   bool
	Failures    int // consecutive failed attempts; 0 after a success
	LastError   string
	LastAttempt time.Time // zero: never
	NextAttempt time.Time // zero: none scheduled
}

// DNSResult is one name's address check.
type DNSResult struct {
	Name    string
	Status  string // as the certificate service stores it: ok, points_elsewhere, not_resolving, error
	Message string
}

// DNS check statuses, as the certificate service stores them.
const (
	dnsOK              = "ok"
	dnsPointsElsewhere = "points_elsewhere"
	dnsNotResolving    = "not_resolving"
)

// CheckDomain judges a certificate or DNS rule for one domain.
func CheckDomain(r Rule, d DomainFacts, now time.Time) Check {
	switch r.Kind {
	case KindCertExpiring:
		return checkExpiry(r, d, now)
	case KindCertRenewal:
		return checkRenewal(r, d)
	case KindDNSMismatch:
		return checkDNS(r, d)
	case KindDomainDown:
		return checkDomainDown(r, d, now)
	case KindCertServed:
		return checkServed(r, d)
	case KindUptimeBelow:
		return checkUptime(r, d)
	}
	return Check{}
}

// checkUptime breaches when the domain's uptime over the window is below a
// level; its value is the uptime in percent. Without probes nothing is known.
func checkUptime(r Rule, d DomainFacts) Check {
	u := d.Uptime[r.Window]
	n := u.Up + u.Down
	if n == 0 {
		return Check{}
	}
	pct := float64(u.Up) * 100 / float64(n)
	c := Check{Known: true, Value: pct}
	switch {
	case r.Critical != nil && pct < *r.Critical:
		c.Breach = SeverityCritical
	case r.Warning != nil && pct < *r.Warning:
		c.Breach = SeverityWarning
	}
	// Floor, so a failure never rounds up to a level it missed.
	shown := strconv.FormatFloat(math.Floor(pct*100)/100, 'f', 2, 64) + " %"
	c.Summary = fmt.Sprintf("%s answered %s of its health probes over the last %s (%d of %d failed)", d.Name, shown, HumanDuration(r.Window), u.Down, n)
	return c
}

// checkServed breaches when a serving server presented another certificate
// (or none) at the newest watch; its value is how many servers do. Servers
// the controller did not dial are not judged: the watch cannot tell.
func checkServed(r Rule, d DomainFacts) Check {
	if d.Cert == nil || len(d.Served) == 0 {
		return Check{}
	}
	var wrong []string
	judged := 0
	for _, s := range d.Served {
		if !s.Probed || !slices.Contains(d.ServerIDs, s.ServerID) {
			continue
		}
		judged++
		if !s.Matches {
			what := s.Message
			if what == "" {
				what = "another certificate"
			}
			wrong = append(wrong, fmt.Sprintf("%s (%s)", s.Server, oneLine(what, 200)))
		}
	}
	if judged == 0 {
		return Check{}
	}
	c := Check{Known: true}
	if len(wrong) == 0 {
		c.Summary = fmt.Sprintf("Every serving server presents the active certificate of %s", d.Name)
		return c
	}
	c.Breach, c.Value = r.Severity, float64(len(wrong))
	c.Summary = fmt.Sprintf("%d of %d servers present another certificate than the active one of %s: %s", len(wrong), judged, d.Name, strings.Join(wrong, "; "))
	return c
}

// checkDomainDown breaches when a serving server's health probes have
// failed for at least the window; its value is how many servers are down.
func checkDomainDown(r Rule, d DomainFacts, now time.Time) Check {
	if len(d.Health) == 0 {
		return Check{}
	}
	c := Check{Known: true}
	if d.Maintenance {
		c.Summary = d.Name + " is in maintenance mode: its servers answer 503 on purpose"
		return c
	}
	var down []string
	for _, h := range d.Health {
		if h.OK || !slices.Contains(d.ServerIDs, h.ServerID) || now.Sub(h.FailingSince) < r.Window {
			continue
		}
		what := h.Message
		if what == "" {
			what = fmt.Sprintf("status %d", h.Status)
		}
		down = append(down, fmt.Sprintf("%s since %s (%s)", h.Server, h.FailingSince.UTC().Format(time.RFC3339), oneLine(what, 200)))
	}
	if len(down) == 0 {
		c.Summary = d.Name + " answers its health check on every serving server"
		return c
	}
	c.Breach, c.Value = r.Severity, float64(len(down))
	c.Summary = fmt.Sprintf("%s fails its health check on %d of %d servers: %s", d.Name, len(down), len(d.Health), strings.Join(down, "; "))
	return c
}

func checkExpiry(r Rule, d DomainFacts, now time.Time) Check {
	if d.Cert == nil {
		// No certificate is not "expiring": a failed issuance is what the
		// renewal rule reports.
		return Check{}
	}
	left := d.Cert.NotAfter.Sub(now)
	// Whole days, so the incident is rewritten at most once a day.
	days := math.Floor(left.Hours() / 24)
	c := Check{Known: true, Value: days}
	when := d.Cert.NotAfter.UTC().Format(time.RFC3339)
	switch {
	case left <= 0:
		c.Summary = fmt.Sprintf("The certificate of %s expired on %s", d.Name, when)
	case days < 1:
		c.Summary = fmt.Sprintf("The certificate of %s expires on %s, in less than a day", d.Name, when)
	default:
		c.Summary = fmt.Sprintf("The certificate of %s expires on %s, in %s", d.Name, when, plural(int(days), "day"))
	}
	if left <= time.Duration(r.Days)*24*time.Hour {
		c.Breach = r.Severity
	}
	return c
}

// checkMonitorCert judges when an enabled monitor's https certificate
// expires, in whole days like a domain's.
func checkMonitorCert(r Rule, m MonitorFacts, now time.Time) Check {
	if !m.Enabled || m.CertNotAfter.IsZero() {
		return Check{}
	}
	left := m.CertNotAfter.Sub(now)
	days := math.Floor(left.Hours() / 24)
	c := Check{Known: true, Value: days}
	when := m.CertNotAfter.UTC().Format(time.RFC3339)
	switch {
	case left <= 0:
		c.Summary = fmt.Sprintf("The certificate %s presents expired on %s", m.Name, when)
	case days < 1:
		c.Summary = fmt.Sprintf("The certificate %s presents expires on %s, in less than a day", m.Name, when)
	default:
		c.Summary = fmt.Sprintf("The certificate %s presents expires on %s, in %s", m.Name, when, plural(int(days), "day"))
	}
	if left <= time.Duration(r.Days)*24*time.Hour {
		c.Breach = r.Severity
	}
	return c
}

func checkRenewal(r Rule, d DomainFacts) Check {
	c := Check{Known: true}
	p := d.Policy
	switch {
	case p == nil:
		c.Summary = "No certificate attempt on record for " + d.Name
	case !p.Automatic:
		c.Summary = d.Name + " takes an uploaded certificate; nothing is renewed automatically"
	case p.Failures > 0:
		what := "renewal"
		if d.Cert == nil {
			what = "issuance"
		}
		c.Breach, c.Value = r.Severity, float64(p.Failures)
		c.Summary = fmt.Sprintf("Certificate %s for %s failed", what, d.Name)
		if p.Failures > 1 {
			c.Summary += fmt.Sprintf(" %d times in a row", p.Failures)
		}
		if !p.LastAttempt.IsZero() {
			c.Summary += ", last at " + p.LastAttempt.UTC().Format(time.RFC3339)
		}
		c.Summary += ": " + oneLine(p.LastError, 300)
		if !p.NextAttempt.IsZero() {
			c.Summary += "; next attempt at " + p.NextAttempt.UTC().Format(time.RFC3339)
		}
	case p.LastAttempt.IsZero():
		c.Summary = "No failed certificate attempt for " + d.Name
	default:
		c.Summary = "The latest certificate attempt for " + d.Name + " succeeded at " + p.LastAttempt.UTC().Format(time.RFC3339)
	}
	return c
}

func checkDNS(r Rule, d DomainFacts) Check {
	if len(d.DNS) == 0 {
		return Check{}
	}
	var bad []string
	unknown := false
	for _, res := range d.DNS {
		switch res.Status {
		case dnsOK:
		case dnsPointsElsewhere, dnsNotResolving:
			bad = append(bad, oneLine(res.Message, 300))
		default:
			unknown = true
		}
	}
	at := d.DNSCheckedAt.UTC().Format(time.RFC3339)
	switch {
	case len(bad) > 0:
		sort.Strings(bad)
		return Check{Known: true, Breach: r.Severity, Value: float64(len(bad)),
			Summary: "DNS check of " + d.Name + " at " + at + ": " + strings.Join(bad, "; ")}
	case unknown:
		// A resolver failure says nothing about where the name points.
		return Check{}
	}
	return Check{Known: true, Summary: "DNS check of " + d.Name + " at " + at + ": every name points at the servers that serve it"}
}

// oneLine makes free text from outside (a CA's error, a resolver's message)
// fit one line of at most n runes: control characters and runs of white
// space become single spaces.
func oneLine(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return clip(b.String(), n)
}
