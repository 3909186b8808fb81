// Package alerts evaluates alert rules against what the controller knows about
// its servers, keeps incidents (pending → firing → resolved, one per rule and
// subject), applies acknowledgments and silences, and hands notifications to
// the notify channels.
//
// The rule model is one table with a Kind that selects which fields apply.
// Server kinds (metric thresholds, offline, nginx apply failed, nginx drift)
// are judged per server, with subjects "server:<id>". Domain kinds
// (certificate expiring within Days, certificate renewal failed, DNS no
// longer pointing at the nodes) are judged per domain, with subjects
// "domain:<punycode name>", for the domains served by a server in the rule's
// scope. The upstream kind is judged per server of an upstream, with
// subjects "upstream:<upstream name>/<host:port>", on the probes of the nodes
// in the rule's scope. The incident lifecycle, silences and notifications are
// shared.
//
// Evaluation never blocks ingest: samples arrive through Observe, which only
// does a non-blocking send, and rules are evaluated by a scheduler job.
package alerts

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is a rule type.
type Kind string

// Rule kinds.
const (
	KindMetric      Kind = "metric"       // a metric crosses a threshold, averaged over a window
	KindOffline     Kind = "offline"      // a server sent nothing for a while
	KindNginxFailed Kind = "nginx_failed" // the newest nginx revision failed to apply
	KindNginxDrift  Kind = "nginx_drift"  // nginx files changed behind the agent's back

	KindCertExpiring Kind = "cert_expiring"         // a domain's certificate expires within Days
	KindCertRenewal  Kind = "cert_renewal_failed"   // a domain's latest issuance or renewal attempt failed
	KindDNSMismatch  Kind = "dns_mismatch"          // a domain's newest DNS check says it does not point at its nodes
	KindDomainDown   Kind = "domain_down"           // a domain's health check has failed on a serving node for the window
	KindCertServed   Kind = "cert_served_mismatch"  // a serving node presents another certificate than the domain's active one
	KindUptimeBelow  Kind = "uptime_below"          // a domain's health-check uptime over the window is below a level
	KindMonitorDown  Kind = "monitor_down"          // a monitor has failed for the window
	KindMonitorCert  Kind = "monitor_cert_expiring" // a monitor's https or TLS certificate expires within Days
	KindUpstreamDown Kind = "upstream_down"         // a node's probes of an upstream server have failed for the window
)

// Kinds lists the implemented kinds in the order forms offer them.
var Kinds = []Kind{KindMetric, KindOffline, KindNginxFailed, KindNginxDrift, KindCertExpiring, KindCertRenewal, KindCertServed, KindDNSMismatch, KindDomainDown, KindUptimeBelow, KindMonitorDown, KindMonitorCert, KindUpstreamDown}

// kindWords holds each kind's label and one-line description for forms.
var kindWords = map[Kind][2]string{
	KindMetric:       {"Metric threshold", "A measured value such as CPU, memory or disk usage crosses a warning or critical level."},
	KindOffline:      {"Server offline", "A server has sent no report for longer than the window."},
	KindNginxFailed:  {"nginx apply failed", "The newest nginx configuration failed to apply on a server."},
	KindNginxDrift:   {"nginx files changed (drift)", "nginx files on a server were changed behind the agent's back."},
	KindCertExpiring: {"Certificate expiring", "A domain's active certificate expires within the given number of days."},
	KindCertRenewal:  {"Certificate renewal failed", "The latest attempt to issue or renew a domain's certificate failed."},
	KindDNSMismatch:  {"DNS not pointing at the servers", "The newest DNS check finds a domain not resolving to the servers that serve it."},
	KindDomainDown:   {"Domain down", "A domain's health check has failed on a server that serves it for longer than the window."},
	KindMonitorDown:  {"Monitor down", "A monitor (an HTTP or TCP check of any endpoint) has failed for longer than the window."},
	KindMonitorCert:  {"Monitor certificate expiring", "The certificate a monitor's https or TLS target presents expires within the given number of days."},
	KindUptimeBelow:  {"Uptime below target", "A domain's uptime (the share of health probes answered, all serving servers together) over the window falls below a warning or critical level."},
	KindUpstreamDown: {"Upstream server unreachable", "A server of an upstream has refused or timed out the connection probes of a node that proxies to it for longer than the window."},
	KindCertServed:   {"Wrong certificate served", "A server that serves a domain presents another certificate than the domain's active one, as the certificate watch last found it."},
}

// PerMonitor reports whether the kind is judged per monitor (subject
// "monitor:<name>"); servers and labels do not scope it.
func (k Kind) PerMonitor() bool { return k == KindMonitorDown || k == KindMonitorCert }

// PerUpstream reports whether the kind is judged per server of an upstream
// (subject "upstream:<name>/<host:port>"); servers and labels choose which
// nodes' probes count.
func (k Kind) PerUpstream() bool { return k == KindUpstreamDown }

// HasWindow reports whether the kind takes a Window: how long a condition
// must last, or the span uptime is measured over.
func (k Kind) HasWindow() bool {
	return k == KindMetric || k == KindOffline || k == KindDomainDown || k == KindUptimeBelow || k == KindMonitorDown || k == KindUpstreamDown
}

// HasDays reports whether the kind takes Days: a certificate expiry rule.
func (k Kind) HasDays() bool { return k == KindCertExpiring || k == KindMonitorCert }

// Label names the kind for people; unknown kinds are shown as their code.
func (k Kind) Label() string {
	if w, ok := kindWords[k]; ok {
		return w[0]
	}
	return string(k)
}

// Description says in one line when a rule of the kind fires; empty for
// unknown kinds.
func (k Kind) Description() string {
	return kindWords[k][1]
}

// PerDomain reports whether the kind is judged per domain rather than per server.
func (k Kind) PerDomain() bool {
	return k == KindCertExpiring || k == KindCertRenewal || k == KindDNSMismatch || k == KindDomainDown || k == KindCertServed || k == KindUptimeBelow
}

// DefaultDays is the warning time of a certificate expiry rule when none is given.
const DefaultDays = 14

// MaxDays bounds the warning time of a certificate expiry rule.
const MaxDays = 365

// Metric names a measured value.
type Metric string

// Metrics a threshold rule can watch.
const (
	MetricCPU    Metric = "cpu"    // % of all cores
	MetricMem    Metric = "mem"    // % of memory used
	MetricSwap   Metric = "swap"   // % of swap used
	MetricFS     Metric = "fs"     // % of one filesystem used (Mount)
	MetricLoad1  Metric = "load1"  // 1-minute load average
	MetricLoad5  Metric = "load5"  // 5-minute load average
	MetricLoad15 Metric = "load15" // 15-minute load average
	MetricNetRx  Metric = "net_rx" // Mbit/s received over all interfaces but lo
	MetricNetTx  Metric = "net_tx" // Mbit/s sent over all interfaces but lo
	// MetricNginxRPS and MetricNginxConns are nginx's requests per second
	// and open client connections, on servers whose agent reads them.
	MetricNginxRPS   Metric = "nginx_rps"
	MetricNginxConns Metric = "nginx_conns"
)

// MetricInfo describes a metric for forms and explanations.
type MetricInfo struct {
	Metric Metric
	Label  string
	Unit   string
}

// MetricInfos lists the metrics in the order forms offer them.
var MetricInfos = []MetricInfo{
	{MetricCPU, "CPU usage", "%"},
	{MetricMem, "memory usage", "%"},
	{MetricSwap, "swap usage", "%"},
	{MetricFS, "filesystem usage", "%"},
	{MetricLoad1, "1-minute load average", ""},
	{MetricLoad5, "5-minute load average", ""},
	{MetricLoad15, "15-minute load average", ""},
	{MetricNetRx, "network receive rate", " Mbit/s"},
	{MetricNetTx, "network send rate", " Mbit/s"},
	{MetricNginxRPS, "nginx request rate", " per second"},
	{MetricNginxConns, "nginx connection count", ""},
}

// metricList names the metrics a rule may watch, for messages.
func metricList() string {
	names := make([]string, len(MetricInfos))
	for i, mi := range MetricInfos {
		names[i] = string(mi.Metric)
	}
	return strings.Join(names, ", ")
}

func metricInfo(m Metric) (MetricInfo, bool) {
	for _, mi := range MetricInfos {
		if mi.Metric == m {
			return mi, true
		}
	}
	return MetricInfo{}, false
}

// Op compares a value with a threshold.
type Op string

// Comparisons.
const (
	OpAbove Op = ">"
	OpBelow Op = "<"
)

// Breaches reports whether v is past threshold t.
func (o Op) Breaches(v, t float64) bool {
	if o == OpBelow {
		return v < t
	}
	return v > t
}

// Severity of an incident.
type Severity string

// Severities; None means no breach.
const (
	SeverityNone     Severity = ""
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rule is an alert rule as the engine uses it.
type Rule struct {
	ID       int
	Name     string
	Kind     Kind
	Enabled  bool
	Metric   Metric
	Mount    string
	Op       Op
	Warning  *float64
	Critical *float64
	// Severity of kinds without levels.
	Severity Severity
	// Window: the averaging window of metric rules; how long a server must
	// be silent for offline rules.
	Window time.Duration
	// Days: how long before expiry a certificate expiry rule fires.
	Days int
	// Scope: all servers when both are empty.
	ServerIDs []int
	Labels    []string
	// Channels notified; all enabled channels when empty.
	ChannelIDs []int
	// Repeat re-notifies a still-firing, unacknowledged incident; 0 never.
	Repeat time.Duration
}

// Limits on rule values.
const (
	// MaxUptimeWindow is the longest span an uptime rule looks back over;
	// uptime counts are kept longer (90 days).
	MaxUptimeWindow = 30 * 24 * time.Hour
	MaxWindow       = 24 * time.Hour
	MinRepeat       = 5 * time.Second
	MaxRepeat       = 7 * 24 * time.Hour
	maxScope        = 200
)

var (
	ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)
	labelRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/=-]{0,62}$`)
	mountRE    = regexp.MustCompile(`^/[A-Za-z0-9._/@+-]{0,254}$`)
)

// ValidLabel reports whether l can be a server label, which rules select
// servers by: 1-63 letters, digits and . _ : / = -, starting with a letter
// or digit.
func ValidLabel(l string) bool { return labelRE.MatchString(l) }

// FieldErrors maps form fields to messages a person can act on.
type FieldErrors map[string]string

func (f FieldErrors) Error() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + f[k]
	}
	return strings.Join(parts, "; ")
}

// Validate checks a rule by allowlist; the error is FieldErrors.
func (r Rule) Validate() error {
	errs := FieldErrors{}
	if !ruleNameRE.MatchString(r.Name) {
		errs["name"] = "must be 1-64 characters of letters, digits, space and . _ - starting with a letter or digit"
	}
	if !slices.Contains(Kinds, r.Kind) {
		errs["kind"] = "must be one of " + kindList()
	}
	switch r.Kind {
	case KindMetric:
		if _, ok := metricInfo(r.Metric); !ok {
			errs["metric"] = "must be one of " + metricList()
		}
		if r.Metric == MetricFS {
			if !mountRE.MatchString(r.Mount) || strings.Contains(r.Mount, "//") || strings.Contains(r.Mount, "/../") || strings.HasSuffix(r.Mount, "/..") {
				errs["mount"] = "must be an absolute mount point such as / or /var/lib"
			}
		} else if r.Mount != "" {
			errs["mount"] = "applies only to the filesystem metric; leave it empty"
		}
		if r.Op != OpAbove && r.Op != OpBelow {
			errs["op"] = "must be > (above) or < (below)"
		}
		if r.Warning == nil && r.Critical == nil {
			errs["critical"] = "set a warning level, a critical level, or both"
		}
		for name, p := range map[string]*float64{"warning": r.Warning, "critical": r.Critical} {
			if p == nil {
				continue
			}
			if math.IsNaN(*p) || math.IsInf(*p, 0) || *p < 0 || *p > 1e9 {
				errs[name] = "must be a number between 0 and 1000000000"
			} else if isPercent(r.Metric) && *p > 100 {
				errs[name] = "is a percentage: at most 100"
			}
		}
		if r.Warning != nil && r.Critical != nil && errs["warning"] == "" && errs["critical"] == "" {
			if (r.Op == OpAbove && *r.Warning > *r.Critical) || (r.Op == OpBelow && *r.Warning < *r.Critical) {
				errs["warning"] = "must be reached before the critical level (lower for >, higher for <)"
			}
		}
		if r.Window < 0 || r.Window > MaxWindow {
			errs["window"] = "must be between 0 (latest sample only) and 24h"
		}
	case KindOffline:
		if r.Window < 10*time.Second || r.Window > MaxWindow {
			errs["window"] = "must be between 10s and 24h"
		}
	case KindUptimeBelow:
		if r.Metric != "" || r.Mount != "" || (r.Op != "" && r.Op != OpBelow) {
			errs["metric"] = "metric, mount and comparison apply only to metric rules"
		}
		if r.Warning == nil && r.Critical == nil {
			errs["critical"] = "set a warning level, a critical level, or both"
		}
		for name, p := range map[string]*float64{"warning": r.Warning, "critical": r.Critical} {
			if p != nil && (math.IsNaN(*p) || *p < 0 || *p > 100) {
				errs[name] = "is a percentage between 0 and 100"
			}
		}
		if r.Warning != nil && r.Critical != nil && errs["warning"] == "" && errs["critical"] == "" && *r.Warning < *r.Critical {
			errs["warning"] = "must be reached before the critical level: the higher percentage"
		}
		if r.Window < time.Hour || r.Window > MaxUptimeWindow {
			errs["window"] = "must be between 1h and 720h (30 days)"
		}
	}
	if r.Kind != KindMetric && r.Kind != KindUptimeBelow {
		if r.Metric != "" || r.Mount != "" || r.Op != "" || r.Warning != nil || r.Critical != nil {
			errs["metric"] = "metric, mount, comparison and levels apply only to metric rules"
		}
		if r.Severity != SeverityWarning && r.Severity != SeverityCritical {
			errs["severity"] = "must be warning or critical"
		}
	}
	if r.Kind == KindNginxFailed || r.Kind == KindNginxDrift {
		if r.Window != 0 {
			errs["window"] = "does not apply to nginx rules; leave it empty"
		}
	}
	if r.Kind == KindDomainDown || r.Kind == KindMonitorDown || r.Kind == KindUpstreamDown {
		if r.Window < 0 || r.Window > MaxWindow {
			errs["window"] = "must be between 0 (the first failed probe) and 24h"
		}
	} else if (r.Kind.PerDomain() && r.Kind != KindUptimeBelow || r.Kind == KindMonitorCert) && r.Window != 0 {
		errs["window"] = "does not apply to certificate and DNS rules; leave it empty"
	}
	if r.Kind.HasDays() {
		if r.Days < 1 || r.Days > MaxDays {
			errs["days"] = fmt.Sprintf("must be a whole number of days between 1 and %d", MaxDays)
		}
	} else if r.Days != 0 {
		errs["days"] = "applies only to certificate expiry rules; leave it empty"
	}
	if r.Kind.PerMonitor() && (len(r.ServerIDs) > 0 || len(r.Labels) > 0) {
		errs["servers"] = "servers and labels do not apply to monitor rules: they cover every monitor"
	}
	if len(r.ServerIDs) > maxScope {
		errs["servers"] = fmt.Sprintf("at most %d servers", maxScope)
	}
	for _, id := range r.ServerIDs {
		if id <= 0 {
			errs["servers"] = "must be server ids"
		}
	}
	if len(r.Labels) > maxScope {
		errs["labels"] = fmt.Sprintf("at most %d labels", maxScope)
	}
	for _, l := range r.Labels {
		if !labelRE.MatchString(l) {
			errs["labels"] = "each label must be 1-63 characters of letters, digits and . _ : / = -"
			break
		}
	}
	for _, id := range r.ChannelIDs {
		if id <= 0 {
			errs["channels"] = "must be channel ids"
		}
	}
	if r.Repeat != 0 && (r.Repeat < MinRepeat || r.Repeat > MaxRepeat) {
		errs["repeat"] = "must be 0 (never) or between 5s and 168h"
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func isPercent(m Metric) bool {
	return m == MetricCPU || m == MetricMem || m == MetricSwap || m == MetricFS
}

// ServerRef is what scoping needs to know about a server.
type ServerRef struct {
	ID     int
	Name   string
	Labels []string
}

// Applies reports whether the rule covers the server.
func (r Rule) Applies(s ServerRef) bool {
	if len(r.ServerIDs) == 0 && len(r.Labels) == 0 {
		return true
	}
	if slices.Contains(r.ServerIDs, s.ID) {
		return true
	}
	for _, l := range r.Labels {
		if slices.Contains(s.Labels, l) {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// DomainSubject names what an incident of a per-domain rule is about: the
// domain's stored (lowercase punycode) name, so there is one incident per
// rule and domain.
func DomainSubject(name string) string { return domainPrefix + name }

// MonitorSubject is the incident subject of a monitor rule for a monitor.
func MonitorSubject(name string) string { return monitorPrefix + name }

const monitorPrefix = "monitor:"

// SubjectMonitor returns the monitor an incident subject names, if it names one.
func SubjectMonitor(subject string) (string, bool) {
	name, ok := strings.CutPrefix(subject, monitorPrefix)
	return name, ok && name != ""
}

const domainPrefix = "domain:"

// SubjectDomain returns the domain an incident subject names, if it names one.
func SubjectDomain(subject string) (string, bool) {
	name, ok := strings.CutPrefix(subject, domainPrefix)
	return name, ok && name != ""
}

// Subject names what an incident of this rule is about on a server.
func (r Rule) Subject(serverID int) string {
	s := "server:" + strconv.Itoa(serverID)
	if r.Kind == KindMetric && r.Metric == MetricFS {
		s += "/fs:" + r.Mount
	}
	return s
}

// FormatValue renders a value of the rule's metric with its unit.
func (r Rule) FormatValue(v float64) string {
	mi, _ := metricInfo(r.Metric)
	switch {
	case r.Metric == MetricLoad1 || r.Metric == MetricLoad5 || r.Metric == MetricLoad15:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case math.Abs(v-math.Round(v)) < 0.05:
		return strconv.FormatFloat(v, 'f', 0, 64) + mi.Unit
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + mi.Unit
	}
}

// HumanDuration writes d the way the explanation reads it.
func HumanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 seconds"
	case d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	default:
		return plural(int(d.Round(time.Second)/time.Second), "second")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// Explain describes the rule in words, for the rule form and list.
func (r Rule) Explain(serverNames map[int]string) string {
	var b strings.Builder
	switch r.Kind {
	case KindMetric:
		mi, _ := metricInfo(r.Metric)
		what := mi.Label
		if r.Metric == MetricFS {
			what = "usage of the filesystem mounted at " + r.Mount
		}
		dir := "above"
		if r.Op == OpBelow {
			dir = "below"
		}
		if r.Window > 0 {
			fmt.Fprintf(&b, "When the %s averaged over %s is %s ", what, HumanDuration(r.Window), dir)
		} else {
			fmt.Fprintf(&b, "When the latest %s is %s ", what, dir)
		}
		var levels []string
		if r.Warning != nil {
			levels = append(levels, r.FormatValue(*r.Warning)+" (warning)")
		}
		if r.Critical != nil {
			levels = append(levels, r.FormatValue(*r.Critical)+" (critical)")
		}
		b.WriteString(strings.Join(levels, " or "))
		if r.Window > 0 {
			fmt.Fprintf(&b, ", an incident opens as pending at the first sample past the level and fires once it has held for %s", HumanDuration(r.Window))
		} else {
			b.WriteString(", an incident fires")
		}
	case KindOffline:
		fmt.Fprintf(&b, "When a server has sent nothing for %s, a %s incident fires", HumanDuration(r.Window), r.Severity)
	case KindNginxFailed:
		fmt.Fprintf(&b, "When the newest nginx configuration fails to apply on a server, a %s incident fires", r.Severity)
	case KindNginxDrift:
		fmt.Fprintf(&b, "When nginx files on a server are changed behind the agent's back, a %s incident fires", r.Severity)
	case KindCertExpiring:
		fmt.Fprintf(&b, "When the active certificate of a domain expires within %s, a %s incident fires", plural(r.Days, "day"), r.Severity)
	case KindCertRenewal:
		fmt.Fprintf(&b, "When the latest attempt to issue or renew a domain's certificate failed, a %s incident fires", r.Severity)
	case KindDNSMismatch:
		fmt.Fprintf(&b, "When the newest DNS check of a domain finds it does not resolve to the servers that serve it, a %s incident fires", r.Severity)
	case KindMonitorCert:
		fmt.Fprintf(&b, "When the certificate a monitor's https or TLS target presents expires within %s, a %s incident fires", plural(r.Days, "day"), r.Severity)
	case KindMonitorDown:
		if r.Window > 0 {
			fmt.Fprintf(&b, "When a monitor has failed for %s, a %s incident fires", HumanDuration(r.Window), r.Severity)
		} else {
			fmt.Fprintf(&b, "When a monitor fails, a %s incident fires", r.Severity)
		}
	case KindUptimeBelow:
		var levels []string
		if r.Warning != nil {
			levels = append(levels, formatPercent(*r.Warning)+" (warning)")
		}
		if r.Critical != nil {
			levels = append(levels, formatPercent(*r.Critical)+" (critical)")
		}
		fmt.Fprintf(&b, "When a domain's uptime over the last %s falls below %s, an incident fires", HumanDuration(r.Window), strings.Join(levels, " or "))
	case KindCertServed:
		fmt.Fprintf(&b, "When a server that serves a domain presents another certificate than the domain's active one, a %s incident fires", r.Severity)
	case KindUpstreamDown:
		if r.Window > 0 {
			fmt.Fprintf(&b, "When a server of an upstream has refused or timed out a node's connection probes for %s, a %s incident fires", HumanDuration(r.Window), r.Severity)
		} else {
			fmt.Fprintf(&b, "When a server of an upstream refuses or times out a node's connection probe, a %s incident fires", r.Severity)
		}
	case KindDomainDown:
		if r.Window > 0 {
			fmt.Fprintf(&b, "When a domain's health check has failed on a server that serves it for %s, a %s incident fires", HumanDuration(r.Window), r.Severity)
		} else {
			fmt.Fprintf(&b, "When a domain's health check fails on a server that serves it, a %s incident fires", r.Severity)
		}
	default:
		return "Unknown rule type."
	}
	switch {
	case r.Kind.PerMonitor():
		b.WriteString(" for every monitor")
	case r.Kind.PerDomain():
		b.WriteString(" for each domain served by ")
		b.WriteString(r.scopeWords(serverNames))
	case r.Kind.PerUpstream():
		b.WriteString(" for each upstream server, as probed by ")
		b.WriteString(r.scopeWords(serverNames))
	default:
		b.WriteString(" for ")
		b.WriteString(r.scopeWords(serverNames))
	}
	b.WriteString(". It resolves by itself when the condition clears")
	switch r.Kind {
	case KindCertExpiring:
		b.WriteString(" (a renewed certificate is on record)")
	case KindCertRenewal:
		b.WriteString(" (an attempt succeeds)")
	case KindDNSMismatch:
		b.WriteString(" (a later check finds the domain pointing at its servers)")
	case KindDomainDown:
		b.WriteString(" (every serving server answers the health check again)")
	case KindCertServed:
		b.WriteString(" (the next watch finds every serving server presenting it)")
	case KindUptimeBelow:
		b.WriteString(" (the uptime is back above the level)")
	case KindMonitorDown:
		b.WriteString(" (the monitor answers again)")
	case KindUpstreamDown:
		b.WriteString(" (every node in scope reaches the upstream server again, none has probed it for a few minutes, or it is no longer a server of the upstream)")
	case KindMonitorCert:
		b.WriteString(" (a check finds a renewed certificate)")
	}
	if r.Repeat > 0 {
		fmt.Fprintf(&b, "; while it fires unacknowledged, a reminder is sent every %s", HumanDuration(r.Repeat))
	}
	b.WriteString(".")
	if !r.Enabled {
		b.WriteString(" The rule is disabled.")
	}
	return b.String()
}

func (r Rule) scopeWords(names map[int]string) string {
	if len(r.ServerIDs) == 0 && len(r.Labels) == 0 {
		if r.Kind.PerDomain() || r.Kind.PerUpstream() {
			return "any server"
		}
		return "every server"
	}
	var parts []string
	if len(r.ServerIDs) > 0 {
		var ns []string
		for _, id := range r.ServerIDs {
			if n, ok := names[id]; ok {
				ns = append(ns, n)
			} else {
				ns = append(ns, "#"+strconv.Itoa(id))
			}
		}
		parts = append(parts, "the servers "+strings.Join(ns, ", "))
	}
	if len(r.Labels) > 0 {
		parts = append(parts, "servers labelled "+strings.Join(r.Labels, ", "))
	}
	if r.Kind.PerDomain() || r.Kind.PerUpstream() {
		return strings.Join(parts, " or ")
	}
	return strings.Join(parts, " and ")
}

// ErrNotFound is returned for unknown rules, incidents, silences and channels.
var ErrNotFound = errors.New("not found")

// formatPercent writes a percentage level as people read it: 99.9 %.
func formatPercent(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64) + " %"
}
