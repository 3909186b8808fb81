package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent/trust"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// env is a real hub on loopback TCP with the in-memory store.
type env struct {
	t      *testing.T
	ca     *pki.CA
	store  *memStore
	ingest *memIngest
	cfg    hub.Config
	addr   string

	mu     sync.Mutex
	hub    *hub.Hub
	events []hub.Event
}

func newEnv(t *testing.T, mod func(*hub.Config)) *env {
	t.Helper()
	ca, err := pki.NewCA("test agents ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, store: newMemStore(), ingest: newMemIngest()}
	server, err := ca.IssueServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = hub.Config{
		CA:         ca,
		ServerCert: trust.NewHotCert(server),
		Store:      e.store,
		Ingest:     e.ingest,
		OnEvent: func(ev hub.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
		MetricsInterval: time.Second,
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	return e
}

// start runs a hub on e.addr (a fresh port the first time).
func (e *env) start() {
	e.t.Helper()
	addr := e.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = l.Addr().String()
	h, err := hub.New(e.cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{e.t}}))
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = h.Serve(l) }()
	e.mu.Lock()
	e.hub = h
	e.mu.Unlock()
	e.t.Cleanup(h.Stop)
}

func (e *env) current() *hub.Hub {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hub
}

func (e *env) eventCount(kind hub.EventKind, nodeID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Kind == kind && ev.NodeID == nodeID {
			n++
		}
	}
	return n
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// dial connects with the agent's pinned TLS configuration, presenting cert.
func (e *env) dial(pin string, cert *tls.Certificate) *grpc.ClientConn {
	e.t.Helper()
	cfg, err := trust.ClientConfig(pin, "127.0.0.1", trust.NewHotCert(cert))
	if err != nil {
		e.t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+e.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func newCSR(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, csr
}

func facts() *agentv1.HostFacts {
	return &agentv1.HostFacts{Hostname: "node-a", Os: "linux", Arch: "amd64", Kernel: "6.1.0", AgentVersion: "test", Addresses: []string{"127.0.0.1", "::1"}}
}

// enroll redeems token through the real Enroll RPC.
func (e *env) enroll(token string) (*tls.Certificate, string, error) {
	e.t.Helper()
	key, csr := newCSR(e.t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := agentv1.NewEnrollmentServiceClient(e.dial(e.ca.Pin(), nil)).Enroll(ctx, &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: facts()})
	if err != nil {
		return nil, "", err
	}
	return &tls.Certificate{Certificate: [][]byte{resp.GetCertificate()}, PrivateKey: key}, resp.GetNodeId(), nil
}

func (e *env) mustEnroll() (*tls.Certificate, string) {
	e.t.Helper()
	token, want := e.store.addToken(time.Hour)
	cert, nodeID, err := e.enroll(token)
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	if nodeID != want {
		e.t.Fatalf("enrolled as node %s, token was for %s", nodeID, want)
	}
	return cert, nodeID
}

// rawSession opens a Session as a hand-written agent and completes Hello.
type rawSession struct {
	stream agentv1.AgentService_SessionClient
	cancel context.CancelFunc
}

func (e *env) openSession(cert *tls.Certificate, claim string) (*rawSession, *agentv1.ControllerMessage, error) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	stream, err := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert)).Session(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	hello := &agentv1.Hello{AgentVersion: "test", Capability: 1, Facts: facts(), NodeId: claim, MetricsSource: "proc"}
	if err := stream.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Hello{Hello: hello}}); err != nil && !errors.Is(err, io.EOF) {
		cancel()
		return nil, nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return &rawSession{stream: stream, cancel: cancel}, first, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %v, want code %s containing %q", err, code, contains)
	}
}

func TestSessionCommandRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	s, first, err := e.openSession(cert, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	w := first.GetWelcome()
	if w == nil || w.GetMetricsInterval().AsDuration() != time.Second || w.GetHeartbeatInterval().AsDuration() != hub.DefaultHeartbeatInterval {
		t.Fatalf("first message %v, want welcome with the configured intervals", first)
	}
	h := e.current()
	waitFor(t, "node connected", func() bool { return h.Connected(nodeID) && e.store.isOnline(nodeID) })
	if e.eventCount(hub.EventOnline, nodeID) != 1 {
		t.Fatal("no online event")
	}

	// The hand-written agent answers commands: plugin fetches succeed, the
	// rest fail with a typed error.
	go func() {
		for {
			m, err := s.stream.Recv()
			if err != nil {
				return
			}
			c := m.GetCommand()
			if c == nil {
				continue
			}
			res := &agentv1.CommandResult{Id: c.GetId()}
			if p := c.GetFetchGlancesPlugin(); p != nil {
				res.Result = &agentv1.CommandResult_GlancesPlugin{GlancesPlugin: &agentv1.GlancesPluginResult{Json: []byte(`{"plugin":"` + p.GetName() + `"}`)}}
			} else {
				res.Error = &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, Message: "no"}
			}
			if err := s.stream.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Result{Result: res}}); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := &agentv1.Command{Kind: &agentv1.Command_FetchGlancesPlugin{FetchGlancesPlugin: &agentv1.FetchGlancesPlugin{Name: "cpu"}}}
	res, err := h.Send(ctx, nodeID, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.GetGlancesPlugin().GetJson()); got != `{"plugin":"cpu"}` {
		t.Fatalf("result %q", got)
	}
	if cmd.GetId() != "" {
		t.Fatal("Send modified the caller's command")
	}
	_, err = h.Send(ctx, nodeID, &agentv1.Command{Kind: &agentv1.Command_CheckNginxDrift{CheckNginxDrift: &agentv1.CheckNginxDrift{}}})
	var ce *hub.CommandError
	if !errors.As(err, &ce) || ce.Code != agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED {
		t.Fatalf("err = %v, want unsupported CommandError", err)
	}
	if _, err := h.Send(ctx, "999", cmd); !errors.Is(err, hub.ErrNotConnected) {
		t.Fatalf("send to unknown node: %v", err)
	}

	s.cancel()
	waitFor(t, "node offline", func() bool {
		return !h.Connected(nodeID) && !e.store.isOnline(nodeID) && e.eventCount(hub.EventOffline, nodeID) == 1
	})
}

func TestAgentServiceRequiresClientCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, nodeID := e.mustEnroll()
	_, _, err := e.openSession(nil, nodeID)
	wantCode(t, err, codes.Unauthenticated, "client certificate")

	client := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), nil))
	_, csr := newCSR(t)
	_, err = client.RenewCertificate(context.Background(), &agentv1.RenewCertificateRequest{Csr: csr})
	wantCode(t, err, codes.Unauthenticated, "client certificate")

	ms, err := client.ReportMetrics(context.Background())
	if err == nil {
		_, err = ms.Recv()
	}
	wantCode(t, err, codes.Unauthenticated, "client certificate")
}

func TestForeignCACertificateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, nodeID := e.mustEnroll()
	foreign, err := pki.NewCA("foreign", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, csr := newCSR(t)
	leaf, err := foreign.SignNode(csr, nodeID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.openSession(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}, nodeID)
	if err == nil {
		t.Fatal("certificate from a foreign CA accepted")
	}
	if e.current().Connected(nodeID) {
		t.Fatal("node connected with a foreign certificate")
	}
}

func TestExpiredCertificateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	_, nodeID := e.mustEnroll()
	key, csr := newCSR(t)
	leaf, err := e.ca.SignNode(csr, nodeID, time.Nanosecond) // ends within the current second
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordCertificate(context.Background(), nodeID, leaf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "certificate to expire", func() bool { return time.Now().After(leaf.NotAfter) })
	_, _, err = e.openSession(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}, nodeID)
	if err == nil {
		t.Fatal("expired certificate accepted")
	}
	if e.current().Connected(nodeID) {
		t.Fatal("node connected with an expired certificate")
	}
}

func TestRevocationClosesLiveSessionAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	s, _, err := e.openSession(cert, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert)).ReportMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Prove the metrics stream is live before revoking.
	if err := ms.Send(&agentv1.MetricsBatch{Samples: []*agentv1.MetricSample{{Time: timestamppb.Now(), Source: "proc"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Recv(); err != nil {
		t.Fatal(err)
	}
	h := e.current()
	waitFor(t, "session", func() bool { return h.Connected(nodeID) })

	e.store.revokeAll(nodeID)
	h.Disconnect(nodeID, "certificate revoked")

	sawClose := false
	for {
		m, err := s.stream.Recv()
		if err != nil {
			break
		}
		if c := m.GetClose(); c != nil && c.GetReason() == "certificate revoked" {
			sawClose = true
		}
	}
	if !sawClose {
		t.Fatal("session ended without a Close naming the reason")
	}
	if _, err := ms.Recv(); status.Code(err) != codes.Aborted {
		t.Fatalf("metrics stream after revocation: %v, want aborted", err)
	}
	waitFor(t, "offline", func() bool { return !h.Connected(nodeID) })
	_, _, err = e.openSession(cert, nodeID)
	wantCode(t, err, codes.PermissionDenied, "revoked")
}

func TestDeletedNodeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	e.store.deleteNode(nodeID)
	_, _, err := e.openSession(cert, nodeID)
	wantCode(t, err, codes.PermissionDenied, "unknown")
}

func TestEnrollmentTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	t.Run("reused", func(t *testing.T) {
		token, _ := e.store.addToken(time.Hour)
		if _, _, err := e.enroll(token); err != nil {
			t.Fatal(err)
		}
		_, _, err := e.enroll(token)
		wantCode(t, err, codes.PermissionDenied, "unknown, used or expired")
	})
	t.Run("expired", func(t *testing.T) {
		token, _ := e.store.addToken(-time.Second)
		_, _, err := e.enroll(token)
		wantCode(t, err, codes.PermissionDenied, "unknown, used or expired")
	})
	t.Run("unknown", func(t *testing.T) {
		token, _, _ := hub.NewToken()
		_, _, err := e.enroll(token)
		wantCode(t, err, codes.PermissionDenied, "unknown, used or expired")
	})
	t.Run("malformed", func(t *testing.T) {
		_, _, err := e.enroll("not-a-token")
		wantCode(t, err, codes.InvalidArgument, "43 base64url")
	})
	t.Run("bad csr keeps the token", func(t *testing.T) {
		token, _ := e.store.addToken(time.Hour)
		ctx := context.Background()
		_, err := agentv1.NewEnrollmentServiceClient(e.dial(e.ca.Pin(), nil)).Enroll(ctx, &agentv1.EnrollRequest{Token: token, Csr: []byte("x"), Facts: facts()})
		wantCode(t, err, codes.InvalidArgument, "csr")
		if _, _, err := e.enroll(token); err != nil {
			t.Fatalf("token was spent by a refused request: %v", err)
		}
	})
	t.Run("hostile facts", func(t *testing.T) {
		token, _ := e.store.addToken(time.Hour)
		_, csr := newCSR(t)
		f := facts()
		f.Hostname = "a;rm -rf /"
		_, err := agentv1.NewEnrollmentServiceClient(e.dial(e.ca.Pin(), nil)).Enroll(context.Background(), &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: f})
		wantCode(t, err, codes.InvalidArgument, "hostname")
	})
	t.Run("pin mismatch", func(t *testing.T) {
		other, _ := pki.NewCA("other", time.Hour)
		token, _ := e.store.addToken(time.Hour)
		_, csr := newCSR(t)
		_, err := agentv1.NewEnrollmentServiceClient(e.dial(other.Pin(), nil)).Enroll(context.Background(), &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: facts()})
		if err == nil || !strings.Contains(err.Error(), "ca pin") {
			t.Fatalf("enroll with a wrong pin: %v", err)
		}
		if _, _, err := e.enroll(token); err != nil {
			t.Fatalf("token was spent over an unpinned connection: %v", err)
		}
	})
}

func TestSameTokenTwoAgentsExactlyOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	token, _ := e.store.addToken(time.Hour)
	const agents = 2
	errs := make(chan error, agents)
	start := make(chan struct{})
	for range agents {
		go func() {
			<-start
			_, _, err := e.enroll(token)
			errs <- err
		}()
	}
	close(start)
	wins, refused := 0, 0
	for range agents {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case status.Code(err) == codes.PermissionDenied:
			refused++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 || refused != 1 {
		t.Fatalf("wins=%d refused=%d, want exactly one of each", wins, refused)
	}
}

func TestHelloClaimingAnotherNodeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	certA, nodeA := e.mustEnroll()
	_, nodeB := e.mustEnroll()
	_, _, err := e.openSession(certA, nodeB)
	wantCode(t, err, codes.PermissionDenied, "certificate names node")
	if e.current().Connected(nodeA) || e.current().Connected(nodeB) {
		t.Fatal("a refused hello left a session registered")
	}
}

func TestSilentAgentDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *hub.Config) { c.HeartbeatInterval = 100 * time.Millisecond })
	cert, nodeID := e.mustEnroll()
	s, _, err := e.openSession(cert, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	// Never send a heartbeat: the hub must end the stream.
	for {
		_, err = s.stream.Recv()
		if err != nil {
			break
		}
	}
	wantCode(t, err, codes.DeadlineExceeded, "no heartbeat")
	waitFor(t, "offline", func() bool { return !e.current().Connected(nodeID) })
}

func TestMetricsAckedOnlyAfterIngest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	client := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert))
	base := time.Now().Truncate(time.Second)
	batch := &agentv1.MetricsBatch{}
	for i := range 3 {
		batch.Samples = append(batch.Samples, &agentv1.MetricSample{Time: timestamppb.New(base.Add(time.Duration(i) * time.Second)), Source: "proc", CpuPercent: float64(i)})
	}

	e.ingest.setFail(errors.New("disk full"))
	ms, err := client.ReportMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Send(batch); err != nil {
		t.Fatal(err)
	}
	_, err = ms.Recv()
	wantCode(t, err, codes.Unavailable, "cannot store metrics")

	e.ingest.setFail(nil)
	ms, err = client.ReportMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Send(batch); err != nil {
		t.Fatal(err)
	}
	ack, err := ms.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !ack.GetUpTo().AsTime().Equal(base.Add(2*time.Second)) || ack.GetStored() != 3 {
		t.Fatalf("ack %v, want up_to the last sample and 3 stored", ack)
	}
	if e.ingest.count(nodeID) != 3 {
		t.Fatalf("stored %d samples", e.ingest.count(nodeID))
	}

	// Out-of-order and hostile batches are refused, not stored.
	bad := []*agentv1.MetricsBatch{
		{Samples: []*agentv1.MetricSample{{Time: timestamppb.New(base.Add(5 * time.Second))}, {Time: timestamppb.New(base)}}},
		{Samples: []*agentv1.MetricSample{{Source: "proc"}}},
		{Samples: []*agentv1.MetricSample{{Time: timestamppb.Now(), Filesystems: []*agentv1.Filesystem{{Mount: "/\x00"}}}}},
	}
	for i, b := range bad {
		ms, err := client.ReportMetrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := ms.Send(b); err != nil {
			t.Fatal(err)
		}
		if _, err := ms.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("bad batch %d: %v, want invalid argument", i, err)
		}
	}
	if e.ingest.count(nodeID) != 3 {
		t.Fatalf("refused batches were stored: %d samples", e.ingest.count(nodeID))
	}
}

// A node sending samples faster than its budget is paced, not refused: the
// batch past the burst is acknowledged only once the rate allows it, and a
// second stream of the same node shares the budget.
func TestMetricsPacedPerNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *hub.Config) { c.MaxBatch, c.SampleBurst, c.SampleRate = 20, 20, 10 })
	cert, nodeID := e.mustEnroll()
	client := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert))
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	next := 0
	batch := func(n int) *agentv1.MetricsBatch {
		b := &agentv1.MetricsBatch{}
		for range n {
			b.Samples = append(b.Samples, &agentv1.MetricSample{Time: timestamppb.New(base.Add(time.Duration(next) * time.Millisecond)), Source: "proc"})
			next++
		}
		return b
	}
	type result struct {
		ack *agentv1.MetricsAck
		err error
	}
	send := func(ms agentv1.AgentService_ReportMetricsClient, b *agentv1.MetricsBatch) <-chan result {
		if err := ms.Send(b); err != nil {
			t.Fatal(err)
		}
		out := make(chan result, 1)
		go func() {
			ack, err := ms.Recv()
			out <- result{ack, err}
		}()
		return out
	}
	open := func() agentv1.AgentService_ReportMetricsClient {
		ms, err := client.ReportMetrics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	a, b := open(), open()
	if r := <-send(a, batch(20)); r.err != nil || r.ack.GetStored() != 20 {
		t.Fatalf("the burst: %v, %v", r.ack, r.err)
	}
	// 20 more need two seconds at 10 a second, and 10 on the other stream
	// one more.
	pendingA, pendingB := send(a, batch(20)), send(b, batch(10))
	select {
	case r := <-pendingA:
		t.Fatalf("a batch past the burst was acknowledged at once: %v, %v", r.ack, r.err)
	case r := <-pendingB:
		t.Fatalf("the other stream's batch was acknowledged at once: %v, %v", r.ack, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	for name, p := range map[string]<-chan result{"first": pendingA, "second": pendingB} {
		select {
		case r := <-p:
			if r.err != nil {
				t.Fatalf("%s stream: %v", name, r.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s stream's paced batch was never acknowledged", name)
		}
	}
	if n := e.ingest.count(nodeID); n != 50 {
		t.Fatalf("stored %d samples, want all 50", n)
	}
}

func TestRenewCertificateOverMTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	key, csr := newCSR(t)
	resp, err := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert)).RenewCertificate(context.Background(), &agentv1.RenewCertificateRequest{Csr: csr})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := pki.NodeID(leaf); err != nil || id != nodeID {
		t.Fatalf("renewed certificate names %q (%v), want %s", id, err, nodeID)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatal("renewed certificate is not for the new key")
	}
	if e.store.certCount(nodeID) != 2 {
		t.Fatalf("store has %d certificates, want 2", e.store.certCount(nodeID))
	}
	if _, _, err := e.openSession(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}, nodeID); err != nil {
		t.Fatalf("session with renewed certificate: %v", err)
	}
}

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	tok, hash, err := hub.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	got, err := hub.HashToken(tok)
	if err != nil || got != hash {
		t.Fatalf("HashToken(NewToken) = %x, %v; want %x", got, err, hash)
	}
	tok2, _, _ := hub.NewToken()
	if tok == tok2 || len(tok) != 43 {
		t.Fatalf("tokens %q %q", tok, tok2)
	}
	for _, bad := range []string{"", tok[:42], tok + "A", strings.Repeat("!", 43)} {
		if _, err := hub.HashToken(bad); err == nil {
			t.Errorf("HashToken(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ca, _ := pki.NewCA("ca", time.Hour)
	srv, _ := ca.IssueServer([]string{"127.0.0.1"})
	ok := hub.Config{CA: ca, ServerCert: trust.NewHotCert(srv), Store: newMemStore(), Ingest: newMemIngest()}
	tests := []struct {
		name string
		mod  func(*hub.Config)
		want string
	}{
		{"ok", func(*hub.Config) {}, ""},
		{"no ca", func(c *hub.Config) { c.CA = nil }, "CA"},
		{"empty server cert", func(c *hub.Config) { c.ServerCert = trust.NewHotCert(nil) }, "ServerCert"},
		{"no store", func(c *hub.Config) { c.Store = nil }, "Store"},
		{"no ingest", func(c *hub.Config) { c.Ingest = nil }, "Ingest"},
		{"lifetime", func(c *hub.Config) { c.CertLifetime = time.Millisecond }, "CertLifetime"},
		{"interval", func(c *hub.Config) { c.MetricsInterval = 2 * time.Hour }, "MetricsInterval"},
		{"sample rate", func(c *hub.Config) { c.SampleRate = -1 }, "SampleRate"},
		{"burst below a batch", func(c *hub.Config) { c.MaxBatch, c.SampleBurst = 500, 100 }, "SampleBurst"},
		{"burst follows a large batch", func(c *hub.Config) { c.MaxBatch = 20000 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			_, err := hub.New(c, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

// TestRevocationInTheStoreAloneEndsTheSession: a revocation recorded by another
// process (the CLI, a second controller) reaches no Disconnect call; the hub's
// periodic recheck ends the session anyway.
func TestRevocationInTheStoreAloneEndsTheSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *hub.Config) { c.HeartbeatInterval = 100 * time.Millisecond })
	cert, nodeID := e.mustEnroll()
	s, _, err := e.openSession(cert, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the session alive with heartbeats so only revocation can end it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if s.stream.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Heartbeat{Heartbeat: &agentv1.Heartbeat{SentAt: timestamppb.Now()}}}) != nil {
					return
				}
			}
		}
	}()
	h := e.current()
	waitFor(t, "session", func() bool { return h.Connected(nodeID) })
	time.Sleep(600 * time.Millisecond) // several rechecks pass while the certificate is good
	if !h.Connected(nodeID) {
		t.Fatal("a session with a valid certificate was dropped")
	}
	e.store.revokeAll(nodeID)
	for {
		if _, err = s.stream.Recv(); err != nil {
			break
		}
	}
	wantCode(t, err, codes.PermissionDenied, "revoked")
	waitFor(t, "offline", func() bool { return !h.Connected(nodeID) })
}

// TestMetricsBatchWithImpossibleNumbersRefused: the metrics writer stores the
// batches of many nodes in one transaction, and SQLite turns NaN into NULL, so
// one hostile agent's NaN would fail every node's write; infinities and
// negative rates are no better. Such batches are refused before Ingest.
func TestMetricsBatchWithImpossibleNumbersRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	client := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert))
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		mod  func(s *agentv1.MetricSample)
		want string
	}{
		{"nan cpu", func(s *agentv1.MetricSample) { s.CpuPercent = nan }, "cpu_percent"},
		{"cpu above 100", func(s *agentv1.MetricSample) { s.CpuPercent = 100.5 }, "cpu_percent"},
		{"negative per cpu", func(s *agentv1.MetricSample) { s.PerCpu = []float64{10, -1} }, "per_cpu[1]"},
		{"infinite load", func(s *agentv1.MetricSample) { s.Load5 = inf }, "load5"},
		{"negative load", func(s *agentv1.MetricSample) { s.Load15 = -0.5 }, "load15"},
		{"nan rx rate", func(s *agentv1.MetricSample) {
			s.Interfaces = []*agentv1.Interface{{Name: "eth0", RxBps: nan}}
		}, "rx_bps"},
		{"infinite tx rate", func(s *agentv1.MetricSample) {
			s.Interfaces = []*agentv1.Interface{{Name: "eth0", TxBps: -inf}}
		}, "tx_bps"},
		{"negative disk rate", func(s *agentv1.MetricSample) {
			s.DiskIo = []*agentv1.DiskIO{{Name: "sda", WriteBps: -1}}
		}, "write_bps"},
		{"nan disk rate", func(s *agentv1.MetricSample) {
			s.DiskIo = []*agentv1.DiskIO{{Name: "sda", ReadBps: nan}}
		}, "read_bps"},
		{"nan temperature", func(s *agentv1.MetricSample) {
			s.Temperatures = []*agentv1.Temperature{{Label: "cpu", Celsius: nan}}
		}, "celsius"},
		{"nan nginx rate", func(s *agentv1.MetricSample) {
			s.Nginx = &agentv1.NginxStatus{RequestsPerSecond: nan}
		}, "nginx.requests_per_second"},
		{"negative nginx rate", func(s *agentv1.MetricSample) {
			s.Nginx = &agentv1.NginxStatus{RequestsPerSecond: -1}
		}, "nginx.requests_per_second"},
		{"infinite temperature", func(s *agentv1.MetricSample) {
			s.Temperatures = []*agentv1.Temperature{{Label: "cpu", Celsius: inf}}
		}, "celsius"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &agentv1.MetricSample{Time: timestamppb.Now(), Source: "proc", CpuPercent: 5}
			tc.mod(s)
			ms, err := client.ReportMetrics(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := ms.Send(&agentv1.MetricsBatch{Samples: []*agentv1.MetricSample{s}}); err != nil {
				t.Fatal(err)
			}
			_, err = ms.Recv()
			wantCode(t, err, codes.InvalidArgument, tc.want)
		})
	}
	if n := e.ingest.count(nodeID); n != 0 {
		t.Fatalf("refused samples were stored: %d", n)
	}

	// Below-zero temperatures and an idle machine's zeros are real readings.
	ok := &agentv1.MetricSample{Time: timestamppb.Now(), Source: "proc", PerCpu: []float64{0, 100},
		Temperatures: []*agentv1.Temperature{{Label: "outdoor", Celsius: -20}}}
	ms, err := client.ReportMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Send(&agentv1.MetricsBatch{Samples: []*agentv1.MetricSample{ok}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Recv(); err != nil {
		t.Fatalf("plausible sample refused: %v", err)
	}
}

// TestHelloFieldsValidated: every Hello field the hub logs or the store
// writes is checked first, and a refused value is not echoed in full.
func TestHelloFieldsValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	huge := strings.Repeat("9", 1<<20)
	tests := []struct {
		name string
		mod  func(h *agentv1.Hello)
		code codes.Code
		want string
	}{
		{"agent version with a newline", func(h *agentv1.Hello) { h.AgentVersion = "1.0\nlevel=ERROR forged" }, codes.InvalidArgument, "agent version"},
		{"agent version of 1 MiB", func(h *agentv1.Hello) { h.AgentVersion = huge }, codes.InvalidArgument, "agent version"},
		{"node id of 1 MiB", func(h *agentv1.Hello) { h.NodeId = huge }, codes.PermissionDenied, "certificate names node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert)).Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hello := &agentv1.Hello{AgentVersion: "test", Capability: 1, Facts: facts(), NodeId: nodeID, MetricsSource: "proc"}
			tc.mod(hello)
			if err := stream.Send(&agentv1.AgentMessage{Kind: &agentv1.AgentMessage_Hello{Hello: hello}}); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			wantCode(t, err, tc.code, tc.want)
			if n := len(status.Convert(err).Message()); n > 1024 {
				t.Fatalf("refusal echoes %d bytes of the agent's input", n)
			}
			if e.store.isOnline(nodeID) || e.current().Connected(nodeID) {
				t.Fatal("a refused hello was recorded")
			}
		})
	}
}

// TestEnrollWithUnacceptableKeyKeepsTheToken: the CA signs only ECDSA P-256,
// P-384 and Ed25519 keys; a request with another key is refused before the
// single-use token is spent on it.
func TestEnrollWithUnacceptableKeyKeepsTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  any
		want string
	}{
		{"rsa", rsaKey, "key type"},
		{"ecdsa p-521", p521, "curve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			token, _ := e.store.addToken(time.Hour)
			_, err = agentv1.NewEnrollmentServiceClient(e.dial(e.ca.Pin(), nil)).Enroll(context.Background(), &agentv1.EnrollRequest{Token: token, Csr: csr, Facts: facts()})
			wantCode(t, err, codes.InvalidArgument, tc.want)
			if _, _, err := e.enroll(token); err != nil {
				t.Fatalf("token was spent by a refused request: %v", err)
			}
		})
	}
}

// TestMetricsOutsideTheClockWindowDropped: a sample dated at or before the
// Unix epoch, or well ahead of the controller's clock, comes from a broken
// clock or a hostile agent. A future one would stay the node's "latest"
// sample and outlive every retention window. Such samples are acknowledged,
// so the agent lets go of them, but never stored.
func TestMetricsOutsideTheClockWindowDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cert, nodeID := e.mustEnroll()
	client := agentv1.NewAgentServiceClient(e.dial(e.ca.Pin(), cert))
	now := time.Now()
	good := now.Add(-time.Minute)
	batches := []struct {
		name   string
		times  []time.Time
		stored uint32
	}{
		{"year 9999", []time.Time{good, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, 1},
		{"a day ahead", []time.Time{now.Add(24 * time.Hour)}, 0},
		{"the epoch", []time.Time{time.Unix(0, 0), good.Add(time.Second)}, 1},
		{"before the epoch", []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), good.Add(2 * time.Second)}, 1},
	}
	for _, b := range batches {
		ms, err := client.ReportMetrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		batch := &agentv1.MetricsBatch{}
		for _, ts := range b.times {
			batch.Samples = append(batch.Samples, &agentv1.MetricSample{Time: timestamppb.New(ts), Source: "proc"})
		}
		if err := ms.Send(batch); err != nil {
			t.Fatal(err)
		}
		ack, err := ms.Recv()
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if last := b.times[len(b.times)-1]; !ack.GetUpTo().AsTime().Equal(last) || ack.GetStored() != b.stored {
			t.Fatalf("%s: ack %v, want up_to %v and %d stored", b.name, ack, last, b.stored)
		}
	}
	got := e.ingest.times(nodeID)
	want := []time.Time{good, good.Add(time.Second), good.Add(2 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("stored %v, want %v", got, want)
		}
	}
}

func TestValidateFacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(f *agentv1.HostFacts)
		want string // "" for accepted
	}{
		{"ok", func(*agentv1.HostFacts) {}, ""},
		{"ipv4 and ipv6", func(f *agentv1.HostFacts) { f.Addresses = []string{"10.0.0.1", "fe80::1", "::ffff:10.0.0.1"} }, ""},
		{"missing", nil, "missing"},
		{"hostname with a space", func(f *agentv1.HostFacts) { f.Hostname = "a b" }, "hostname"},
		{"kernel with a newline", func(f *agentv1.HostFacts) { f.Kernel = "6.1\nforged" }, "kernel"},
		{"not an address", func(f *agentv1.HostFacts) { f.Addresses = []string{"localhost"} }, "addresses"},
		// The agent reports net.IP strings, which never carry a zone; a zone
		// is free text of any length and bytes, NUL included.
		{"zone with a newline", func(f *agentv1.HostFacts) { f.Addresses = []string{"fe80::1%eth0\n<b>"} }, "addresses"},
		{"zone with nul", func(f *agentv1.HostFacts) { f.Addresses = []string{"fe80::1%\x00"} }, "addresses"},
		{"zone of 100 kB", func(f *agentv1.HostFacts) { f.Addresses = []string{"fe80::1%" + strings.Repeat("a", 100000)} }, "addresses"},
		{"too many addresses", func(f *agentv1.HostFacts) { f.Addresses = make([]string, 257) }, "addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f *agentv1.HostFacts
			if tc.mod != nil {
				f = facts()
				tc.mod(f)
			}
			err := hub.ValidateFacts(f)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("error echoes %d bytes of input", len(err.Error()))
			}
		})
	}
}
