package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

const (
	// defaultHeartbeat is used until the controller's Welcome says otherwise.
	defaultHeartbeat = 15 * time.Second
	missedHeartbeats = 3
	// batchEntries and batchBytes bound one MetricsBatch.
	batchEntries = 256
	batchBytes   = 1 << 20
	// defaultCommandTimeout applies when a command carries no deadline.
	defaultCommandTimeout = time.Minute
)

// runConn runs one connection: session, metrics stream and renewal. It
// returns when any of them fails or ctx ends, reporting whether the
// controller welcomed the session.
func (a *Agent) runConn(parent context.Context) (welcomed bool, err error) {
	conn, err := a.dial()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	client := agentv1.NewAgentServiceClient(conn)
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	stream, err := client.Session(ctx)
	if err != nil {
		return false, fmt.Errorf("open session: %w", err)
	}
	id := a.identity()
	hello := &agentv1.Hello{
		AgentVersion:    a.cfg.Version,
		Capability:      Capability,
		Facts:           a.facts(),
		MetricsSource:   a.source.Current(),
		NodeId:          id.nodeID,
		AppliedRevision: a.nginx.current(),
		Nginx:           a.nginx.node(a.cfg),
	}
	if err := stream.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	// Bound the wait for Welcome.
	welcomeTimer := time.AfterFunc(missedHeartbeats*defaultHeartbeat, func() { cancel(errors.New("no welcome from the controller")) })
	first, err := stream.Recv()
	welcomeTimer.Stop()
	if err != nil {
		return false, fmt.Errorf("wait for welcome: %w", err)
	}
	w := first.GetWelcome()
	if w == nil {
		if c := first.GetClose(); c != nil {
			return false, fmt.Errorf("controller closed the session: %s", c.GetReason())
		}
		return false, errors.New("controller did not answer hello with welcome")
	}
	a.connects.Add(1)
	if iv := w.GetMetricsInterval().AsDuration(); iv >= time.Second {
		if a.interval.Swap(int64(iv)) != int64(iv) {
			select {
			case a.intervalC <- struct{}{}:
			default:
			}
		}
	}
	hb := w.GetHeartbeatInterval().AsDuration()
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	a.log.Info("session established", "node", id.nodeID, "metrics_interval", time.Duration(a.interval.Load()), "heartbeat", hb)

	out := make(chan *agentv1.AgentMessage, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	// The writer is the only goroutine calling stream.Send.
	run(func() {
		for {
			select {
			case m := <-out:
				if err := stream.Send(m); err != nil {
					cancel(fmt.Errorf("session send: %w", err))
					return
				}
			case <-ctx.Done():
				return
			}
		}
	})
	lastSeen := make(chan struct{}, 1)
	run(func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				cancel(fmt.Errorf("session receive: %w", err))
				return
			}
			select {
			case lastSeen <- struct{}{}:
			default:
			}
			switch k := m.GetKind().(type) {
			case *agentv1.ControllerMessage_Command:
				run(func() { a.handleCommand(ctx, k.Command, out) })
			case *agentv1.ControllerMessage_Close:
				cancel(fmt.Errorf("controller closed the session: %s", k.Close.GetReason()))
				return
			case *agentv1.ControllerMessage_Heartbeat, *agentv1.ControllerMessage_Welcome:
			}
		}
	})
	run(func() { a.heartbeatLoop(ctx, cancel, hb, out, lastSeen) })
	run(func() {
		if err := a.metricsLoop(ctx, client); err != nil {
			cancel(fmt.Errorf("metrics stream: %w", err))
		}
	})
	run(func() { a.renewLoop(ctx) })

	<-ctx.Done()
	return true, context.Cause(ctx)
}

func (a *Agent) heartbeatLoop(ctx context.Context, cancel context.CancelCauseFunc, hb time.Duration, out chan<- *agentv1.AgentMessage, seen <-chan struct{}) {
	t := time.NewTicker(hb)
	defer t.Stop()
	last := time.Now()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-seen:
			last = time.Now()
		case now := <-t.C:
			if now.Sub(last) > missedHeartbeats*hb {
				cancel(errors.New("controller silent for three heartbeat intervals"))
				return
			}
			seq++
			select {
			case out <- &agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Heartbeat{Heartbeat: &agentv1.Heartbeat{Seq: seq, SentAt: timestamppb.New(now)}}}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// metricsLoop sends buffered samples oldest first, one batch in flight, and
// drops them from the buffer only when the controller acknowledged them.
func (a *Agent) metricsLoop(ctx context.Context, client agentv1.AgentServiceClient) error {
	stream, err := client.ReportMetrics(ctx)
	if err != nil {
		return err
	}
	for {
		entries := a.buf.Pending(batchEntries)
		if len(entries) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-a.pushed:
				continue
			}
		}
		batch := &agentv1.MetricsBatch{}
		size := 0
		var last time.Time
		for _, e := range entries {
			if size > 0 && size+len(e.Data) > batchBytes {
				break
			}
			s := &agentv1.MetricSample{}
			if err := proto.Unmarshal(e.Data, s); err != nil {
				// Cannot happen for data this agent encoded; skip it rather
				// than block the queue.
				a.log.Error("drop undecodable buffered sample", "error", err)
			} else {
				batch.Samples = append(batch.Samples, s)
			}
			size += len(e.Data)
			last = e.TS
		}
		if len(batch.Samples) == 0 {
			a.buf.Ack(last)
			continue
		}
		if err := stream.Send(batch); err != nil {
			return fmt.Errorf("send batch: %w", err)
		}
		ack, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.InvalidArgument {
				// The controller will never take this batch; keep the rest.
				a.log.Error("controller refused a metrics batch; dropping it", "samples", len(batch.Samples), "error", err)
				a.buf.Ack(last)
			}
			return fmt.Errorf("wait for ack: %w", err)
		}
		a.buf.Ack(ack.GetUpTo().AsTime())
	}
}

func (a *Agent) handleCommand(ctx context.Context, cmd *agentv1.Command, out chan<- *agentv1.AgentMessage) {
	deadline := time.Now().Add(defaultCommandTimeout)
	if d := cmd.GetDeadline(); d.IsValid() {
		deadline = d.AsTime()
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	res := a.execute(cctx, cmd)
	res.Id = cmd.GetId()
	select {
	case out <- &agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Result{Result: res}}:
	case <-ctx.Done():
	}
}

func cmdError(code agentv1.ErrorCode, format string, args ...any) *agentv1.CommandResult {
	return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func (a *Agent) execute(ctx context.Context, cmd *agentv1.Command) *agentv1.CommandResult {
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_FetchGlancesPlugin:
		name := k.FetchGlancesPlugin.GetName()
		if !metrics.AllowedPlugin(name) {
			return cmdError(agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "glances plugin %.64q is not allowed", name)
		}
		body, err := a.glances.Plugin(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return cmdError(agentv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, "fetch glances plugin %s: %v", name, err)
			}
			return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "fetch glances plugin %s: %v", name, err)
		}
		return &agentv1.CommandResult{Result: &agentv1.CommandResult_GlancesPlugin{GlancesPlugin: &agentv1.GlancesPluginResult{Json: body}}}
	case *agentv1.Command_ApplyNginxRelease:
		return a.nginx.apply(ctx, k.ApplyNginxRelease)
	case *agentv1.Command_CheckNginxDrift:
		return a.nginx.drift(ctx)
	case *agentv1.Command_PlaceChallenge:
		return a.nginx.placeChallenge(ctx, k.PlaceChallenge)
	case *agentv1.Command_RemoveChallenge:
		return a.nginx.removeChallenge(ctx, k.RemoveChallenge)
	case *agentv1.Command_ReadNginxLog:
		return a.readNginxLog(k.ReadNginxLog)
	case *agentv1.Command_ProbeUpstreams:
		return a.probeUpstreams(ctx)
	default:
		return cmdError(agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, "unknown command")
	}
}
