// Package hub is the controller's gRPC endpoint for agents: enrollment,
// authenticated sessions carrying commands and heartbeats, metrics ingestion
// with durable acknowledgements, and certificate renewal. State lives behind
// the small Store and Ingest interfaces.
package hub

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/gatehousehq/gatehouse/agent/trust"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Defaults for Config fields left zero.
const (
	DefaultCertLifetime      = 30 * 24 * time.Hour
	DefaultMetricsInterval   = 10 * time.Second
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultCommandTimeout    = time.Minute
	DefaultMaxBatch          = 1000
	DefaultSampleRate        = 100
	DefaultSampleBurst       = 5000

	// missedHeartbeats is how many silent intervals drop a peer.
	missedHeartbeats = 3
	// maxRecvMsgSize bounds one message from an agent.
	maxRecvMsgSize = 8 << 20
)

// Store errors the hub maps to refusals.
var (
	ErrTokenInvalid       = errors.New("enrollment token is unknown, used or expired")
	ErrCertificateRevoked = errors.New("certificate is revoked")
	ErrNodeUnknown        = errors.New("node is unknown")
)

// Errors from Send.
var (
	ErrNotConnected  = errors.New("node is not connected")
	ErrSessionClosed = errors.New("session closed before the command finished")
)

// Store is the state the hub needs. Implementations must be safe for
// concurrent use.
type Store interface {
	// RedeemEnrollmentToken atomically consumes the token with this SHA-256
	// and returns its node; ErrTokenInvalid for unknown, used or expired tokens.
	RedeemEnrollmentToken(ctx context.Context, tokenHash [32]byte, facts *agentv1.HostFacts) (nodeID string, err error)
	// RecordCertificate records a certificate issued to nodeID.
	RecordCertificate(ctx context.Context, nodeID string, cert *x509.Certificate) error
	// CheckCertificate returns ErrCertificateRevoked or ErrNodeUnknown when the
	// serial must not be served.
	CheckCertificate(ctx context.Context, nodeID string, serial *big.Int) error
	// NodeOnline records a session start.
	NodeOnline(ctx context.Context, nodeID string, hello *agentv1.Hello) error
	// NodeOffline records a session end.
	NodeOffline(ctx context.Context, nodeID string) error
}

// Ingest stores metric samples durably; the hub acknowledges a batch to the
// agent only after Ingest returned nil. Samples may repeat after a reconnect;
// implementations de-duplicate on (node, sample time).
type Ingest interface {
	Ingest(ctx context.Context, nodeID string, samples []*agentv1.MetricSample) error
}

// EventKind says what happened to a node's session.
type EventKind int

// Event kinds.
const (
	EventOnline EventKind = iota + 1
	EventOffline
)

func (k EventKind) String() string {
	switch k {
	case EventOnline:
		return "online"
	case EventOffline:
		return "offline"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports a session starting or ending.
type Event struct {
	Kind   EventKind
	NodeID string
	// Hello is the agent's Hello, with its host facts.
	Hello *agentv1.Hello
	// Reason says why an offline session ended.
	Reason string
	At     time.Time
}

// Config configures a Hub. CA, ServerCert, Store and Ingest are required.
type Config struct {
	CA *pki.CA
	// ServerCert is the listener certificate (see pki.CA.IssueServer); Store a
	// new one to rotate it without a restart.
	ServerCert *trust.HotCert
	Store      Store
	Ingest     Ingest
	// OnEvent, when set, receives online/offline events. It is called from
	// session goroutines and must not block.
	OnEvent func(Event)

	CertLifetime      time.Duration // node certificate validity; default 30 days
	MetricsInterval   time.Duration // sent in Welcome; default 10 s
	HeartbeatInterval time.Duration // both directions; default 15 s
	MinCapability     int32         // agents below it are refused
	MaxBatch          int           // samples per MetricsBatch; default 1000

	// SampleRate and SampleBurst pace each node's metric samples over all
	// its streams: a node may send SampleBurst samples at once and
	// SampleRate a second after that. A faster batch waits before it is
	// stored (the agent's next send blocks); it is not refused. A node
	// samples once per MetricsInterval, so only a node catching up on its
	// buffer after an outage comes near the default 100/s, burst 5,000.
	SampleRate  float64
	SampleBurst int
}

func (c *Config) setDefaults() {
	if c.CertLifetime == 0 {
		c.CertLifetime = DefaultCertLifetime
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = DefaultMetricsInterval
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.SampleRate == 0 {
		c.SampleRate = DefaultSampleRate
	}
	if c.SampleBurst == 0 {
		c.SampleBurst = max(DefaultSampleBurst, c.MaxBatch)
	}
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	switch {
	case c.CA == nil:
		return errors.New("hub: CA is required")
	case c.ServerCert == nil || c.ServerCert.Load() == nil:
		return errors.New("hub: ServerCert must hold a certificate (issue one with CA.IssueServer)")
	case c.Store == nil:
		return errors.New("hub: Store is required")
	case c.Ingest == nil:
		return errors.New("hub: Ingest is required")
	case c.CertLifetime < time.Second || c.CertLifetime > pki.MaxNodeLifetime:
		return fmt.Errorf("hub: CertLifetime %s must be between 1s and %s", c.CertLifetime, pki.MaxNodeLifetime)
	case c.MetricsInterval < time.Second || c.MetricsInterval > time.Hour:
		return fmt.Errorf("hub: MetricsInterval %s must be between 1s and 1h", c.MetricsInterval)
	case c.HeartbeatInterval < 100*time.Millisecond || c.HeartbeatInterval > 10*time.Minute:
		return fmt.Errorf("hub: HeartbeatInterval %s must be between 100ms and 10m", c.HeartbeatInterval)
	case c.MaxBatch < 1 || c.MaxBatch > 100000:
		return fmt.Errorf("hub: MaxBatch %d must be between 1 and 100000", c.MaxBatch)
	case !(c.SampleRate > 0 && c.SampleRate <= 1e6):
		return fmt.Errorf("hub: SampleRate %g must be above 0 and at most 1000000 a second", c.SampleRate)
	case c.SampleBurst < c.MaxBatch || c.SampleBurst > 10_000_000:
		return fmt.Errorf("hub: SampleBurst %d must be at least MaxBatch (%d) and at most 10000000", c.SampleBurst, c.MaxBatch)
	}
	return nil
}

// Hub serves agents. Create it with New and run it with Serve.
type Hub struct {
	cfg    Config
	log    hclog.Logger
	server *grpc.Server

	mu    sync.Mutex
	nodes map[string]*nodeConns
	seq   uint64
	// budgets pace each node's samples; one per node that ever sent some.
	budgets map[string]*budget
}

// nodeConns are the live streams of one node.
type nodeConns struct {
	session *session
	metrics map[uint64]context.CancelCauseFunc
}

// New builds a Hub; call Serve to accept agents.
func New(cfg Config, logger hclog.Logger) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	h := &Hub{cfg: cfg, log: logger.Named("hub"), nodes: make(map[string]*nodeConns), budgets: make(map[string]*budget)}
	tlsCfg := pki.ServerTLSConfig(cfg.ServerCert, cfg.CA.Pool())
	h.server = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		// An agent needs two streams (session and metrics) and the odd unary
		// call; gRPC's default is unlimited streams per connection.
		grpc.MaxConcurrentStreams(16),
		// Agents send a few hundred bytes a second; gRPC's default 32 KiB read
		// and write buffers per connection would cost thousands of agents
		// hundreds of megabytes for nothing.
		grpc.ReadBufferSize(8<<10),
		grpc.WriteBufferSize(8<<10),
		grpc.SharedWriteBuffer(true),
		grpc.UnaryInterceptor(h.unaryAuth),
		grpc.StreamInterceptor(h.streamAuth),
		grpc.WaitForHandlers(true),
	)
	agentv1.RegisterEnrollmentServiceServer(h.server, &enrollmentServer{h: h})
	agentv1.RegisterAgentServiceServer(h.server, &agentServer{h: h})
	return h, nil
}

// Serve accepts agents on l (plain TCP; the hub does TLS) until Stop.
func (h *Hub) Serve(l net.Listener) error {
	h.log.Info("serving agents", "addr", l.Addr().String())
	if err := h.server.Serve(l); err != nil {
		return fmt.Errorf("serve agents: %w", err)
	}
	return nil
}

// Stop closes every listener and stream and returns after all handlers
// finished (so NodeOffline has been recorded for every live session).
func (h *Hub) Stop() { h.server.Stop() }

// Connected reports whether nodeID has a live session.
func (h *Hub) Connected(nodeID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[nodeID]
	return n != nil && n.session != nil
}

// NginxNode returns what nodeID's connected agent reported in its Hello about
// the node's nginx, or nil when it is not connected or reported nothing. The
// values are the agent's word: callers validate them before use.
func (h *Hub) NginxNode(nodeID string) *agentv1.NginxNode {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.nodes[nodeID]; n != nil && n.session != nil {
		return n.session.hello.GetNginx()
	}
	return nil
}

// Disconnect closes nodeID's session (telling the agent reason) and metrics
// streams. Use it after revoking a certificate or deleting a node; the agent's
// next attempt is then refused by Store.CheckCertificate.
func (h *Hub) Disconnect(nodeID, reason string) {
	h.mu.Lock()
	n := h.nodes[nodeID]
	var s *session
	var metrics []context.CancelCauseFunc
	if n != nil {
		s = n.session
		for _, c := range n.metrics {
			metrics = append(metrics, c)
		}
	}
	h.mu.Unlock()
	cause := fmt.Errorf("disconnected: %s", reason)
	for _, c := range metrics {
		c(cause)
	}
	if s != nil {
		s.close(reason)
	}
}

func (h *Hub) nextSeq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return h.seq
}

func (h *Hub) emit(e Event) {
	if h.cfg.OnEvent != nil {
		h.cfg.OnEvent(e)
	}
}
