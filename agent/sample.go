package agent

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// sampleLoop samples on the interval from the controller's Welcome, also
// while disconnected, and buffers each sample encoded until acknowledged.
func (a *Agent) sampleLoop(ctx context.Context) {
	// Wait for the first Welcome to learn the interval.
	for a.interval.Load() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-a.intervalC:
		}
	}
	iv := time.Duration(a.interval.Load())
	t := time.NewTicker(iv)
	defer t.Stop()
	a.sampleOnce(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.intervalC:
			if n := time.Duration(a.interval.Load()); n != iv {
				iv = n
				t.Reset(iv)
			}
		case <-t.C:
			a.sampleOnce(ctx)
		}
	}
}

func (a *Agent) sampleOnce(ctx context.Context) {
	iv := time.Duration(a.interval.Load())
	sctx, cancel := context.WithTimeout(ctx, iv)
	defer cancel()
	// nginx's counters are read beside the sample, so a slow or hanging
	// nginx delays it by no more than the reader's timeout, if at all.
	nginxC := make(chan *metrics.NginxStatus, 1)
	go func() { nginxC <- a.activity.read(sctx) }()
	s, err := a.source.Sample(sctx)
	s.Nginx = <-nginxC
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("take metrics sample", "error", err)
		}
		return
	}
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	var stepped bool
	s.Time, stepped = stamp(s.Time, a.lastTS)
	if stepped {
		n := a.buf.DropAfter(s.Time)
		a.log.Warn("the system clock went back; dropping buffered samples stamped ahead of it",
			"by", a.lastTS.Sub(s.Time).Round(time.Second), "dropped", n)
	}
	a.lastTS = s.Time
	data, err := proto.Marshal(sampleToProto(s))
	if err != nil {
		a.log.Error("encode metrics sample", "error", err)
		return
	}
	a.buf.Push(s.Time, data)
	a.sampled.Add(1)
	a.log.Trace("metrics sample taken", "ts", s.Time.UnixMilli())
	select {
	case a.pushed <- struct{}{}:
	default:
	}
}

// sampleToProto converts a metrics sample to its wire form, field for field.
func sampleToProto(s metrics.Sample) *agentv1.MetricSample {
	m := &agentv1.MetricSample{
		Time:          timestamppb.New(s.Time),
		Source:        s.Source,
		CpuPercent:    s.CPUPercent,
		PerCpu:        s.PerCPU,
		Load1:         s.Load1,
		Load5:         s.Load5,
		Load15:        s.Load15,
		MemTotal:      s.MemTotal,
		MemUsed:       s.MemUsed,
		MemAvailable:  s.MemAvailable,
		SwapTotal:     s.SwapTotal,
		SwapUsed:      s.SwapUsed,
		UptimeSeconds: s.UptimeSeconds,
		Processes:     s.Processes,
	}
	if n := s.Nginx; n != nil {
		m.Nginx = &agentv1.NginxStatus{
			Active: n.Active, Reading: n.Reading, Writing: n.Writing, Waiting: n.Waiting,
			Accepts: n.Accepts, Handled: n.Handled, Requests: n.Requests,
			RequestsPerSecond: n.RequestsPerSecond,
		}
	}
	for _, f := range s.Filesystems {
		m.Filesystems = append(m.Filesystems, &agentv1.Filesystem{Mount: f.Mount, Device: f.Device, FsType: f.FSType, Size: f.Size, Used: f.Used})
	}
	for _, i := range s.Interfaces {
		m.Interfaces = append(m.Interfaces, &agentv1.Interface{Name: i.Name, RxBps: i.RxBps, TxBps: i.TxBps, RxTotal: i.RxTotal, TxTotal: i.TxTotal})
	}
	for _, d := range s.DiskIO {
		m.DiskIo = append(m.DiskIo, &agentv1.DiskIO{Name: d.Name, ReadBps: d.ReadBps, WriteBps: d.WriteBps})
	}
	for _, t := range s.Temperatures {
		m.Temperatures = append(m.Temperatures, &agentv1.Temperature{Label: t.Label, Celsius: t.Celsius})
	}
	return m
}

// clockStepBack is how far behind the newest sample the clock may be before
// the agent takes it as set back rather than jittering.
const clockStepBack = 5 * time.Minute

// stamp returns the time to stamp a sample taken at t when the newest one
// was stamped last. Sample times must strictly increase, because
// acknowledgements are by time, so a clock a little behind is stepped past
// last. A clock far behind was set back (the earlier stamps came from a
// clock running ahead): t is kept and stepped is true, and the caller drops
// what it buffered after t, rather than stamping every later sample in the
// future, where the controller would refuse them.
func stamp(t, last time.Time) (ts time.Time, stepped bool) {
	switch {
	case t.After(last):
		return t, false
	case last.Sub(t) > clockStepBack:
		return t, true
	default:
		return last.Add(time.Microsecond), false
	}
}
