package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	"github.com/gatehousehq/gatehouse/internal/nginxstatus"
	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"
	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestNginxStatusAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bind string
		port int
		want string
	}{
		{"", 80, "127.0.0.1:80"},
		{"0.0.0.0", 8080, "127.0.0.1:8080"},
		{"::", 80, "[::1]:80"},
		{"127.0.0.1", 8080, "127.0.0.1:8080"},
		{"10.0.0.5", 80, "10.0.0.5:80"},
		{"::1", 80, "[::1]:80"},
		{"2001:db8::7", 8080, "[2001:db8::7]:8080"},
		{"::ffff:10.0.0.5", 80, "[::ffff:10.0.0.5]:80"},
	} {
		if got := nginxStatusAddr(tc.bind, tc.port); got != tc.want {
			t.Errorf("nginxStatusAddr(%q, %d) = %q, want %q", tc.bind, tc.port, got, tc.want)
		}
	}
}

// syncBuffer is a log destination safe to read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// statusNginx starts a private nginx master whose http block holds the
// status block the controller renders, on 127.0.0.1:port, and returns a
// function that stops it (also run at cleanup). It skips where nginx is
// missing, unless in CI.
func statusNginx(t *testing.T, port int) (stop func()) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return nginxtest.Start(t, fmt.Sprintf(`    server {
        listen %s;
        server_name %s;
        server_tokens off;
        access_log off;
        allow 127.0.0.1;
        allow ::1;
        deny all;
        location = %s { stub_status; }
        location / { return 404; }
    }`, addr, nginxstatus.Host, nginxstatus.Path), addr)
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	return freeport.Get(t)
}

// samplingAgent is an agent that samples from /proc (its Glances address
// refuses connections) with nginx's status block expected on port (its
// current release has the block's file), logging to logs.
func samplingAgent(t *testing.T, port int, logs *syncBuffer) *Agent {
	t.Helper()
	a := samplingAgentWithout(t, port, logs)
	placeStatusBlock(t, a)
	return a
}

// placeStatusBlock gives the agent a current release holding the status
// block's file (its content does not matter to the agent).
func placeStatusBlock(t *testing.T, a *Agent) {
	t.Helper()
	p := filepath.Join(a.cfg.NginxDir, "current", filepath.FromSlash(nginxstatus.File))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("# status block\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// samplingAgentWithout is samplingAgent with no release at all.
func samplingAgentWithout(t *testing.T, port int, logs *syncBuffer) *Agent {
	t.Helper()
	cfg := Config{ControllerAddr: "127.0.0.1:1", CAPin: "sha256:" + strings.Repeat("ab", 32),
		StateDir: t.TempDir(), NginxDir: filepath.Join(t.TempDir(), "gatehouse"),
		GlancesURL: "http://127.0.0.1:1", NginxHTTPPort: port, NginxHTTPSPort: port + 1}
	if port == 65535 {
		cfg.NginxHTTPSPort = port - 1
	}
	a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}))
	if err != nil {
		t.Fatal(err)
	}
	a.interval.Store(int64(10 * time.Second))
	return a
}

// sample takes one sample and returns it as buffered for the controller.
func sample(t *testing.T, a *Agent) *agentv1.MetricSample {
	t.Helper()
	before := a.buf.Len()
	a.sampleOnce(context.Background())
	pending := a.buf.Pending(0)
	if len(pending) != before+1 {
		t.Fatalf("buffer holds %d samples after sampling, want %d", len(pending), before+1)
	}
	var m agentv1.MetricSample
	if err := proto.Unmarshal(pending[len(pending)-1].Data, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetSource() != metrics.SourceProc || m.GetTime() == nil || m.GetMemTotal() == 0 {
		t.Fatalf("sample lacks its /proc readings: %v", &m)
	}
	return &m
}

// Every sample carries nginx's counters while the status block answers and
// none while it does not; the log says so once per change, and samples
// buffered meanwhile keep what they were taken with.
func TestSamplesCarryNginxCounters(t *testing.T) {
	t.Parallel()
	port := freeLoopbackPort(t)
	logs := &syncBuffer{}
	a := samplingAgent(t, port, logs)
	const down, up = "nginx counters unavailable", "nginx counters readable again"

	// No nginx yet (no release with domains): samples without counters.
	for range 3 {
		if n := sample(t, a).GetNginx(); n != nil {
			t.Fatalf("sample carries nginx counters %v with nothing listening", n)
		}
	}
	if n := logs.count(down); n != 1 {
		t.Fatalf("logged %q %d times over three samples, want once:\n%s", down, n, logs.b.String())
	}

	stop := statusNginx(t, port)
	first := sample(t, a).GetNginx()
	if first == nil || first.GetActive() < 1 || first.GetWriting() < 1 || first.GetRequests() < 1 || first.GetAccepts() < 1 {
		t.Fatalf("first sample with nginx up: %v, want the reading's own connection counted", first)
	}
	if first.GetRequestsPerSecond() != 0 {
		t.Fatalf("first reading's rate %v, want 0", first.GetRequestsPerSecond())
	}
	const n = 5
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for range n {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	second := sample(t, a).GetNginx()
	if second == nil || second.GetRequests() < first.GetRequests()+n || second.GetRequestsPerSecond() <= 0 {
		t.Fatalf("after %d requests: %v then %v; want requests up by %d and a rate", n, first, second, n)
	}
	if c := logs.count(up); c != 1 {
		t.Fatalf("logged %q %d times, want once:\n%s", up, c, logs.b.String())
	}

	stop()
	if got := sample(t, a).GetNginx(); got != nil {
		t.Fatalf("sample carries nginx counters %v after nginx stopped", got)
	}
	if c := logs.count(down); c != 2 {
		t.Fatalf("logged %q %d times after nginx stopped, want twice in all:\n%s", down, c, logs.b.String())
	}

	// What was buffered is what was taken: counters where nginx answered.
	var with []bool
	for _, e := range a.buf.Pending(0) {
		var m agentv1.MetricSample
		if err := proto.Unmarshal(e.Data, &m); err != nil {
			t.Fatal(err)
		}
		with = append(with, m.GetNginx() != nil)
	}
	if want := []bool{false, false, false, true, true, false}; fmt.Sprint(with) != fmt.Sprint(want) {
		t.Fatalf("buffered samples with counters %v, want %v", with, want)
	}
}

// Without the status block in its current release the agent asks nothing
// on the HTTP port, which may belong to another web server; once a release
// brings the block, it reads.
func TestNoStatusBlockNoReading(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	a := samplingAgentWithout(t, l.Addr().(*net.TCPAddr).Port, &syncBuffer{})
	for range 3 {
		if n := sample(t, a).GetNginx(); n != nil {
			t.Fatalf("counters %v without a status block", n)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the agent connected %d times to a port without the status block", n)
	}
	placeStatusBlock(t, a)
	sample(t, a)
	if n := accepted.Load(); n != 1 {
		t.Fatalf("with the status block in place the agent connected %d times, want 1", n)
	}
}

// An nginx that accepts but never answers costs a sample its counters, not
// the sample.
func TestSampleWithHangingNginx(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	held := make(chan net.Conn, 16)
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c // never answered
		}
	}()
	t.Cleanup(func() {
		l.Close()
		conns.Wait()
		close(held)
		for c := range held {
			c.Close()
		}
	})
	logs := &syncBuffer{}
	a := samplingAgent(t, l.Addr().(*net.TCPAddr).Port, logs)
	if n := sample(t, a).GetNginx(); n != nil {
		t.Fatalf("sample carries nginx counters %v from a silent listener", n)
	}
	if c := logs.count("no answer from"); c != 1 {
		t.Fatalf("timeout logged %d times, want once:\n%s", c, logs.b.String())
	}
}
