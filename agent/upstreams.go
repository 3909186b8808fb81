package agent

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/agent/internal/nginx"
	"github.com/gatehousehq/gatehouse/agent/internal/probe"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// maxReplyReserve is the most of a command's time kept back from the probes
// so that the result still reaches the controller before the deadline.
const maxReplyReserve = 500 * time.Millisecond

// probeUpstreams answers ProbeUpstreams: it reads the upstream servers of
// the current release (never anything the command says), dials each
// distinct address once and reports every (upstream, address) pair. No
// release is an empty result for revision 0, not an error.
func (a *Agent) probeUpstreams(ctx context.Context) *agentv1.CommandResult {
	ups, err := nginx.ReadUpstreams(a.cfg.NginxDir)
	if err != nil {
		return nginxFailure(ctx, "probe upstreams", err)
	}
	a.noteIgnored(ups)
	addrs := ups.Addresses()
	pctx, cancel := withReplyReserve(ctx)
	defer cancel()
	found := a.prober.TCP(pctx, addrs)
	byAddr := make(map[string]probe.Result, len(addrs))
	for i, addr := range addrs {
		byAddr[addr] = found[i]
	}
	res := &agentv1.UpstreamProbeResult{Revision: int64(ups.Revision), Targets: make([]*agentv1.TargetProbe, 0, len(ups.Servers))}
	for _, s := range ups.Servers {
		r := byAddr[s.Address]
		res.Targets = append(res.Targets, &agentv1.TargetProbe{
			Upstream:  s.Upstream,
			Address:   s.Address,
			Ok:        r.OK,
			LatencyMs: latencyMS(r.Latency),
			Error:     r.Error,
		})
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_UpstreamProbe{UpstreamProbe: res}}
}

// withReplyReserve ends the probes a little before ctx's deadline: a tenth
// of the time left, at most maxReplyReserve.
func withReplyReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(time.Until(deadline)/10, maxReplyReserve)
	return context.WithDeadline(ctx, deadline.Add(-max(reserve, 0)))
}

// latencyMS rounds up, so a connection that took any time at all shows at
// least 1 ms, and a probe that was never tried (zero) shows 0.
func latencyMS(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return uint32(min(int64(ms), math.MaxUint32))
}

// ignoredNotes remembers what the last probe left out of the release, so
// that the controller's probe every minute logs it once, not every time.
type ignoredNotes struct {
	mu   sync.Mutex
	last string
}

// noteIgnored logs what ReadUpstreams left out: at warn level when it
// differs from the previous probe's, else at debug level.
func (a *Agent) noteIgnored(ups nginx.Upstreams) {
	key := ""
	if len(ups.Ignored) > 0 {
		key = strconv.FormatUint(ups.Revision, 10) + "\n" + strings.Join(ups.Ignored, "\n")
	}
	a.ignored.mu.Lock()
	changed := key != a.ignored.last
	a.ignored.last = key
	a.ignored.mu.Unlock()
	switch {
	case key == "":
	case changed:
		a.log.Warn("upstream probe: parts of the current release are not probed", "revision", ups.Revision, "ignored", ups.Ignored)
	default:
		a.log.Debug("upstream probe: parts of the current release are not probed", "revision", ups.Revision, "ignored", len(ups.Ignored))
	}
}
