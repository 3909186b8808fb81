package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/alertrule"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/notificationchannel"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/silence"
)

// Notifier delivers a notification to channels without blocking.
type Notifier interface {
	// Notify queues n for the channels with the given ids (all enabled
	// channels when ids is empty).
	Notify(n notify.Notification, channelIDs []int)
}

// Logger is where an evaluation run writes what it did (a scheduler.Log).
type Logger interface {
	Printf(format string, args ...any)
}

// Options configure an Engine.
type Options struct {
	Audit    *audit.Recorder
	Events   *events.Broker // live updates on topic "alerts"; optional
	Notifier Notifier
	Now      func() time.Time
	// ObserveQueue bounds observations waiting to be buffered (default 4096).
	ObserveQueue int
	// UpstreamProbes tells what the nodes found dialling upstream servers,
	// for upstream rules; nil: nothing is known, and every upstream server
	// counts as probed by no node.
	UpstreamProbes UpstreamProbeSource
}

// Engine evaluates rules and keeps incidents.
type Engine struct {
	db   *store.DB
	log  hclog.Logger
	opts Options

	obs     chan Observation
	dropped atomic.Uint64

	mu      sync.Mutex
	buffers map[int]*serverBuf
	keep    time.Duration // longest window of the rules seen at the last evaluation
	// watch holds the values metric rules read ("cpu", "fs:/var"), as of the
	// last evaluation; nil before the first, when every value is kept.
	// Observations carry a dozen values, and keeping all of them for every
	// server over the longest window would cost hundreds of megabytes at
	// scale for rules nobody wrote.
	watch map[string]bool

	evalMu sync.Mutex // one evaluation, ack or silence decision at a time
}

// New returns an engine; call Run to start buffering observations.
func New(db *store.DB, log hclog.Logger, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ObserveQueue <= 0 {
		opts.ObserveQueue = 4096
	}
	return &Engine{db: db, log: log.Named("alerts"), opts: opts, obs: make(chan Observation, opts.ObserveQueue),
		buffers: map[int]*serverBuf{}, keep: 10 * time.Minute}
}

// Observe hands a sample to the engine. It never blocks: when the engine
// falls behind, the observation is dropped and counted.
func (e *Engine) Observe(o Observation) {
	select {
	case e.obs <- o:
	default:
		if n := e.dropped.Add(1); n%1000 == 1 {
			e.log.Warn("alert engine is behind; observations dropped", "dropped_total", n)
		}
	}
}

// serverBuf is what the engine keeps of one server's observations: the time
// of the newest, and the watched values over the longest window.
type serverBuf struct {
	last   time.Time
	series map[string][]point // oldest first
}

// point is one value of one observation.
type point struct {
	at int64 // Unix nanoseconds
	v  float64
}

// setWatch makes the buffers keep what the enabled metric rules read, over
// their longest window.
func (e *Engine) setWatch(rules []Rule) {
	keep := time.Duration(0)
	watch := map[string]bool{}
	for _, r := range rules {
		if r.Enabled && r.Kind == KindMetric {
			keep = max(keep, r.Window)
			watch[r.valueKey()] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keep = max(keep, time.Minute)
	e.watch = watch
	for _, b := range e.buffers {
		for k := range b.series {
			if !watch[k] {
				delete(b.series, k)
			}
		}
	}
}

// Run buffers observations until ctx ends. It reads the rules first, so it
// keeps only what they need from the start.
func (e *Engine) Run(ctx context.Context) {
	if rules, err := e.Rules(ctx); err == nil {
		e.setWatch(rules)
	} else if ctx.Err() == nil {
		e.log.Warn("read alert rules; keeping every observed value until the first evaluation", "error", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-e.obs:
			e.buffer(o)
		}
	}
}

// buffer adds an observation's watched values and trims what no rule needs.
func (e *Engine) buffer(o Observation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.buffers[o.ServerID]
	if b == nil {
		b = &serverBuf{series: map[string][]point{}}
		e.buffers[o.ServerID] = b
	}
	if o.At.After(b.last) {
		b.last = o.At
	}
	at := o.At.UnixNano()
	for k, v := range o.Values {
		if e.watch != nil && !e.watch[k] {
			continue
		}
		pts := append(b.series[k], point{at: at, v: v})
		// Samples normally arrive in order; keep the series sorted if not.
		if n := len(pts); n > 1 && pts[n-1].at < pts[n-2].at {
			sort.SliceStable(pts, func(i, j int) bool { return pts[i].at < pts[j].at })
		}
		b.series[k] = pts
	}
	limit := o.At.Add(-e.keep - time.Minute).UnixNano()
	for k, pts := range b.series {
		cut := 0
		for cut < len(pts) && pts[cut].at < limit {
			cut++
		}
		switch {
		case cut == len(pts):
			delete(b.series, k)
		case cut > 0:
			b.series[k] = append(pts[:0:0], pts[cut:]...)
		}
	}
}

// Forget drops buffered observations of a deleted server.
func (e *Engine) Forget(serverID int) {
	e.mu.Lock()
	delete(e.buffers, serverID)
	e.mu.Unlock()
}

// forgetOthers drops the buffers of servers that no longer exist.
func (e *Engine) forgetOthers(facts []ServerFacts) {
	known := make(map[int]bool, len(facts))
	for _, f := range facts {
		known[f.ID] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.buffers {
		if !known[id] {
			delete(e.buffers, id)
		}
	}
}

// snapshot copies a server's buffered values of key, oldest first.
func (e *Engine) snapshot(serverID int, key string) []point {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.buffers[serverID]; b != nil {
		return append([]point(nil), b.series[key]...)
	}
	return nil
}

// lastObserved is the time of the newest observation of a server.
func (e *Engine) lastObserved(serverID int) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.buffers[serverID]; b != nil {
		return b.last
	}
	return time.Time{}
}

// Evaluate runs every enabled rule against every server in scope, moves
// incidents through their states and sends the notifications that follow.
// It is the body of the alert evaluation job.
func (e *Engine) Evaluate(ctx context.Context, lg Logger) error {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := e.opts.Now()
	rules, err := e.Rules(ctx)
	if err != nil {
		return err
	}
	e.setWatch(rules)
	domainRules, monitorRules, upstreamRules := false, false, false
	var uptimeWindows []time.Duration
	for _, r := range rules {
		domainRules = domainRules || (r.Enabled && r.Kind.PerDomain())
		monitorRules = monitorRules || (r.Enabled && r.Kind.PerMonitor())
		upstreamRules = upstreamRules || (r.Enabled && r.Kind.PerUpstream())
		if r.Enabled && r.Kind == KindUptimeBelow && !slices.Contains(uptimeWindows, r.Window) {
			uptimeWindows = append(uptimeWindows, r.Window)
		}
	}

	facts, err := e.serverFacts(ctx)
	if err != nil {
		return err
	}
	e.forgetOthers(facts)
	open, err := e.db.Client.Incident.Query().Where(incident.StateIn(incident.StatePending, incident.StateFiring)).All(ctx)
	if err != nil {
		return fmt.Errorf("read open incidents: %w", err)
	}
	openBy := map[string]*ent.Incident{}
	domainIncidents, monitorIncidents, upstreamIncidents := false, false, false
	for _, inc := range open {
		openBy[openKey(inc.RuleID, inc.Subject)] = inc
		_, isDomain := SubjectDomain(inc.Subject)
		domainIncidents = domainIncidents || isDomain
		_, isMonitor := SubjectMonitor(inc.Subject)
		monitorIncidents = monitorIncidents || isMonitor
		_, _, isUpstream := SubjectUpstream(inc.Subject)
		upstreamIncidents = upstreamIncidents || isUpstream
	}
	seen := map[string]bool{}
	var errs []error
	var domains []DomainFacts
	if domainRules || domainIncidents {
		if domains, err = e.domainFacts(ctx, facts, uptimeWindows, now); err != nil {
			// Without the facts nothing is known: keep every domain incident
			// as it is rather than resolving it as out of scope.
			errs = append(errs, err)
			domainRules = false
			for key, inc := range openBy {
				if _, ok := SubjectDomain(inc.Subject); ok {
					seen[key] = true
				}
			}
		}
	}
	var monitors []MonitorFacts
	if monitorRules || monitorIncidents {
		if monitors, err = e.monitorFacts(ctx); err != nil {
			// As with domains: keep monitor incidents as they are.
			errs = append(errs, err)
			monitorRules = false
			for key, inc := range openBy {
				if _, ok := SubjectMonitor(inc.Subject); ok {
					seen[key] = true
				}
			}
		}
	}
	var upstreams []UpstreamFacts
	if upstreamRules || upstreamIncidents {
		if upstreams, err = e.upstreamFacts(ctx, now); err != nil {
			// As with domains: keep upstream incidents as they are.
			errs = append(errs, err)
			upstreamRules = false
			for key, inc := range openBy {
				if _, _, ok := SubjectUpstream(inc.Subject); ok {
					seen[key] = true
				}
			}
		}
	}
	silences, err := e.activeSilences(ctx, now, domains)
	if err != nil {
		return err
	}
	refs := make(map[int]ServerRef, len(facts))
	for _, f := range facts {
		refs[f.ID] = f.ServerRef
	}
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		if r.Kind.PerMonitor() {
			if !monitorRules {
				continue
			}
			for _, m := range monitors {
				subject := MonitorSubject(m.Name)
				key := openKey(r.ID, subject)
				seen[key] = true
				if err := e.apply(ctx, lg, r, target{monitor: m.Name}, subject, openBy[key], CheckMonitor(r, m, now), silences, now); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		if r.Kind.PerUpstream() {
			if upstreamRules {
				errs = append(errs, e.evaluateUpstreams(ctx, lg, r, upstreams, openBy, seen, refs, silences, now)...)
			}
			continue
		}
		if r.Kind.PerDomain() {
			if !domainRules {
				continue
			}
			for _, d := range domains {
				if !r.appliesDomain(d, refs) {
					continue
				}
				c := CheckDomain(r, d, now)
				subject := DomainSubject(d.Name)
				key := openKey(r.ID, subject)
				seen[key] = true
				t := target{domain: d.Name, servers: serverNames(d.ServerIDs, refs)}
				if err := e.apply(ctx, lg, r, t, subject, openBy[key], c, silences, now); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		for _, f := range facts {
			if !r.Applies(f.ServerRef) {
				continue
			}
			var c Check
			if r.Kind == KindMetric {
				c = checkMetric(r, e.snapshot(f.ID, r.valueKey()), now)
			} else {
				c = CheckServer(r, f, now)
			}
			subject := r.Subject(f.ID)
			key := openKey(r.ID, subject)
			seen[key] = true
			if err := e.apply(ctx, lg, r, target{server: f}, subject, openBy[key], c, silences, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Incidents whose rule was disabled or deleted, or whose server or domain
	// left the scope, resolve.
	for key, inc := range openBy {
		if seen[key] {
			continue
		}
		if err := e.close(ctx, lg, inc, "the rule no longer applies", silences, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.repeats(ctx, lg, rules, silences, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// evaluateUpstreams judges an upstream rule for every server of every
// upstream, then resolves the rule's open incidents about addresses that are
// no longer a server of their upstream, saying so.
func (e *Engine) evaluateUpstreams(ctx context.Context, lg Logger, r Rule, upstreams []UpstreamFacts, openBy map[string]*ent.Incident,
	seen map[string]bool, refs map[int]ServerRef, sil silenceSet, now time.Time) []error {
	var errs []error
	judge := func(u UpstreamFacts, subject string) {
		key := openKey(r.ID, subject)
		seen[key] = true
		c := CheckUpstream(r, u, refs, now)
		nodes := failingNodes(r, u, refs)
		sil.nodes[key] = nodes
		t := target{upstream: u.Upstream, address: u.Address, servers: serverNames(nodes, refs)}
		if err := e.apply(ctx, lg, r, t, subject, openBy[key], c, sil, now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range upstreams {
		subject := UpstreamSubject(u.Upstream, u.Address)
		if seen[openKey(r.ID, subject)] {
			// The same address twice in one upstream: judged once.
			continue
		}
		judge(u, subject)
	}
	for key, inc := range openBy {
		if inc.RuleID != r.ID || seen[key] {
			continue
		}
		if name, addr, ok := SubjectUpstream(inc.Subject); ok {
			judge(UpstreamFacts{Upstream: name, Address: addr}, inc.Subject)
		}
	}
	return errs
}

func openKey(ruleID int, subject string) string { return strconv.Itoa(ruleID) + ":" + subject }

func (e *Engine) serverFacts(ctx context.Context) ([]ServerFacts, error) {
	list, err := e.db.Client.Server.Query().Where(server.StatusNEQ(server.StatusRemoved)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read servers: %w", err)
	}
	revs, err := deploy.DesiredRevisions(ctx, e.db, list)
	if err != nil {
		return nil, err
	}
	out := make([]ServerFacts, 0, len(list))
	for _, s := range list {
		f := ServerFacts{ServerRef: ServerRef{ID: s.ID, Name: s.Name, Labels: s.Labels}, Hostname: s.Hostname, Status: string(s.Status)}
		if s.LastSeenAt != nil {
			f.LastSeen = *s.LastSeenAt
		}
		if t := e.lastObserved(s.ID); t.After(f.LastSeen) {
			f.LastSeen = t
		}
		if s.Drift != nil && s.Drift.Drifted() {
			f.DriftFiles = append(append(append(f.DriftFiles, s.Drift.Added...), s.Drift.Removed...), s.Drift.Modified...)
		}
		if rev := revs[s.ID]; rev != nil && rev.Status == configrevision.StatusFailed {
			f.NginxFailed = true
			f.NginxReason = fmt.Sprintf("revision %d: %s", rev.Number, firstLine(rev.Outcome+": "+rev.Output))
		}
		out = append(out, f)
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// apply carries out one Step decision.
func (e *Engine) apply(ctx context.Context, lg Logger, r Rule, t target, subject string, inc *ent.Incident, c Check, sil silenceSet, now time.Time) error {
	f := t.server
	var cur *Open
	if inc != nil {
		cur = &Open{State: State(inc.State), StartedAt: inc.StartedAt, Severity: Severity(inc.Severity)}
	}
	act := Step(cur, c, r.Hold(), now)
	sev := c.Breach
	if sev == SeverityNone {
		// A pending incident on its way: the level of the latest sample.
		sev = r.level(c.Value)
		if sev == SeverityNone {
			sev = r.Severity
		}
	}
	switch act {
	case ActNone:
		return nil
	case ActOpen, ActFire:
		if inc == nil {
			key := openKey(r.ID, subject)
			cr := e.db.Client.Incident.Create().SetRuleID(r.ID).SetRuleName(r.Name).SetSubject(subject).
				SetOpenKey(key).SetServerID(f.ID).SetServerName(f.Name).SetSeverity(string(sev)).
				SetValue(c.Value).SetSummary(clip(c.Summary, 1000)).SetStartedAt(now).SetState(incident.StatePending)
			if act == ActFire {
				cr.SetState(incident.StateFiring).SetFiredAt(now)
			}
			created, err := cr.Save(ctx)
			if err != nil {
				return fmt.Errorf("open incident for %s on %s: %w", r.Name, t.name(), err)
			}
			inc = created
			lg.Printf("incident %d %s: %s on %s (%s)", inc.ID, inc.State, r.Name, t.name(), c.Summary)
		} else {
			upd, err := inc.Update().SetState(incident.StateFiring).SetFiredAt(now).SetSeverity(string(sev)).
				SetValue(c.Value).SetSummary(clip(c.Summary, 1000)).Save(ctx)
			if err != nil {
				return fmt.Errorf("fire incident %d: %w", inc.ID, err)
			}
			inc = upd
			lg.Printf("incident %d firing: %s on %s (%s)", inc.ID, r.Name, t.name(), c.Summary)
		}
		e.publish(inc)
		if inc.State == incident.StateFiring {
			return e.notifyFiring(ctx, r, t, inc, sil, now, notify.KindFiring)
		}
		return nil
	case ActEscalate:
		upd, err := inc.Update().SetSeverity(string(sev)).SetValue(c.Value).SetSummary(clip(c.Summary, 1000)).Save(ctx)
		if err != nil {
			return fmt.Errorf("update incident %d: %w", inc.ID, err)
		}
		lg.Printf("incident %d is now %s (%s)", inc.ID, sev, c.Summary)
		e.publish(upd)
		if sev == SeverityCritical && upd.NotifiedAt != nil && upd.AckedAt == nil {
			return e.notifyFiring(ctx, r, t, upd, sil, now, notify.KindRepeat)
		}
		return nil
	case ActUpdate:
		if inc.Value == c.Value && inc.Summary == clip(c.Summary, 1000) {
			return nil
		}
		upd, err := inc.Update().SetValue(c.Value).SetSummary(clip(c.Summary, 1000)).Save(ctx)
		if err != nil {
			return fmt.Errorf("update incident %d: %w", inc.ID, err)
		}
		e.publish(upd)
		return nil
	case ActCancel:
		if err := e.db.Client.Incident.DeleteOne(inc).Exec(ctx); err != nil {
			return fmt.Errorf("cancel pending incident %d: %w", inc.ID, err)
		}
		lg.Printf("pending incident %d cleared before firing: %s on %s", inc.ID, r.Name, t.name())
		e.publishDeleted(inc.ID)
		return nil
	case ActResolve:
		return e.close(ctx, lg, inc, c.Summary, sil, now)
	}
	return nil
}

// close resolves a firing incident (with a recovery notice if its firing
// notice went out) or drops a pending one.
func (e *Engine) close(ctx context.Context, lg Logger, inc *ent.Incident, why string, sil silenceSet, now time.Time) error {
	if inc.State == incident.StatePending {
		if err := e.db.Client.Incident.DeleteOne(inc).Exec(ctx); err != nil {
			return fmt.Errorf("cancel pending incident %d: %w", inc.ID, err)
		}
		e.publishDeleted(inc.ID)
		return nil
	}
	upd, err := inc.Update().SetState(incident.StateResolved).SetResolvedAt(now).ClearOpenKey().
		SetSummary(clip(why, 1000)).Save(ctx)
	if err != nil {
		return fmt.Errorf("resolve incident %d: %w", inc.ID, err)
	}
	lg.Printf("incident %d resolved after %s: %s on %s", inc.ID, now.Sub(inc.StartedAt).Round(time.Second), inc.RuleName, subjectName(inc))
	e.publish(upd)
	if upd.NotifiedAt == nil || sil.covers(upd, now) {
		return nil
	}
	r, t := e.ruleAndTarget(ctx, upd)
	n := e.notification(r, t, upd, notify.KindResolved, 0, now)
	e.opts.Notifier.Notify(n, r.ChannelIDs)
	return nil
}

// target is what an incident is about: a server, or a domain and the
// servers that serve it (then the server facts are zero).
type target struct {
	server  ServerFacts
	domain  string
	servers []string // serving a domain; failing to reach an upstream server
	monitor string
	// upstream and address name a server of an upstream.
	upstream, address string
}

func (t target) name() string {
	switch {
	case t.upstream != "":
		return upstreamWhat(t.upstream, t.address)
	case t.monitor != "":
		return t.monitor
	case t.domain != "":
		return t.domain
	}
	return t.server.Name
}

// subjectName is what an incident is about, in a word: its domain, or the
// name of its server.
func subjectName(inc *ent.Incident) string {
	if d, ok := SubjectDomain(inc.Subject); ok {
		return d
	}
	if m, ok := SubjectMonitor(inc.Subject); ok {
		return m
	}
	if u, addr, ok := SubjectUpstream(inc.Subject); ok {
		return upstreamWhat(u, addr)
	}
	return inc.ServerName
}

// ruleAndTarget loads what a notification about inc shows, tolerating a
// rule, server or domain deleted since.
func (e *Engine) ruleAndTarget(ctx context.Context, inc *ent.Incident) (Rule, target) {
	r := Rule{ID: inc.RuleID, Name: inc.RuleName}
	if er, err := e.db.Client.AlertRule.Get(ctx, inc.RuleID); err == nil {
		r = ruleFromEnt(er)
	}
	if name, ok := SubjectMonitor(inc.Subject); ok {
		return r, target{monitor: name}
	}
	if name, addr, ok := SubjectUpstream(inc.Subject); ok {
		// Which nodes fail is in the incident's detail.
		return r, target{upstream: name, address: addr}
	}
	if name, ok := SubjectDomain(inc.Subject); ok {
		t := target{domain: name}
		d, err := e.db.Client.Domain.Query().Where(domain.Name(name)).
			WithServers(func(q *ent.ServerQuery) {
				q.Where(server.StatusNEQ(server.StatusRemoved)).Order(ent.Asc(server.FieldName))
			}).Only(ctx)
		if err == nil {
			for _, s := range d.Edges.Servers {
				t.servers = append(t.servers, s.Name)
			}
		}
		return r, t
	}
	f := ServerFacts{ServerRef: ServerRef{ID: inc.ServerID, Name: inc.ServerName}}
	if s, err := e.db.Client.Server.Get(ctx, inc.ServerID); err == nil {
		f.Name, f.Labels, f.Hostname = s.Name, s.Labels, s.Hostname
	}
	return r, target{server: f}
}

func (e *Engine) notifyFiring(ctx context.Context, r Rule, t target, inc *ent.Incident, sil silenceSet, now time.Time, kind notify.Kind) error {
	if sil.covers(inc, now) {
		return nil
	}
	round := inc.RepeatRound
	if kind == notify.KindRepeat {
		round++
	}
	upd, err := inc.Update().SetNotifiedAt(now).SetRepeatRound(round).Save(ctx)
	if err != nil {
		return fmt.Errorf("record notification of incident %d: %w", inc.ID, err)
	}
	e.opts.Notifier.Notify(e.notification(r, t, upd, kind, round, now), r.ChannelIDs)
	return nil
}

// repeats sends reminders for firing, unacknowledged incidents, and the
// firing notice of incidents whose silence ended.
func (e *Engine) repeats(ctx context.Context, lg Logger, rules []Rule, sil silenceSet, now time.Time) error {
	firing, err := e.db.Client.Incident.Query().Where(incident.StateEQ(incident.StateFiring), incident.AckedAtIsNil()).All(ctx)
	if err != nil {
		return fmt.Errorf("read firing incidents: %w", err)
	}
	byID := map[int]Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	var errs []error
	for _, inc := range firing {
		r, ok := byID[inc.RuleID]
		if !ok || sil.covers(inc, now) {
			continue
		}
		kind := notify.Kind("")
		switch {
		case inc.NotifiedAt == nil:
			kind = notify.KindFiring
		case r.Repeat > 0 && now.Sub(*inc.NotifiedAt) >= r.Repeat:
			kind = notify.KindRepeat
		default:
			continue
		}
		_, t := e.ruleAndTarget(ctx, inc)
		if err := e.notifyFiring(ctx, r, t, inc, sil, now, kind); err != nil {
			errs = append(errs, err)
			continue
		}
		lg.Printf("incident %d: %s notification sent", inc.ID, kind)
	}
	return errors.Join(errs...)
}

// silenceSet is the silences active during one evaluation, and which
// servers serve each domain so that a silence scoped to a server also covers
// incidents about the domains it serves.
type silenceSet struct {
	list          []*ent.Silence
	domainServers map[string][]int
	// nodes holds, by open key, the nodes an upstream incident is about
	// (those failing to reach the upstream server), filled as rules are
	// judged.
	nodes map[string][]int
}

func (e *Engine) activeSilences(ctx context.Context, now time.Time, domains []DomainFacts) (silenceSet, error) {
	list, err := e.db.Client.Silence.Query().Where(silence.StartsAtLTE(now), silence.EndsAtGT(now)).All(ctx)
	if err != nil {
		return silenceSet{}, fmt.Errorf("read silences: %w", err)
	}
	set := silenceSet{list: list, domainServers: make(map[string][]int, len(domains)), nodes: map[string][]int{}}
	for _, d := range domains {
		set.domainServers[d.Name] = d.ServerIDs
	}
	return set, nil
}

// Silenced reports whether a silence covers the incident's rule and server at now.
func Silenced(s *ent.Silence, ruleID, serverID int, now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt) &&
		(s.RuleID == 0 || s.RuleID == ruleID) && (s.ServerID == 0 || s.ServerID == serverID)
}

// covers reports whether a silence holds the incident's notifications: one
// matching its rule and server, or, for a domain incident, one matching its
// rule and scoped to a server that serves the domain, or, for an upstream
// incident, one matching its rule and scoped to a node that fails to reach
// the upstream server.
func (set silenceSet) covers(inc *ent.Incident, now time.Time) bool {
	name, isDomain := SubjectDomain(inc.Subject)
	nodes := set.nodes[openKey(inc.RuleID, inc.Subject)]
	for _, s := range set.list {
		if Silenced(s, inc.RuleID, inc.ServerID, now) {
			return true
		}
		if isDomain && s.ServerID != 0 && slices.Contains(set.domainServers[name], s.ServerID) &&
			Silenced(s, inc.RuleID, s.ServerID, now) {
			return true
		}
		if s.ServerID != 0 && slices.Contains(nodes, s.ServerID) && Silenced(s, inc.RuleID, s.ServerID, now) {
			return true
		}
	}
	return false
}

var severityMap = map[string]notify.Severity{"warning": notify.SeverityWarning, "critical": notify.SeverityCritical}

// notification builds the message about an incident. Every value is plain
// text; the channels escape it.
func (e *Engine) notification(r Rule, t target, inc *ent.Incident, kind notify.Kind, round int, now time.Time) notify.Notification {
	id := strconv.Itoa(inc.ID)
	title := inc.RuleName + " on " + subjectName(inc)
	var fields []notify.Field
	if name, ok := SubjectMonitor(inc.Subject); ok {
		fields = append(fields, notify.Field{Name: "Monitor", Value: name})
	} else if name, addr, ok := SubjectUpstream(inc.Subject); ok {
		fields = append(fields, notify.Field{Name: "Upstream", Value: name}, notify.Field{Name: "Upstream server", Value: addr})
		if len(t.servers) > 0 && kind != notify.KindResolved {
			fields = append(fields, notify.Field{Name: "Unreachable from", Value: strings.Join(t.servers, ", ")})
		}
	} else if name, ok := SubjectDomain(inc.Subject); ok {
		fields = append(fields, notify.Field{Name: "Domain", Value: name})
		if len(t.servers) > 0 {
			fields = append(fields, notify.Field{Name: "Served by", Value: strings.Join(t.servers, ", ")})
		}
	} else {
		f := t.server
		fields = append(fields, notify.Field{Name: "Server", Value: inc.ServerName})
		if f.Hostname != "" {
			fields = append(fields, notify.Field{Name: "Hostname", Value: f.Hostname})
		}
		if len(f.Labels) > 0 {
			fields = append(fields, notify.Field{Name: "Labels", Value: strings.Join(f.Labels, ", ")})
		}
	}
	fields = append(fields, notify.Field{Name: "Rule", Value: inc.RuleName})
	if inc.Summary != "" {
		fields = append(fields, notify.Field{Name: "Detail", Value: inc.Summary})
	}
	since := inc.StartedAt
	if inc.FiredAt != nil {
		since = *inc.FiredAt
	}
	fields = append(fields, notify.Field{Name: "Since", Value: since.UTC().Format(time.RFC3339)})
	if kind == notify.KindResolved && inc.ResolvedAt != nil {
		fields = append(fields, notify.Field{Name: "Duration", Value: inc.ResolvedAt.Sub(since).Round(time.Second).String()})
	}
	sev := severityMap[inc.Severity]
	if sev == "" {
		sev = notify.SeverityWarning
	}
	if kind == notify.KindResolved {
		sev = notify.SeverityInfo
	}
	return notify.Notification{Key: notify.MakeKey(id, kind, round), IncidentID: id, Kind: kind, Severity: sev,
		Title: title, Fields: fields, Time: now}
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// --- live updates ---

// IncidentView is an incident as the UI and API show it.
type IncidentView struct {
	ID         int        `json:"id"`
	RuleID     int        `json:"rule_id"`
	RuleName   string     `json:"rule_name"`
	Subject    string     `json:"subject"`
	ServerID   int        `json:"server_id"`
	ServerName string     `json:"server_name"`
	Domain     string     `json:"domain,omitempty"`   // set for certificate and DNS incidents, which have no server
	Monitor    string     `json:"monitor,omitempty"`  // set for monitor incidents
	Upstream   string     `json:"upstream,omitempty"` // set for upstream incidents, with the server's address
	Address    string     `json:"address,omitempty"`
	State      string     `json:"state"`
	Severity   string     `json:"severity"`
	Value      float64    `json:"value"`
	Summary    string     `json:"summary"`
	StartedAt  time.Time  `json:"started_at"`
	FiredAt    *time.Time `json:"fired_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	AckedAt    *time.Time `json:"acked_at"`
	AckedBy    string     `json:"acked_by"`
	NotifiedAt *time.Time `json:"notified_at"`
	Duration   string     `json:"duration"`
}

// ViewOf converts an incident for display.
func ViewOf(inc *ent.Incident, now time.Time) IncidentView {
	end := now
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	v := IncidentView{ID: inc.ID, RuleID: inc.RuleID, RuleName: inc.RuleName, Subject: inc.Subject,
		ServerID: inc.ServerID, ServerName: inc.ServerName, State: string(inc.State), Severity: inc.Severity,
		Value: inc.Value, Summary: inc.Summary, StartedAt: inc.StartedAt, FiredAt: inc.FiredAt,
		ResolvedAt: inc.ResolvedAt, AckedAt: inc.AckedAt, AckedBy: inc.AckedBy, NotifiedAt: inc.NotifiedAt,
		Duration: end.Sub(inc.StartedAt).Round(time.Second).String()}
	if name, ok := SubjectDomain(inc.Subject); ok {
		v.Domain = name
	}
	if name, ok := SubjectMonitor(inc.Subject); ok {
		v.Monitor = name
	}
	if name, addr, ok := SubjectUpstream(inc.Subject); ok {
		v.Upstream, v.Address = name, addr
	}
	return v
}

func (e *Engine) publish(inc *ent.Incident) {
	if e.opts.Events != nil {
		e.opts.Events.Publish(events.Event{Topic: "alerts", Name: "incident", Data: ViewOf(inc, e.opts.Now())})
	}
}

func (e *Engine) publishDeleted(id int) {
	if e.opts.Events != nil {
		e.opts.Events.Publish(events.Event{Topic: "alerts", Name: "incident.gone", Data: map[string]int{"id": id}})
	}
}

// --- acknowledgments and silences (also the Telegram handler) ---

// ErrResolved is returned when acknowledging a resolved incident.
var ErrResolved = errors.New("the incident is resolved already")

func parseIncidentID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

// AckIncident acknowledges an open incident: no more reminders.
func (e *Engine) AckIncident(ctx context.Context, id int, by audit.Actor) (*ent.Incident, error) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	inc, err := e.db.Client.Incident.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if inc.State == incident.StateResolved {
		return inc, ErrResolved
	}
	if inc.AckedAt != nil {
		return inc, nil
	}
	upd, err := inc.Update().SetAckedAt(e.opts.Now()).SetAckedBy(clip(by.Name, 128)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("acknowledge incident %d: %w", id, err)
	}
	e.record(ctx, by, "incident.ack", fmt.Sprintf("incident:%d", id), inc.RuleName+" on "+subjectName(inc))
	e.publish(upd)
	return upd, nil
}

// SilenceIncident silences an incident's rule on its server for d. Silences
// name a rule and a server, not a domain, so for a certificate or DNS
// incident it silences the rule for every domain, and says so.
func (e *Engine) SilenceIncident(ctx context.Context, id int, d time.Duration, by audit.Actor) (*ent.Silence, error) {
	inc, err := e.db.Client.Incident.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	now := e.opts.Now()
	comment := fmt.Sprintf("incident %d: %s on %s", id, inc.RuleName, subjectName(inc))
	if _, ok := SubjectDomain(inc.Subject); ok {
		comment += " (silences the rule for every domain it covers)"
	}
	if _, _, ok := SubjectUpstream(inc.Subject); ok {
		comment += " (silences the rule for every upstream server it covers)"
	}
	return e.CreateSilence(ctx, SilenceInput{RuleID: inc.RuleID, ServerID: inc.ServerID, StartsAt: now, EndsAt: now.Add(d),
		Comment: comment}, by)
}

func (e *Engine) record(ctx context.Context, by audit.Actor, action, target, detail string) {
	if e.opts.Audit == nil {
		return
	}
	if err := e.opts.Audit.Record(ctx, audit.For(by, action, target, detail)); err != nil {
		e.log.Error("audit", "action", action, "error", err)
	}
}

// Handler adapts the engine to Telegram buttons and commands.
func (e *Engine) Handler() notify.Handler { return telegramHandler{e} }

type telegramHandler struct{ e *Engine }

func (h telegramHandler) Ack(ctx context.Context, incidentID, by string) error {
	id, err := parseIncidentID(incidentID)
	if err != nil {
		return err
	}
	_, err = h.e.AckIncident(ctx, id, audit.System("telegram:"+by))
	return err
}

func (h telegramHandler) Silence(ctx context.Context, incidentID string, d time.Duration, by string) error {
	id, err := parseIncidentID(incidentID)
	if err != nil {
		return err
	}
	_, err = h.e.SilenceIncident(ctx, id, d, audit.System("telegram:"+by))
	return err
}

func (h telegramHandler) Status(ctx context.Context, channels []string) ([]notify.StatusLine, error) {
	return h.e.StatusFor(ctx, channels)
}

// StatusFor lists the firing incidents, oldest first (at most 100), that a
// chat of the named channels is told about: those of rules that notify one
// of them or, naming no channel, every channel. Other chats' incidents stay
// out of its /status.
func (e *Engine) StatusFor(ctx context.Context, channels []string) ([]notify.StatusLine, error) {
	ids, err := e.db.Client.NotificationChannel.Query().Where(notificationchannel.NameIn(channels...)).IDs(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := e.db.Client.AlertRule.Query().Select(alertrule.FieldChannelIds).All(ctx)
	if err != nil {
		return nil, err
	}
	var visible []int
	for _, r := range rules {
		if len(r.ChannelIds) == 0 || slices.ContainsFunc(r.ChannelIds, func(id int) bool { return slices.Contains(ids, id) }) {
			visible = append(visible, r.ID)
		}
	}
	if len(visible) == 0 {
		return nil, nil
	}
	list, err := e.db.Client.Incident.Query().Where(incident.StateEQ(incident.StateFiring), incident.RuleIDIn(visible...)).
		Order(ent.Asc(incident.FieldStartedAt), ent.Asc(incident.FieldID)).Limit(100).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]notify.StatusLine, len(list))
	for i, inc := range list {
		state := inc.Severity
		if inc.AckedAt != nil {
			state += ", acked by " + inc.AckedBy
		}
		out[i] = notify.StatusLine{Name: fmt.Sprintf("#%d %s on %s", inc.ID, inc.RuleName, subjectName(inc)), State: state, Detail: inc.Summary}
	}
	return out, nil
}

// ruleFromEnt converts a stored rule.
func ruleFromEnt(r *ent.AlertRule) Rule {
	return Rule{ID: r.ID, Name: r.Name, Kind: Kind(r.Kind), Enabled: r.Enabled, Metric: Metric(r.Metric), Mount: r.Mount,
		Op: Op(r.Op), Warning: r.Warning, Critical: r.Critical, Severity: Severity(r.Severity),
		Window: time.Duration(r.WindowSeconds) * time.Second, Days: r.Days, ServerIDs: r.ServerIds, Labels: r.Labels,
		ChannelIDs: r.ChannelIds, Repeat: time.Duration(r.RepeatSeconds) * time.Second}
}

// Rules returns every rule, by name.
func (e *Engine) Rules(ctx context.Context) ([]Rule, error) {
	list, err := e.db.Client.AlertRule.Query().Order(ent.Asc(alertrule.FieldName)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	out := make([]Rule, len(list))
	for i, r := range list {
		out[i] = ruleFromEnt(r)
	}
	return out, nil
}
