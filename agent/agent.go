package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	"github.com/gatehousehq/gatehouse/agent/internal/nginx"
	"github.com/gatehousehq/gatehouse/agent/internal/probe"
	"github.com/gatehousehq/gatehouse/agent/trust"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Agent is one running node agent.
type Agent struct {
	cfg Config
	log hclog.Logger

	cert    *trust.HotCert
	idMu    sync.Mutex
	id      *identity
	glances *metrics.Glances
	source  *metrics.Fallback
	buf     *metrics.Buffer
	pushed  chan struct{} // signalled after each Push
	nginx   *nginxEngine
	// activity reads nginx's counters for each sample.
	activity *nginxActivity
	// prober dials the upstream servers for ProbeUpstreams.
	prober  probe.Prober
	ignored ignoredNotes

	interval  atomic.Int64 // metrics interval in nanoseconds; 0 until Welcome
	intervalC chan struct{}

	connects atomic.Uint64
	renewals atomic.Uint64
	sampled  atomic.Uint64
	lastTS   time.Time // newest sample time; sampler goroutine only
	lastErr  atomic.Pointer[string]
}

func (a *Agent) noteErr(err error) {
	msg := err.Error()
	a.lastErr.Store(&msg)
}

// Stats is a snapshot of an agent's counters.
type Stats struct {
	NodeID   string
	Connects uint64 // sessions that reached Welcome
	Renewals uint64 // certificates renewed
	Sampled  uint64 // samples taken and buffered
	Pending  int    // samples not yet acknowledged by the controller
	Dropped  uint64 // samples dropped because the buffer was full
	// LastError is the most recent enrollment or connection failure.
	LastError string
}

// New builds an Agent; nothing is contacted until Run.
func New(cfg Config, logger hclog.Logger) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	cfg.CAPin, _ = trust.ParsePin(cfg.CAPin)
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(cfg.ControllerAddr)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	log := logger.Named("agent")
	g := metrics.NewGlances(cfg.GlancesURL, nil, log.Named("glances"))
	return &Agent{
		cfg:       cfg,
		log:       log,
		cert:      trust.NewHotCert(nil),
		glances:   g,
		source:    metrics.NewFallback(g, metrics.NewProc(cfg.ProcRoot, cfg.SysRoot, log.Named("proc")), log.Named("metrics")),
		buf:       metrics.NewBuffer(cfg.BufferBytes),
		pushed:    make(chan struct{}, 1),
		intervalC: make(chan struct{}, 1),
		nginx:     newNginxEngine(cfg, log),
		activity:  newNginxActivity(cfg, log.Named("nginx-status")),
		prober:    probe.Prober{Resolver: net.DefaultResolver, Timeout: probe.DefaultTimeout, Concurrency: probe.DefaultConcurrency},
	}, nil
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := Stats{
		Connects: a.connects.Load(),
		Renewals: a.renewals.Load(),
		Sampled:  a.sampled.Load(),
		Pending:  a.buf.Len(),
		Dropped:  a.buf.Dropped(),
	}
	if e := a.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	a.idMu.Lock()
	if a.id != nil {
		s.NodeID = a.id.nodeID
	}
	a.idMu.Unlock()
	return s
}

// Run enrolls if needed, then keeps a session with the controller until ctx
// ends. It returns nil on cancellation and an error only for conditions a
// retry cannot fix (a refused token, an unusable state directory).
func (a *Agent) Run(ctx context.Context) error {
	if err := ensureStateDir(a.cfg.StateDir); err != nil {
		return err
	}
	if err := a.loadOrEnroll(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.sampleLoop(ctx)
	}()
	defer wg.Wait()

	bo := a.newBackoff()
	for {
		welcomed, err := a.runConn(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if welcomed {
			bo.reset()
		}
		a.noteErr(err)
		d := bo.next()
		a.log.Warn("controller link down; reconnecting", "error", err, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

func (a *Agent) setIdentity(id *identity) {
	a.idMu.Lock()
	a.id = id
	a.idMu.Unlock()
	a.cert.Store(id.tls)
}

func (a *Agent) identity() *identity {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	return a.id
}

func (a *Agent) loadOrEnroll(ctx context.Context) error {
	id, err := loadIdentity(a.cfg.StateDir, a.cfg.CAPin, time.Now())
	if err == nil {
		a.setIdentity(id)
		a.log.Info("loaded identity", "node", id.nodeID, "not_after", id.leaf.NotAfter.Format(time.RFC3339))
		// A re-run of provisioning writes a fresh token even when the node is
		// enrolled; an enrolled agent never needs it, so it does not linger.
		a.removeTokenFile()
		return nil
	}
	token, terr := a.token()
	if terr != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("not enrolled and %w", terr)
		}
		return fmt.Errorf("stored identity unusable (%w) and %w", err, terr)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("stored identity unusable; enrolling again with the bootstrap token", "error", err)
	}
	bo := a.newBackoff()
	for {
		id, err := a.enroll(ctx, token)
		if err == nil {
			if err := saveIdentity(a.cfg.StateDir, id); err != nil {
				return err
			}
			a.setIdentity(id)
			a.removeTokenFile()
			a.log.Info("enrolled", "node", id.nodeID)
			return nil
		}
		a.noteErr(err)
		switch status.Code(err) {
		case codes.PermissionDenied, codes.InvalidArgument, codes.Unauthenticated:
			return fmt.Errorf("enrollment refused: %w", err)
		}
		d := bo.next()
		a.log.Warn("enrollment failed; retrying", "error", err, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// removeTokenFile deletes the bootstrap token file, if one is configured.
func (a *Agent) removeTokenFile() {
	if a.cfg.TokenFile == "" {
		return
	}
	if err := os.Remove(a.cfg.TokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Error("remove bootstrap token file", "path", a.cfg.TokenFile, "error", err)
	}
}

func (a *Agent) token() (string, error) {
	if a.cfg.Token != "" {
		return a.cfg.Token, nil
	}
	if a.cfg.TokenFile == "" {
		return "", errors.New("no enrollment token configured (token or token_file)")
	}
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", a.cfg.TokenFile)
	}
	return t, nil
}

// maxControllerMsg lets the largest release the applier accepts through:
// its contents plus each file's path and framing. gRPC's default of 4 MiB
// would end the session on a bigger release, which the controller would
// send again after every reconnect.
const maxControllerMsg = nginx.MaxTotalSize + nginx.MaxFiles*(nginx.MaxPathLen+16) + 1<<20

func (a *Agent) dial() (*grpc.ClientConn, error) {
	tlsCfg, err := trust.ClientConfig(a.cfg.CAPin, a.cfg.ServerName, a.cert)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+a.cfg.ControllerAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxControllerMsg)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial controller: %w", err)
	}
	return conn, nil
}

func (a *Agent) enroll(ctx context.Context, token string) (*identity, error) {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	conn, err := a.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := agentv1.NewEnrollmentServiceClient(conn).Enroll(ctx, &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: a.facts()})
	if err != nil {
		return nil, err
	}
	id, err := buildIdentity(a.cfg.CAPin, key, resp.GetCertificate(), resp.GetCaChain(), time.Now())
	if err != nil {
		return nil, err
	}
	if id.nodeID != resp.GetNodeId() {
		return nil, fmt.Errorf("certificate names node %s but the controller said %s", id.nodeID, resp.GetNodeId())
	}
	return id, nil
}

func (a *Agent) facts() *agentv1.HostFacts {
	f := &agentv1.HostFacts{Os: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: a.cfg.Version}
	f.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile(a.cfg.ProcRoot + "/sys/kernel/osrelease"); err == nil {
		f.Kernel = strings.TrimSpace(string(b))
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && len(f.Addresses) < 64 {
				f.Addresses = append(f.Addresses, ipn.IP.String())
			}
		}
	}
	return f
}

// backoff is a jittered exponential delay.
type backoff struct {
	min, max, cur time.Duration
}

func (a *Agent) newBackoff() *backoff {
	return &backoff{min: a.cfg.BackoffMin, max: a.cfg.BackoffMax}
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	// Full jitter in [cur/2, cur).
	half := b.cur / 2
	return half + rand.N(half+1)
}
