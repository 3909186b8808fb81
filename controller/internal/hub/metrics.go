package hub

import (
	"context"
	"fmt"
	"math"
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
	warnedClock := false
	for {
		select {
		case b := <-batches:
			upTo, err := h.checkBatch(b)
			if err != nil {
				h.log.Warn("refused metrics batch", "node", id.nodeID, "error", err)
				return status.Errorf(codes.InvalidArgument, "metrics batch: %v", err)
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
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				return status.Error(codes.Aborted, cause.Error())
			}
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// maxClockAhead is how far ahead of the controller's clock a sample may be.
const maxClockAhead = time.Hour

// timely returns the samples dated after the Unix epoch and at most
// maxClockAhead after now; samples itself when all are. Others come from a
// broken clock or a hostile agent: a future one would remain the node's
// newest sample and outlive every retention window.
func timely(samples []*agentv1.MetricSample, now time.Time) []*agentv1.MetricSample {
	limit := now.Add(maxClockAhead)
	ok := func(s *agentv1.MetricSample) bool {
		t := s.GetTime().AsTime()
		return t.After(time.Unix(0, 0)) && !t.After(limit)
	}
	for i, s := range samples {
		if ok(s) {
			continue
		}
		kept := append(make([]*agentv1.MetricSample, 0, len(samples)-1), samples[:i]...)
		for _, s := range samples[i+1:] {
			if ok(s) {
				kept = append(kept, s)
			}
		}
		return kept
	}
	return samples
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
	if err := inRange("cpu_percent", s.GetCpuPercent(), 0, 100); err != nil {
		return err
	}
	for i, v := range s.GetPerCpu() {
		if err := inRange(fmt.Sprintf("per_cpu[%d]", i), v, 0, 100); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"load1", s.GetLoad1()}, {"load5", s.GetLoad5()}, {"load15", s.GetLoad15()}} {
		if err := inRange(f.name, f.v, 0, math.MaxFloat64); err != nil {
			return err
		}
	}
	for i, n := range s.GetInterfaces() {
		if err := inRange(fmt.Sprintf("interfaces[%d].rx_bps", i), n.GetRxBps(), 0, math.MaxFloat64); err != nil {
			return err
		}
		if err := inRange(fmt.Sprintf("interfaces[%d].tx_bps", i), n.GetTxBps(), 0, math.MaxFloat64); err != nil {
			return err
		}
	}
	for i, d := range s.GetDiskIo() {
		if err := inRange(fmt.Sprintf("disk_io[%d].read_bps", i), d.GetReadBps(), 0, math.MaxFloat64); err != nil {
			return err
		}
		if err := inRange(fmt.Sprintf("disk_io[%d].write_bps", i), d.GetWriteBps(), 0, math.MaxFloat64); err != nil {
			return err
		}
	}
	for i, t := range s.GetTemperatures() {
		if err := inRange(fmt.Sprintf("temperatures[%d].celsius", i), t.GetCelsius(), -math.MaxFloat64, math.MaxFloat64); err != nil {
			return err
		}
	}
	return nil
}

// inRange requires lo <= v <= hi, which NaN and the infinities never meet.
func inRange(name string, v, lo, hi float64) error {
	if v >= lo && v <= hi {
		return nil
	}
	switch {
	case lo == -math.MaxFloat64:
		return fmt.Errorf("%s %v: must be a finite number", name, v)
	case hi == math.MaxFloat64:
		return fmt.Errorf("%s %v: must be a finite number of at least %v", name, v, lo)
	}
	return fmt.Errorf("%s %v: must be between %v and %v", name, v, lo, hi)
}
