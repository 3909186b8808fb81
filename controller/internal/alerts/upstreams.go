package alerts

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/upstream"
	"github.com/gatehousehq/gatehouse/ent/upstreamtarget"
)

// UpstreamProbe is one node's newest probe of one upstream server.
type UpstreamProbe struct {
	ServerID int
	Server   string // the node's name as the probe recorded it
	OK       bool
	// Error is why the dial failed, in the agent's words ("connection
	// refused", "timeout"); empty when OK.
	Error string
	At    time.Time
	// FailingSince is the time of the first of the node's unbroken run of
	// failed probes of the address; zero when OK.
	FailingSince time.Time
}

// UpstreamProbeSource returns the probes of upstream servers that are fresh
// at now, by address ("host:port"). The engine calls it once per evaluation;
// it must answer from memory, without waiting on anything slow.
type UpstreamProbeSource func(now time.Time) map[string][]UpstreamProbe

// UpstreamFacts is what an upstream rule judges about one server of one
// upstream.
type UpstreamFacts struct {
	Upstream string // the upstream's name
	Address  string // the server's "host:port"
	// Listed is false when the address is no longer a server of the
	// upstream (or the upstream is gone, or the server is marked down):
	// an incident about it resolves.
	Listed bool
	// Probes are the fresh probes of the address, one per node, in any order.
	Probes []UpstreamProbe
}

const upstreamPrefix = "upstream:"

// Bounds of the parts of an upstream subject, in bytes: incident subjects
// are at most 300.
const (
	maxSubjectUpstream = 63
	maxSubjectAddress  = 200
)

// UpstreamSubject is the incident subject of an upstream rule for one server
// of an upstream: "upstream:<name>/<host:port>". Both parts are validated
// where they are stored; here they are still made printable ASCII without
// slashes and clipped, so a subject is always bounded and parses back.
func UpstreamSubject(name, address string) string {
	return upstreamPrefix + subjectPart(name, maxSubjectUpstream) + "/" + subjectPart(address, maxSubjectAddress)
}

// SubjectUpstream returns the upstream and address an incident subject
// names, if it names one.
func SubjectUpstream(subject string) (name, address string, ok bool) {
	rest, ok := strings.CutPrefix(subject, upstreamPrefix)
	if !ok {
		return "", "", false
	}
	name, address, ok = strings.Cut(rest, "/")
	return name, address, ok && name != "" && address != ""
}

// subjectPart keeps s to printable ASCII other than '/', each other byte
// becoming '_', and at most n bytes.
func subjectPart(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '/' {
			b[i] = '_'
		}
	}
	return string(b)
}

// upstreamWhat names an upstream server in messages.
func upstreamWhat(name, address string) string {
	return oneLine(address, maxSubjectAddress) + " of upstream " + oneLine(name, maxSubjectUpstream)
}

// maxListedNodes bounds how many failing nodes a summary names.
const maxListedNodes = 5

// CheckUpstream judges an upstream rule for one server of an upstream on the
// probes of the nodes in the rule's scope (servers holds the current
// servers; a probe by any other node does not count). It breaches once a
// node's probes have failed for the window, and is on its way (pending)
// while one's have failed for less; its value is how many nodes' probes
// fail. It is known in every case, so that an incident resolves when the
// address leaves the upstream or no node in scope probes it any more.
func CheckUpstream(r Rule, u UpstreamFacts, servers map[int]ServerRef, now time.Time) Check {
	if r.Kind != KindUpstreamDown {
		return Check{}
	}
	what := upstreamWhat(u.Upstream, u.Address)
	c := Check{Known: true}
	if !u.Listed {
		c.Summary = upperFirst(what) + " is no longer a server of it"
		return c
	}
	type failing struct {
		name  string
		since time.Time
		err   string
	}
	var fails []failing
	probed := 0
	for _, p := range u.Probes {
		ref, ok := servers[p.ServerID]
		if !ok || !r.Applies(ref) {
			continue
		}
		probed++
		if p.OK {
			continue
		}
		since := p.FailingSince
		if since.IsZero() || since.After(p.At) {
			since = p.At
		}
		fails = append(fails, failing{name: oneLine(ref.Name, 64), since: since, err: p.Error})
	}
	switch {
	case probed == 0:
		c.Summary = "No node in scope has probed " + what + " in the last few minutes"
		return c
	case len(fails) == 0:
		c.Summary = upperFirst(what) + " answers the probes of every node in scope (" + plural(probed, "node") + ")"
		return c
	}
	slices.SortFunc(fails, func(a, b failing) int { return strings.Compare(a.name, b.name) })
	c.Value = float64(len(fails))
	longest := time.Duration(0)
	parts := make([]string, 0, min(len(fails), maxListedNodes)+1)
	for i, f := range fails {
		longest = max(longest, now.Sub(f.since))
		if i == maxListedNodes {
			parts = append(parts, fmt.Sprintf("and %d more", len(fails)-maxListedNodes))
			continue
		}
		if i > maxListedNodes {
			continue
		}
		why := oneLine(f.err, 120)
		if why == "" {
			why = "unreachable"
		}
		parts = append(parts, fmt.Sprintf("%s since %s (%s)", f.name, f.since.UTC().Format(time.RFC3339), why))
	}
	if longest >= r.Window {
		c.Breach = r.Severity
	} else {
		c.Starting = true
	}
	c.Summary = fmt.Sprintf("%s is unreachable from %d of %s: %s", upperFirst(what), len(fails), plural(probed, "node"), strings.Join(parts, "; "))
	return c
}

// failingNodes lists the nodes in the rule's scope whose probes of u fail,
// by id, for silences scoped to a server.
func failingNodes(r Rule, u UpstreamFacts, servers map[int]ServerRef) []int {
	var ids []int
	for _, p := range u.Probes {
		if ref, ok := servers[p.ServerID]; ok && !p.OK && r.Applies(ref) {
			ids = append(ids, p.ServerID)
		}
	}
	slices.Sort(ids)
	return ids
}

// upstreamFacts pairs every server of every upstream (those not marked down,
// which nginx does not send to) with the fresh probes of its address, in
// upstream name and server order. Without a probe source every server has no
// probes.
func (e *Engine) upstreamFacts(ctx context.Context, now time.Time) ([]UpstreamFacts, error) {
	ups, err := e.db.Client.Upstream.Query().Select(upstream.FieldName).
		WithTargets(func(q *ent.UpstreamTargetQuery) {
			q.Where(upstreamtarget.Down(false)).Order(ent.Asc(upstreamtarget.FieldPosition), ent.Asc(upstreamtarget.FieldID))
		}).Order(ent.Asc(upstream.FieldName)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read upstreams: %w", err)
	}
	var probes map[string][]UpstreamProbe
	if e.opts.UpstreamProbes != nil {
		probes = e.opts.UpstreamProbes(now)
	}
	var out []UpstreamFacts
	for _, u := range ups {
		for _, t := range u.Edges.Targets {
			addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
			out = append(out, UpstreamFacts{Upstream: u.Name, Address: addr, Listed: true, Probes: probes[addr]})
		}
	}
	return out, nil
}
