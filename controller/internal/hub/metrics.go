package hub

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func (h *Hub) runMetrics(stream agentv1.AgentService_ReportMetricsServer) error {
	id := identityFrom(stream.Context())
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)

	key := h.nextSeq()
	h.mu.Lock()
	n := h.nodes[id.nodeID]
	if n == nil {
		n = &nodeConns{metrics: make(map[uint64]context.CancelCauseFunc)}
		h.nodes[id.nodeID] = n
	}
	n.metrics[key] = cancel
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if n := h.nodes[id.nodeID]; n != nil {
			delete(n.metrics, key)
			if n.session == nil && len(n.metrics) == 0 {
				delete(h.nodes, id.nodeID)
			}
		}
		h.mu.Unlock()
	}()

	batches, recvErr := recvPump(ctx, stream.Recv)
	warnedClock, warnedPace := false, false
	pace := h.budget(id.nodeID)
	for {
		select {
		case b := <-batches:
			upTo, err := h.checkBatch(b)
			if err != nil {
				h.log.Warn("refused metrics batch", "node", id.nodeID, "error", err)
				return status.Errorf(codes.InvalidArgument, "metrics batch: %v", err)
			}
			if wait := pace.take(len(b.GetSamples()), time.Now(), h.cfg.SampleRate, h.cfg.SampleBurst); wait > 0 {
				if !warnedPace {
					warnedPace = true
					h.log.Warn("node sends metric samples faster than allowed; pacing it",
						"node", id.nodeID, "rate", h.cfg.SampleRate, "burst", h.cfg.SampleBurst, "wait", wait)
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return streamEnded(ctx)
				}
			}
			samples := timely(b.GetSamples(), time.Now())
			if dropped := len(b.GetSamples()) - len(samples); dropped > 0 && !warnedClock {
				warnedClock = true
				h.log.Warn("dropping metric samples dated outside the controller's clock window; check the node's clock",
					"node", id.nodeID, "dropped", dropped, "newest", upTo.Format(time.RFC3339))
			}
			if len(samples) > 0 {
				if err := h.cfg.Ingest.Ingest(ctx, id.nodeID, samples); err != nil {
					h.log.Error("ingest metrics", "node", id.nodeID, "samples", len(samples), "error", err)
					return status.Error(codes.Unavailable, "cannot store metrics now; the agent keeps them and retries")
				}
			}
			// The ack covers dropped samples too, so the agent lets go of them.
			ack := &agentv1.MetricsAck{UpTo: timestamppb.New(upTo), Stored: uint32(len(samples))}
			if err := stream.Send(ack); err != nil {
				return err
			}
		case err := <-recvErr:
			_ = err // io.EOF or the client went away
			return nil
		case <-ctx.Done():
			return streamEnded(ctx)
		}
	}
}

// streamEnded is the status of a metrics stream whose context ended: the
// cause given when the hub cut it (a newer session), or the context error.
func streamEnded(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return status.Error(codes.Aborted, cause.Error())
	}
	return status.FromContextError(ctx.Err()).Err()
}

// budget is a token bucket of one node's metric samples.
type budget struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// budget returns the node's bucket, shared by all its metric streams.
func (h *Hub) budget(nodeID string) *budget {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.budgets[nodeID]
	if b == nil {
		b = &budget{}
		h.budgets[nodeID] = b
	}
	return b
}

// take spends n samples at now and returns how long the caller must wait
// before it stores them. The bucket refills at rate a second up to burst;
// it may go into debt by one batch per stream, which later takes repay, so
// concurrent streams of one node share the rate.
func (b *budget) take(n int, now time.Time, rate float64, burst int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.last.IsZero():
		b.tokens, b.last = float64(burst), now
	case now.After(b.last):
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// maxClockAhead is how far ahead of the controller's clock a sample may be.
const maxClockAhead = time.Hour

// timely returns the samples dated after the Unix epoch and at most
// maxClockAhead after now; samples itself when all are. Others come from a
// broken clock or a hostile agent: a future one would remain the node's
// newest sample and outlive every retention window.
func timely(samples []*agentv1.MetricSample, now time.Time) []*agentv1.MetricSample {
	limit := now.Add(maxClockAhead)
	untimely := func(s *agentv1.MetricSample) bool {
		t := s.GetTime().AsTime()
		return !t.After(time.Unix(0, 0)) || t.After(limit)
	}
	if !slices.ContainsFunc(samples, untimely) {
		return samples
	}
	return slices.DeleteFunc(slices.Clone(samples), untimely)
}

// checkBatch validates a batch and returns its newest sample time.
func (h *Hub) checkBatch(b *agentv1.MetricsBatch) (time.Time, error) {
	samples := b.GetSamples()
	if len(samples) == 0 {
		return time.Time{}, fmt.Errorf("batch is empty")
	}
	if len(samples) > h.cfg.MaxBatch {
		return time.Time{}, fmt.Errorf("%d samples, at most %d per batch", len(samples), h.cfg.MaxBatch)
	}
	var upTo time.Time
	for i, s := range samples {
		if err := s.GetTime().CheckValid(); err != nil {
			return time.Time{}, fmt.Errorf("sample %d: time: %w", i, err)
		}
		t := s.GetTime().AsTime()
		if t.Before(upTo) {
			return time.Time{}, fmt.Errorf("sample %d: times must not go backwards", i)
		}
		upTo = t
		if err := checkSample(s); err != nil {
			return time.Time{}, fmt.Errorf("sample %d: %w", i, err)
		}
	}
	return upTo, nil
}

func checkSample(s *agentv1.MetricSample) error {
	const maxItems, maxText = 4096, 256
	if len(s.GetPerCpu()) > maxItems || len(s.GetFilesystems()) > maxItems || len(s.GetInterfaces()) > maxItems ||
		len(s.GetDiskIo()) > maxItems || len(s.GetTemperatures()) > maxItems {
		return fmt.Errorf("more than %d entries in a list", maxItems)
	}
	texts := []string{s.GetSource()}
	for _, f := range s.GetFilesystems() {
		texts = append(texts, f.GetMount(), f.GetDevice(), f.GetFsType())
	}
	for _, i := range s.GetInterfaces() {
		texts = append(texts, i.GetName())
	}
	for _, d := range s.GetDiskIo() {
		texts = append(texts, d.GetName())
	}
	for _, t := range s.GetTemperatures() {
		texts = append(texts, t.GetLabel())
	}
	for _, t := range texts {
		if err := printable(t, maxText); err != nil {
			return fmt.Errorf("text %.40q: %w", t, err)
		}
	}
	return checkNumbers(s)
}

// checkNumbers refuses values no agent can measure. NaN in particular must
// never reach the writer: SQLite stores it as NULL, failing the NOT NULL
// columns of a transaction that holds other nodes' samples too.
func checkNumbers(s *agentv1.MetricSample) error {
	const top = math.MaxFloat64
	if err := cmp.Or(inRange(s.GetCpuPercent(), 0, 100, "cpu_percent", -1),
		inRange(s.GetLoad1(), 0, top, "load1", -1), inRange(s.GetLoad5(), 0, top, "load5", -1),
		inRange(s.GetLoad15(), 0, top, "load15", -1),
		inRange(s.GetNginx().GetRequestsPerSecond(), 0, top, "nginx.requests_per_second", -1)); err != nil {
		return err
	}
	for i, v := range s.GetPerCpu() {
		if err := inRange(v, 0, 100, "per_cpu", i); err != nil {
			return err
		}
	}
	for i, n := range s.GetInterfaces() {
		if err := cmp.Or(inRange(n.GetRxBps(), 0, top, "interfaces.rx_bps", i), inRange(n.GetTxBps(), 0, top, "interfaces.tx_bps", i)); err != nil {
			return err
		}
	}
	for i, d := range s.GetDiskIo() {
		if err := cmp.Or(inRange(d.GetReadBps(), 0, top, "disk_io.read_bps", i), inRange(d.GetWriteBps(), 0, top, "disk_io.write_bps", i)); err != nil {
			return err
		}
	}
	for i, t := range s.GetTemperatures() {
		if err := inRange(t.GetCelsius(), -top, top, "temperatures.celsius", i); err != nil {
			return err
		}
	}
	return nil
}

// inRange requires lo <= v <= hi, which NaN and the infinities never meet.
// field names a list's field as "list.field" with index i (-1 for none); the
// name is only put together for an error.
func inRange(v, lo, hi float64, field string, i int) error {
	if v >= lo && v <= hi {
		return nil
	}
	name := field
	if list, f, ok := strings.Cut(field, "."); ok && i >= 0 {
		name = fmt.Sprintf("%s[%d].%s", list, i, f)
	} else if i >= 0 {
		name = fmt.Sprintf("%s[%d]", field, i)
	}
	switch {
	case lo == -math.MaxFloat64:
		return fmt.Errorf("%s %v: must be a finite number", name, v)
	case hi == math.MaxFloat64:
		return fmt.Errorf("%s %v: must be a finite number of at least %v", name, v, lo)
	}
	return fmt.Errorf("%s %v: must be between %v and %v", name, v, lo, hi)
}
