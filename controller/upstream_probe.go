package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyweb"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// upstreamProbeEvery is how often connected agents probe the upstream
// servers of their current release.
const upstreamProbeEvery = time.Minute

// upstreamProbeFresh is how long a probe is shown: a server that stopped
// answering is not reported up from an old result.
const upstreamProbeFresh = 3 * upstreamProbeEvery

// Bounds on what an agent's probe result may hold; anything beyond is
// dropped, as is an entry that is not a plain host:port.
const (
	maxProbeTargets  = 512
	maxProbeErrorLen = 200
)

// upstreamProbes keeps the newest probe of each server's upstream servers in
// memory: they are taken every minute, so nothing needs to outlive a restart.
// It also remembers, per server and address, since when the probes have
// failed without a success in between, which upstream alert rules judge.
// That memory is lost with the rest on a restart: the clock of a failure
// then starts again at the first probe after it, so an upstream rule fires
// no earlier than its window after the controller started.
type upstreamProbes struct {
	mu       sync.Mutex
	byServer map[int]serverProbe
}

// serverProbe is one server's newest probe, by upstream server address.
type serverProbe struct {
	name    string
	at      time.Time
	targets map[string]proxyweb.TargetState
	// failingSince holds, for each address the newest probe found failing,
	// the time of the first probe of the unbroken run of failures. It has
	// no more entries than targets.
	failingSince map[string]time.Time
}

// record keeps a server's probe, checking what its agent sent: plain
// host:port addresses only, short printable errors, bounded counts.
func (p *upstreamProbes) record(srv *ent.Server, at time.Time, res *agentv1.UpstreamProbeResult) {
	sp := serverProbe{name: srv.Name, at: at, targets: map[string]proxyweb.TargetState{}}
	for _, t := range res.GetTargets() {
		if len(sp.targets) >= maxProbeTargets {
			break
		}
		addr := t.GetAddress()
		if !nginxsyntax.ValidServerAddress(addr) {
			continue
		}
		st := proxyweb.TargetState{ServerID: srv.ID, Server: srv.Name, OK: t.GetOk(), At: at,
			LatencyMS: int(min(t.GetLatencyMs(), 600000))}
		if !st.OK {
			st.Error = cleanLine(clipText(t.GetError(), maxProbeErrorLen))
			if st.Error == "" {
				st.Error = "unreachable"
			}
		}
		// The same address in two upstream blocks is dialled once; keep a
		// failure if either saw one.
		if prev, ok := sp.targets[addr]; ok && !prev.OK {
			continue
		}
		sp.targets[addr] = st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byServer == nil {
		p.byServer = map[int]serverProbe{}
	}
	// A run of failures goes on from the previous probe when that one was
	// recent and failed too; a success, an address that left the release or
	// a gap with no probe (the node could not be asked) starts it again.
	prev, hadPrev := p.byServer[srv.ID]
	hadPrev = hadPrev && !at.Before(prev.at) && at.Sub(prev.at) <= upstreamProbeFresh
	sp.failingSince = map[string]time.Time{}
	for addr, st := range sp.targets {
		if st.OK {
			continue
		}
		since := at
		if s, ok := prev.failingSince[addr]; hadPrev && ok {
			since = s
		}
		sp.failingSince[addr] = since
	}
	p.byServer[srv.ID] = sp
}

// forget drops a server's probe (it no longer serves anything).
func (p *upstreamProbes) forget(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byServer, id)
}

// states returns, for each of the addresses, what the servers that probed it
// within upstreamProbeFresh of now found, ordered by server name.
func (p *upstreamProbes) states(addresses []string, now time.Time) map[string][]proxyweb.TargetState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]proxyweb.TargetState{}
	for _, sp := range p.byServer {
		if now.Sub(sp.at) > upstreamProbeFresh {
			continue
		}
		for _, a := range addresses {
			if st, ok := sp.targets[a]; ok {
				out[a] = append(out[a], st)
			}
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b proxyweb.TargetState) int { return cmp.Compare(a.Server, b.Server) })
	}
	return out
}

// forAlerts is the alert engine's view of the probes: for every address, the
// probes taken within upstreamProbeFresh of now, with since when each node's
// have failed. It answers from memory under the one short lock.
func (p *upstreamProbes) forAlerts(now time.Time) map[string][]alerts.UpstreamProbe {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]alerts.UpstreamProbe{}
	for id, sp := range p.byServer {
		if now.Sub(sp.at) > upstreamProbeFresh {
			continue
		}
		for addr, st := range sp.targets {
			out[addr] = append(out[addr], alerts.UpstreamProbe{ServerID: id, Server: sp.name, OK: st.OK, Error: st.Error,
				At: sp.at, FailingSince: sp.failingSince[addr]})
		}
	}
	return out
}

// addUpstreamProbeJob has every connected agent probe the upstream servers
// of its current release, four agents at a time.
func (c *Controller) addUpstreamProbeJob() error {
	return c.sched.Add(scheduler.Job{
		Name: "upstreams.probe", Title: "Probe upstream servers from every connected node", Quiet: true,
		Every: upstreamProbeEvery,
		Run: func(ctx context.Context, l *scheduler.Log) error {
			return c.probeUpstreams(ctx, l.Printf)
		},
	})
}

func (c *Controller) probeUpstreams(ctx context.Context, logf func(string, ...any)) error {
	servers, err := c.db.Client.Server.Query().Where(server.StatusNEQ(server.StatusRemoved)).All(ctx)
	if err != nil {
		return fmt.Errorf("list servers: %w", err)
	}
	var connected []*ent.Server
	for _, s := range servers {
		if c.hub.Connected(strconv.Itoa(s.ID)) {
			connected = append(connected, s)
		} else {
			c.upstreamProbes.forget(s.ID)
		}
	}
	problems := uptime.Each(connected, 4, func(s *ent.Server) []string {
		if err := c.probeServer(ctx, s); err != nil {
			return []string{s.Name + ": " + err.Error()}
		}
		return nil
	})
	if len(problems) > 0 {
		slices.Sort(problems)
		for _, p := range problems {
			logf("%s", p)
		}
		return fmt.Errorf("%d server(s) could not probe their upstreams", len(problems))
	}
	return nil
}

// probeServer asks one agent to probe and keeps what it found. An agent too
// old to probe is skipped without complaint.
func (c *Controller) probeServer(ctx context.Context, s *ent.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.hub.Send(ctx, strconv.Itoa(s.ID), &agentv1.Command{Kind: &agentv1.Command_ProbeUpstreams{ProbeUpstreams: &agentv1.ProbeUpstreams{}}})
	var cerr *hub.CommandError
	switch {
	case errors.Is(err, hub.ErrNotConnected):
		c.upstreamProbes.forget(s.ID)
		return nil
	case errors.As(err, &cerr) && cerr.Code == agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED:
		c.upstreamProbes.forget(s.ID)
		return nil
	case err != nil:
		return err
	}
	c.upstreamProbes.record(s, time.Now().UTC(), res.GetUpstreamProbe())
	return nil
}
