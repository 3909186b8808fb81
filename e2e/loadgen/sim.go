package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent"
	"github.com/gatehousehq/gatehouse/agent/trust"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Limits of one simulated agent, the same as the real agent's.
const (
	simBatchSamples = 256  // samples per MetricsBatch
	simMaxPending   = 8640 // samples buffered while unacknowledged (a day at 10 s)
)

// sim is one simulated agent: its own key, certificate and node identity.
type sim struct {
	name   string
	nodeID string
	key    *ecdsa.PrivateKey
	cert   *tls.Certificate // issued by the controller at enrollment
}

func newSim(name string) (*sim, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &sim{name: name, key: key}, nil
}

func (s *sim) facts() *agentv1.HostFacts {
	return &agentv1.HostFacts{Hostname: s.name, Os: "linux", Arch: "amd64", Kernel: "6.1.0-loadgen", AgentVersion: "loadgen", Addresses: []string{"127.0.0.1"}}
}

// dialOpts are the real agent's client options.
func dialOpts(tlsCfg *tls.Config) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// enroll redeems token at the controller with a CSR for the sim's key and
// checks the issued certificate against the pinned CA, like the real agent.
func (s *sim) enroll(ctx context.Context, addr, pin, token string) error {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gatehouse-agent"}}, s.key)
	if err != nil {
		return fmt.Errorf("create csr: %w", err)
	}
	tlsCfg, err := trust.ClientConfig(pin, "127.0.0.1", nil)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, dialOpts(tlsCfg)...)
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := agentv1.NewEnrollmentServiceClient(conn).Enroll(ctx, &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: s.facts()})
	if err != nil {
		return fmt.Errorf("enroll %s: %w", s.name, err)
	}
	certs := make([]*x509.Certificate, 0, 1+len(resp.GetCaChain()))
	for _, der := range append([][]byte{resp.GetCertificate()}, resp.GetCaChain()...) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("enroll %s: parse issued certificate: %w", s.name, err)
		}
		certs = append(certs, c)
	}
	if _, err := trust.VerifyChain(pin, certs, "", x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
		return fmt.Errorf("enroll %s: issued certificate: %w", s.name, err)
	}
	if resp.GetNodeId() == "" {
		return fmt.Errorf("enroll %s: controller returned no node id", s.name)
	}
	tc := &tls.Certificate{PrivateKey: s.key, Leaf: certs[0]}
	for _, c := range certs {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	s.nodeID, s.cert = resp.GetNodeId(), tc
	return nil
}

// target is where a phase's simulated agents connect.
type target struct {
	addr string
	pin  string
	// cert returns the client certificate a sim presents to this target.
	cert func(*sim) *tls.Certificate
}

// window is the measurement interval of a phase.
type window struct{ from, to time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }

// pendingSample is a sample taken and not yet acknowledged.
type pendingSample struct {
	taken time.Time // with the monotonic reading, for latency
	msg   *agentv1.MetricSample
	sent  bool
}

// link is one sim's connection state during a phase. One goroutine samples,
// one sends; they share pending under mu.
type link struct {
	s   *sim
	t   target
	win window

	mu       sync.Mutex
	pending  []pendingSample
	sampling bool
	wake     chan struct{}
	drained  chan struct{} // closed when sampling stopped and nothing is pending
	seq      int

	// Counters, under mu.
	taken, sent, acked, dropped uint64
	ackedInWindow               uint64
	reconnects                  uint64
	lat                         []time.Duration
	lastErr                     error
}

func newLink(s *sim, t target, win window) *link {
	return &link{s: s, t: t, win: win, sampling: true, wake: make(chan struct{}, 1), drained: make(chan struct{})}
}

// run keeps the sim connected until ctx ends, reconnecting after failures
// as the real agent does; sampling starts after the first Welcome.
func (l *link) run(ctx context.Context, phase *phaseState) {
	started := false
	for ctx.Err() == nil {
		err := l.conn(ctx, func() {
			if !started {
				started = true
				phase.connected()
				go l.sampleLoop(ctx)
			}
		})
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.reconnects++
		l.lastErr = err
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second + mrand.N(time.Second)):
		}
	}
}

func (l *link) sampleLoop(ctx context.Context) {
	// A random phase within the second spreads the fleet like real nodes.
	select {
	case <-ctx.Done():
		return
	case <-time.After(mrand.N(time.Second)):
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if !l.sample() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one sample; it reports false once sampling has stopped.
func (l *link) sample() bool {
	now := time.Now()
	l.mu.Lock()
	if !l.sampling {
		l.mu.Unlock()
		return false
	}
	l.seq++
	msg := makeSample(now, l.seq)
	if len(l.pending) >= simMaxPending {
		l.pending = l.pending[1:]
		l.dropped++
	}
	l.pending = append(l.pending, pendingSample{taken: now, msg: msg})
	l.taken++
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

// stopSampling ends sampling; drained closes once every sample is acked.
func (l *link) stopSampling() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sampling = false
	l.checkDrained()
}

func (l *link) checkDrained() {
	if !l.sampling && len(l.pending) == 0 {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
	}
}

// conn runs one connection: Session with Hello, Welcome and heartbeats, and
// ReportMetrics with one batch in flight, like the real agent.
func (l *link) conn(parent context.Context, welcomed func()) error {
	tlsCfg, err := trust.ClientConfig(l.t.pin, "127.0.0.1", trust.NewHotCert(l.t.cert(l.s)))
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient("passthrough:///"+l.t.addr, dialOpts(tlsCfg)...)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	client := agentv1.NewAgentServiceClient(cc)
	session, err := client.Session(ctx)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	hello := &agentv1.Hello{AgentVersion: "loadgen", Capability: agent.Capability, Facts: l.s.facts(), MetricsSource: "proc", NodeId: l.s.nodeID}
	if err := session.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	first, err := session.Recv()
	if err != nil {
		return fmt.Errorf("wait for welcome: %w", err)
	}
	w := first.GetWelcome()
	if w == nil {
		return fmt.Errorf("no welcome: %v", first)
	}
	hb := w.GetHeartbeatInterval().AsDuration()
	if hb <= 0 {
		hb = 15 * time.Second
	}
	welcomed()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	// The writer is the only goroutine sending on the session after Hello.
	out := make(chan *agentv1.AgentMessage, 16)
	wg.Add(4)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-out:
				if err := session.Send(m); err != nil {
					cancel(fmt.Errorf("session send: %w", err))
					return
				}
			}
		}
	}()
	go func() { // session receiver
		defer wg.Done()
		for {
			m, err := session.Recv()
			if err != nil {
				cancel(fmt.Errorf("session receive: %w", err))
				return
			}
			switch k := m.GetKind().(type) {
			case *agentv1.ControllerMessage_Close:
				cancel(fmt.Errorf("controller closed the session: %s", k.Close.GetReason()))
				return
			case *agentv1.ControllerMessage_Command:
				// A metrics-only agent: every command is answered, as
				// unsupported, so the controller is not left waiting.
				res := &agentv1.CommandResult{Id: k.Command.GetId(), Error: &agentv1.CommandError{
					Code: agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, Message: "the load generator's simulated agent runs no commands"}}
				select {
				case out <- &agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Result{Result: res}}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() { // heartbeats
		defer wg.Done()
		t := time.NewTicker(hb)
		defer t.Stop()
		var seq uint64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				seq++
				select {
				case out <- &agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Heartbeat{Heartbeat: &agentv1.Heartbeat{Seq: seq, SentAt: timestamppb.New(now)}}}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		if err := l.metrics(ctx, client); err != nil {
			cancel(err)
		}
	}()
	<-ctx.Done()
	return context.Cause(ctx)
}

func (l *link) metrics(ctx context.Context, client agentv1.AgentServiceClient) error {
	stream, err := client.ReportMetrics(ctx)
	if err != nil {
		return fmt.Errorf("open metrics stream: %w", err)
	}
	for {
		l.mu.Lock()
		n := min(len(l.pending), simBatchSamples)
		batch := &agentv1.MetricsBatch{Samples: make([]*agentv1.MetricSample, n)}
		for i := range n {
			batch.Samples[i] = l.pending[i].msg
			if !l.pending[i].sent {
				l.pending[i].sent = true
				l.sent++
			}
		}
		l.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-l.wake:
				continue
			}
		}
		if err := stream.Send(batch); err != nil {
			return fmt.Errorf("send batch: %w", err)
		}
		ack, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("wait for ack: %w", err)
		}
		l.ack(ack.GetUpTo().AsTime(), time.Now())
	}
}

// ack drops every pending sample up to upTo and records its latency.
func (l *link) ack(upTo, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for ; i < len(l.pending); i++ {
		p := l.pending[i]
		if p.msg.GetTime().AsTime().After(upTo) {
			break
		}
		l.acked++
		if l.win.contains(now) {
			l.ackedInWindow++
		}
		if l.win.contains(p.taken) {
			l.lat = append(l.lat, now.Sub(p.taken))
		}
	}
	l.pending = l.pending[i:]
	l.checkDrained()
}

// makeSample builds a sample shaped like the real agent's on a small VM:
// four cores, three filesystems, two interfaces, one disk, two sensors.
func makeSample(t time.Time, seq int) *agentv1.MetricSample {
	f := func(base, spread float64) float64 { return base + mrand.Float64()*spread }
	const gib = 1 << 30
	return &agentv1.MetricSample{
		Time:         timestamppb.New(t),
		Source:       "proc",
		CpuPercent:   f(5, 20),
		PerCpu:       []float64{f(5, 20), f(5, 20), f(5, 20), f(5, 20)},
		Load1:        f(0.1, 1),
		Load5:        f(0.1, 1),
		Load15:       f(0.1, 1),
		MemTotal:     8 * gib,
		MemUsed:      uint64(f(2*gib, gib)),
		MemAvailable: uint64(f(4*gib, gib)),
		SwapTotal:    gib,
		SwapUsed:     uint64(f(0, 64<<20)),
		Filesystems: []*agentv1.Filesystem{
			{Mount: "/", Device: "/dev/vda1", FsType: "ext4", Size: 80 * gib, Used: uint64(f(20*gib, gib))},
			{Mount: "/boot", Device: "/dev/vda15", FsType: "vfat", Size: 124 << 20, Used: 12 << 20},
			{Mount: "/var/lib/docker", Device: "/dev/vdb", FsType: "xfs", Size: 200 * gib, Used: uint64(f(50*gib, gib))},
		},
		Interfaces: []*agentv1.Interface{
			{Name: "lo", RxBps: f(1e3, 1e4), TxBps: f(1e3, 1e4), RxTotal: uint64(seq) * 1e5, TxTotal: uint64(seq) * 1e5},
			{Name: "eth0", RxBps: f(1e5, 1e6), TxBps: f(1e5, 1e6), RxTotal: uint64(seq) * 1e6, TxTotal: uint64(seq) * 2e6},
		},
		DiskIo:        []*agentv1.DiskIO{{Name: "vda", ReadBps: f(0, 1e6), WriteBps: f(1e4, 1e6)}},
		UptimeSeconds: 86400 + uint64(seq),
		Processes:     uint32(f(120, 40)),
		Temperatures:  []*agentv1.Temperature{{Label: "Package id 0", Celsius: f(40, 15)}, {Label: "Core 0", Celsius: f(40, 15)}},
	}
}

// errNoAgents is returned when a phase has nothing to run.
var errNoAgents = errors.New("no simulated agents")
