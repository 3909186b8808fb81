package hub

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// CommandError is a failure reported by the agent for one command.
type CommandError struct {
	Code    agentv1.ErrorCode
	Message string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("agent: %s: %s", e.Code, e.Message)
}

// session is one live Session stream.
type session struct {
	nodeID string
	hello  *agentv1.Hello // as received; read-only
	seq    uint64
	out    chan *agentv1.ControllerMessage
	cancel context.CancelCauseFunc
	done   chan struct{}
	// expires is the validity end (unix nanos) of the newest certificate of
	// the node; renewal extends it so the stream outlives its first certificate.
	expires atomic.Int64
	// serial is the newest certificate's serial, rechecked against the store
	// now and then so a revocation made elsewhere (another controller process,
	// the CLI) also ends the session.
	serial atomic.Pointer[big.Int]

	mu      sync.Mutex
	pending map[string]chan *agentv1.CommandResult
	closing bool
}

// errClosed is the cancellation cause after a Close was delivered.
type closedError struct{ reason string }

func (e *closedError) Error() string { return "session closed: " + e.reason }

// close tells the agent why and ends the stream; it returns at once.
func (s *session) close(reason string) {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if already {
		return
	}
	msg := &agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Close{Close: &agentv1.Close{Reason: reason}}}
	select {
	case s.out <- msg: // the writer cancels after sending it
		go func() {
			// Do not wait on a peer that stopped reading.
			t := time.NewTimer(time.Second)
			defer t.Stop()
			select {
			case <-s.done:
			case <-t.C:
				s.cancel(&closedError{reason})
			}
		}()
	default:
		s.cancel(&closedError{reason})
	}
}

func (h *Hub) extendSession(nodeID string, cert *x509.Certificate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.nodes[nodeID]; n != nil && n.session != nil {
		n.session.expires.Store(cert.NotAfter.UnixNano())
		n.session.serial.Store(cert.SerialNumber)
	}
}

// revocationCheckEvery is how many heartbeat ticks pass between checks of
// the session's certificate against the store.
const revocationCheckEvery = 4

// recvPump moves messages from recv onto a channel so callers can select on
// them with timers and cancellation. It stops when ctx ends or recv fails.
func recvPump[T any](ctx context.Context, recv func() (T, error)) (<-chan T, <-chan error) {
	msgs := make(chan T)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, errc
}

func (h *Hub) runSession(stream agentv1.AgentService_SessionServer) error {
	id := identityFrom(stream.Context())
	hb := h.cfg.HeartbeatInterval
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	msgs, recvErr := recvPump(ctx, stream.Recv)

	// The first message must be Hello, within three heartbeat intervals.
	var hello *agentv1.Hello
	helloTimer := time.NewTimer(missedHeartbeats * hb)
	select {
	case m := <-msgs:
		helloTimer.Stop()
		hello = m.GetHello()
		if hello == nil {
			return status.Error(codes.InvalidArgument, "the first session message must be hello")
		}
	case err := <-recvErr:
		helloTimer.Stop()
		return err
	case <-helloTimer.C:
		return status.Error(codes.DeadlineExceeded, "no hello received")
	case <-ctx.Done():
		helloTimer.Stop()
		return status.FromContextError(ctx.Err()).Err()
	}
	if hello.GetNodeId() != id.nodeID {
		claimed := fmt.Sprintf("%.32q", hello.GetNodeId())
		h.log.Warn("refused hello claiming another node", "node", id.nodeID, "claimed", claimed)
		return status.Errorf(codes.PermissionDenied, "hello names node %s but the certificate names node %q", claimed, id.nodeID)
	}
	if err := printable(hello.GetAgentVersion(), 128); err != nil {
		return status.Errorf(codes.InvalidArgument, "agent version: %v", err)
	}
	if err := ValidateFacts(hello.GetFacts()); err != nil {
		return status.Errorf(codes.InvalidArgument, "host facts: %v", err)
	}
	if err := printable(hello.GetMetricsSource(), 32); err != nil {
		return status.Errorf(codes.InvalidArgument, "metrics source: %v", err)
	}
	if hello.GetCapability() < h.cfg.MinCapability {
		reason := fmt.Sprintf("agent capability %d is below the required %d; upgrade the agent", hello.GetCapability(), h.cfg.MinCapability)
		_ = stream.Send(&agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Close{Close: &agentv1.Close{Reason: reason}}})
		return status.Error(codes.FailedPrecondition, reason)
	}

	s := &session{
		nodeID:  id.nodeID,
		hello:   hello,
		seq:     h.nextSeq(),
		out:     make(chan *agentv1.ControllerMessage, 16),
		cancel:  cancel,
		done:    make(chan struct{}),
		pending: make(map[string]chan *agentv1.CommandResult),
	}
	s.expires.Store(id.cert.NotAfter.UnixNano())
	s.serial.Store(id.cert.SerialNumber)
	defer close(s.done)

	if err := h.cfg.Store.NodeOnline(ctx, id.nodeID, hello); err != nil {
		h.log.Error("record node online", "node", id.nodeID, "error", err)
		return status.Error(codes.Unavailable, "cannot record the session now; retry later")
	}
	// Welcome is queued before the session becomes visible, so no command sent
	// from the online event can reach the agent ahead of it.
	s.out <- &agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Welcome{Welcome: &agentv1.Welcome{
		MinCapability:     h.cfg.MinCapability,
		MetricsInterval:   durationpb.New(h.cfg.MetricsInterval),
		HeartbeatInterval: durationpb.New(hb),
		ServerTime:        timestamppb.Now(),
	}}}
	h.register(s)
	h.log.Info("node online", "node", id.nodeID, "version", hello.GetAgentVersion(), "capability", hello.GetCapability())
	h.emit(Event{Kind: EventOnline, NodeID: id.nodeID, Hello: hello, At: time.Now()})

	reason := "session ended"
	defer func() {
		if h.unregister(s) {
			offCtx, offCancel := context.WithTimeout(context.WithoutCancel(stream.Context()), 5*time.Second)
			if err := h.cfg.Store.NodeOffline(offCtx, id.nodeID); err != nil {
				h.log.Error("record node offline", "node", id.nodeID, "error", err)
			}
			offCancel()
			h.emit(Event{Kind: EventOffline, NodeID: id.nodeID, Hello: hello, Reason: reason, At: time.Now()})
		}
		h.log.Info("node session ended", "node", id.nodeID, "reason", reason)
	}()

	// The writer is the only goroutine calling stream.Send.
	go func() {
		for {
			select {
			case m := <-s.out:
				if err := stream.Send(m); err != nil {
					cancel(fmt.Errorf("send: %w", err))
					return
				}
				if c := m.GetClose(); c != nil {
					cancel(&closedError{c.GetReason()})
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	lastSeen := time.Now()
	var hbSeq, ticks uint64
	for {
		select {
		case m := <-msgs:
			lastSeen = time.Now()
			switch k := m.GetKind().(type) {
			case *agentv1.AgentMessage_Result:
				s.deliver(k.Result)
			case *agentv1.AgentMessage_Heartbeat:
			case *agentv1.AgentMessage_Hello:
				reason = "second hello"
				return status.Error(codes.InvalidArgument, "hello may be sent only once per session")
			default:
				h.log.Debug("ignoring unknown session message", "node", id.nodeID)
			}
		case err := <-recvErr:
			reason = "agent closed the stream: " + err.Error()
			return nil
		case now := <-ticker.C:
			if now.Sub(lastSeen) > missedHeartbeats*hb {
				reason = "no heartbeat from the agent"
				return status.Error(codes.DeadlineExceeded, "no heartbeat received")
			}
			if now.UnixNano() > s.expires.Load() {
				reason = "client certificate expired"
				return status.Error(codes.Unauthenticated, "client certificate expired; renew it")
			}
			if ticks++; ticks%revocationCheckEvery == 0 {
				if err := h.cfg.Store.CheckCertificate(ctx, id.nodeID, s.serial.Load()); errors.Is(err, ErrCertificateRevoked) || errors.Is(err, ErrNodeUnknown) {
					reason = err.Error()
					return status.Error(codes.PermissionDenied, err.Error())
				}
			}
			hbSeq++
			select {
			case s.out <- &agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Heartbeat{Heartbeat: &agentv1.Heartbeat{Seq: hbSeq, SentAt: timestamppb.New(now)}}}:
			default: // the writer is backed up; liveness is judged by the peer
			}
		case <-ctx.Done():
			cause := context.Cause(ctx)
			var ce *closedError
			if errors.As(cause, &ce) {
				reason = ce.reason
				return status.Error(codes.Aborted, ce.Error())
			}
			reason = cause.Error()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// register makes s the node's session, closing a session it replaces.
func (h *Hub) register(s *session) {
	h.mu.Lock()
	n := h.nodes[s.nodeID]
	if n == nil {
		n = &nodeConns{metrics: make(map[uint64]context.CancelCauseFunc)}
		h.nodes[s.nodeID] = n
	}
	old := n.session
	n.session = s
	h.mu.Unlock()
	if old != nil {
		old.close("replaced by a newer session of the same node")
	}
}

// unregister removes s and reports whether it was still the node's session.
func (h *Hub) unregister(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[s.nodeID]
	if n == nil || n.session != s {
		return false
	}
	n.session = nil
	if len(n.metrics) == 0 {
		delete(h.nodes, s.nodeID)
	}
	return true
}

func (s *session) deliver(r *agentv1.CommandResult) {
	s.mu.Lock()
	ch := s.pending[r.GetId()]
	delete(s.pending, r.GetId())
	s.mu.Unlock()
	if ch != nil {
		ch <- r // buffered, one result per id
	}
}

func newCommandID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Send delivers cmd to nodeID's session and waits for its result. The id and
// deadline are set by Send (the caller's cmd is not modified); the deadline
// is ctx's, or DefaultCommandTimeout from now. When the agent reports a
// failure the result is returned together with a *CommandError.
func (h *Hub) Send(ctx context.Context, nodeID string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
	if cmd == nil || cmd.GetKind() == nil {
		return nil, errors.New("command has no kind")
	}
	h.mu.Lock()
	var s *session
	if n := h.nodes[nodeID]; n != nil {
		s = n.session
	}
	h.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, ErrNotConnected)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	c := proto.CloneOf(cmd)
	c.Id = newCommandID()
	c.Deadline = timestamppb.New(deadline)

	ch := make(chan *agentv1.CommandResult, 1)
	s.mu.Lock()
	s.pending[c.Id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, c.Id)
		s.mu.Unlock()
	}()

	select {
	case s.out <- &agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Command{Command: c}}:
	case <-ctx.Done():
		return nil, fmt.Errorf("send command to node %s: %w", nodeID, ctx.Err())
	case <-s.done:
		return nil, fmt.Errorf("node %s: %w", nodeID, ErrSessionClosed)
	}
	select {
	case r := <-ch:
		if e := r.GetError(); e != nil {
			return r, &CommandError{Code: e.GetCode(), Message: e.GetMessage()}
		}
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for node %s: %w", nodeID, ctx.Err())
	case <-s.done:
		return nil, fmt.Errorf("node %s: %w", nodeID, ErrSessionClosed)
	}
}
