package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// phaseConfig shapes one load phase.
type phaseConfig struct {
	Name     string
	Ramp     time.Duration // connects are spread over this long
	Warmup   time.Duration // after the ramp, before the window
	Duration time.Duration // the measurement window
	Drain    time.Duration // how long to wait for outstanding acks after the window
	// ServerPID is the process whose CPU and memory are reported (0: none).
	ServerPID int
	Progress  io.Writer
}

// phaseResult is what a phase measured.
type phaseResult struct {
	Name           string         `json:"name"`
	Agents         int            `json:"agents"`
	Connected      int            `json:"connected"`
	WindowSeconds  float64        `json:"window_seconds"`
	IngestPerSec   float64        `json:"ingest_samples_per_second"`
	Latency        latencySummary `json:"latency_taken_to_acked"`
	Taken          uint64         `json:"samples_taken"`
	Sent           uint64         `json:"samples_sent"`
	Acked          uint64         `json:"samples_acked"`
	Lost           uint64         `json:"samples_lost"` // sent - acked after the drain
	Dropped        uint64         `json:"samples_dropped"`
	Reconnects     uint64         `json:"reconnects"`
	LastError      string         `json:"last_error,omitempty"`
	Server         *procUsage     `json:"server,omitempty"`
	Loadgen        *procUsage     `json:"loadgen"`
	ackedPerNodeID map[string]uint64
}

// phaseState counts sims that reached Welcome.
type phaseState struct{ n atomic.Int64 }

func (p *phaseState) connected() { p.n.Add(1) }

// runPhase connects every sim to t, lets them sample once a second, measures
// over the window, stops sampling, waits for the acks and disconnects.
func runPhase(ctx context.Context, sims []*sim, t target, cfg phaseConfig) (*phaseResult, error) {
	if len(sims) == 0 {
		return nil, errNoAgents
	}
	start := time.Now()
	win := window{from: start.Add(cfg.Ramp + cfg.Warmup)}
	win.to = win.from.Add(cfg.Duration)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var state phaseState
	links := make([]*link, len(sims))
	var wg sync.WaitGroup
	for i, s := range sims {
		links[i] = newLink(s, t, win)
		delay := time.Duration(int64(cfg.Ramp) * int64(i) / int64(len(sims)))
		wg.Add(1)
		go func(l *link) {
			defer wg.Done()
			select {
			case <-runCtx.Done():
				return
			case <-time.After(delay):
			}
			l.run(runCtx, &state)
		}(links[i])
	}
	stopAll := func() {
		cancel()
		wg.Wait()
	}

	progress := func(msg string) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[%s] %6.1fs %s (connected %d/%d)\n", cfg.Name, time.Since(start).Seconds(), msg, state.n.Load(), len(sims))
		}
	}
	if !sleepCtx(ctx, time.Until(win.from)) {
		stopAll()
		return nil, ctx.Err()
	}
	progress("window starts")
	self := newProcWatch(0)
	self.Start(ctx)
	var server *procWatch
	if cfg.ServerPID > 0 {
		server = newProcWatch(cfg.ServerPID)
		server.Start(ctx)
	}
	tick := time.NewTicker(30 * time.Second)
	for time.Now().Before(win.to) {
		select {
		case <-ctx.Done():
			tick.Stop()
			stopAll()
			return nil, ctx.Err()
		case <-tick.C:
			progress("measuring")
		case <-time.After(time.Until(win.to)):
		}
	}
	tick.Stop()
	res := &phaseResult{Name: cfg.Name, Agents: len(sims), WindowSeconds: cfg.Duration.Seconds()}
	selfUse, err := self.Stop()
	if err != nil {
		stopAll()
		return nil, fmt.Errorf("loadgen usage: %w", err)
	}
	res.Loadgen = &selfUse
	if server != nil {
		u, err := server.Stop()
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("%s usage: %w", cfg.Name, err)
		}
		res.Server = &u
	}
	res.Connected = int(state.n.Load())
	progress("window ends; waiting for outstanding acks")

	for _, l := range links {
		l.stopSampling()
	}
	drainBy := time.After(cfg.Drain)
drain:
	for _, l := range links {
		select {
		case <-l.drained:
		case <-drainBy:
			break drain
		case <-ctx.Done():
			break drain
		}
	}
	stopAll()

	var lat []time.Duration
	res.ackedPerNodeID = make(map[string]uint64, len(links))
	var inWindow uint64
	for _, l := range links {
		l.mu.Lock()
		res.Taken += l.taken
		res.Sent += l.sent
		res.Acked += l.acked
		res.Dropped += l.dropped
		res.Reconnects += l.reconnects
		if l.lastErr != nil {
			res.LastError = l.lastErr.Error()
		}
		inWindow += l.ackedInWindow
		lat = append(lat, l.lat...)
		res.ackedPerNodeID[l.s.nodeID] = l.acked
		l.mu.Unlock()
	}
	res.Lost = res.Sent - res.Acked
	res.IngestPerSec = float64(inWindow) / cfg.Duration.Seconds()
	res.Latency = summarizeLatency(lat)
	progress(fmt.Sprintf("done: %d acked of %d sent", res.Acked, res.Sent))
	return res, nil
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
