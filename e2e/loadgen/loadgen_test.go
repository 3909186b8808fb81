package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehousehq/gatehouse/agent/trust"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestParseStatTicks(t *testing.T) {
	t.Parallel()
	tail := " S 1 2 3 4 5 6 7 8 9 10 1234 567 0 0 20 0 1 0 100 2000 300"
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr string
	}{
		{"plain", "42 (gatehouse)" + tail, 1801, ""},
		{"name with spaces and parens", "42 (a) b (c d)" + tail, 1801, ""},
		{"no command name", "42 gatehouse S 1 2", 0, "no closing parenthesis"},
		{"truncated", "42 (x) S 1 2 3", 0, "want at least 13"},
		{"bad utime", "42 (x) S 1 2 3 4 5 6 7 8 9 10 x 567", 0, "utime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatTicks([]byte(tc.stat))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		status         string
		rss, hwm, anon uint64
		wantErrSubstr  string
	}{
		{"all three", "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    2048 kB\n", 10240, 20480, 2048, ""},
		{"zombie has none", "Name:\tx\nState:\tZ (zombie)\n", 0, 0, 0, "missing"},
		{"no RssAnon", "VmHWM:\t1 kB\nVmRSS:\t1 kB\n", 0, 0, 0, "missing"},
		{"garbage", "VmRSS:\tlots kB\nVmHWM:\t1 kB\nRssAnon:\t1 kB\n", 0, 0, 0, "VmRSS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rss, hwm, anon, err := parseStatusMem([]byte(tc.status))
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil || rss != tc.rss || hwm != tc.hwm || anon != tc.anon {
				t.Fatalf("got %d, %d, %d, %v; want %d, %d, %d", rss, hwm, anon, err, tc.rss, tc.hwm, tc.anon)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	t.Parallel()
	s, err := readProc(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.rssKB == 0 || s.hwmKB < s.rssKB || s.anonKB == 0 || s.anonKB > s.rssKB {
		t.Fatalf("implausible memory reading: rss %d kB, hwm %d kB, anon %d kB", s.rssKB, s.hwmKB, s.anonKB)
	}
}

func TestSummarizeUsage(t *testing.T) {
	t.Parallel()
	at := time.Unix(1000, 0)
	samples := []procSample{
		{at: at, ticks: 100, rssKB: 1024, hwmKB: 1024, anonKB: 512},
		{at: at.Add(5 * time.Second), ticks: 150, rssKB: 4096, hwmKB: 8192, anonKB: 3072},
		{at: at.Add(10 * time.Second), ticks: 200, rssKB: 2048, hwmKB: 8192, anonKB: 1024},
	}
	u, err := summarize(samples)
	if err != nil {
		t.Fatal(err)
	}
	// 100 ticks = 1 s of CPU over 10 s of wall time.
	if u.CPUPercent != 10 || u.PeakRSSMB != 8 || u.SteadyRSSMB != 4 || u.SteadyAnonMB != 3 || u.Seconds != 10 {
		t.Fatalf("got %+v", u)
	}
	if _, err := summarize(samples[:1]); err == nil {
		t.Fatal("one reading must not give a usage")
	}
}

func TestSummarizeLatency(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarizeLatency(d)
	want := latencySummary{Count: 100, P50ms: 50, P95ms: 95, P99ms: 99, Maxms: 100}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if one := summarizeLatency([]time.Duration{7 * time.Millisecond}); one.P50ms != 7 || one.P99ms != 7 {
		t.Fatalf("single value: %+v", one)
	}
	if empty := summarizeLatency(nil); empty.Count != 0 {
		t.Fatalf("empty: %+v", empty)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults with binaries", []string{"-gatehouse", "/bin/g", "-agent", "/bin/a"}, ""},
		{"no controller", []string{"-agent", "/bin/a"}, "-gatehouse: path of the controller binary is required"},
		{"agent phase needs the agent", []string{"-gatehouse", "/bin/g"}, "-agent: path of the agent binary is required"},
		{"agent phase skipped", []string{"-gatehouse", "/bin/g", "-agent-duration", "0"}, ""},
		{"too many agents", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "-agents", "50000"}, "-agents: 50000 must be between 1 and 20000"},
		{"short window", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "-duration", "1s"}, "-duration: 1s must be at least 5s"},
		{"negative ramp", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "-ramp", "-1s"}, "-ramp: -1s must not be negative"},
		{"hostile env name", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "-agent-env", "LD_PRELOAD;x=1"}, "-agent-env:"},
		{"env without value", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "-agent-env", "GOGC"}, "-agent-env:"},
		{"stray argument", []string{"-gatehouse", "/bin/g", "-agent-duration", "0", "now"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// startBare runs the baseline server in process on loopback and returns its
// address and CA.
func startBare(t *testing.T) (string, *bareCA) {
	t.Helper()
	ca, err := newBareCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.writeServerFiles(dir); err != nil {
		t.Fatal(err)
	}
	// The server runs until its stdin closes, as when the parent ends.
	stdinR, stdinW := io.Pipe()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runBareServer(context.Background(), dir, "127.0.0.1:0", stdinR, pw) }()
	addr, err := scanReady(pr)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		stdinW.Close()
		if err := <-done; err != nil {
			t.Errorf("bare server: %v", err)
		}
	})
	return addr, ca
}

func TestPhaseAgainstBareServerAcksEverySample(t *testing.T) {
	t.Parallel()
	addr, ca := startBare(t)
	var sims []*sim
	certs := map[*sim]*tls.Certificate{}
	for i := range 5 {
		s, err := newSim("sim-" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		s.nodeID = strconv.Itoa(i + 1)
		if certs[s], err = ca.issue(s.key, s.nodeID); err != nil {
			t.Fatal(err)
		}
		sims = append(sims, s)
	}
	tgt := target{addr: addr, pin: ca.pin(), cert: func(s *sim) *tls.Certificate { return certs[s] }}
	res, err := runPhase(context.Background(), sims, tgt, phaseConfig{Name: "bare", Duration: 3 * time.Second, Drain: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != len(sims) {
		t.Errorf("connected %d of %d", res.Connected, len(sims))
	}
	if res.Taken == 0 || res.Sent != res.Taken || res.Acked != res.Sent || res.Lost != 0 {
		t.Errorf("taken %d, sent %d, acked %d, lost %d: every sample must be sent and acked", res.Taken, res.Sent, res.Acked, res.Lost)
	}
	if res.Latency.Count == 0 {
		t.Error("no latency recorded in the window")
	}
	var perNode uint64
	for _, s := range sims {
		if res.ackedPerNodeID[s.nodeID] == 0 {
			t.Errorf("node %s: nothing acked", s.nodeID)
		}
		perNode += res.ackedPerNodeID[s.nodeID]
	}
	if perNode != res.Acked {
		t.Errorf("per-node acks sum to %d, total %d", perNode, res.Acked)
	}
	if res.Server != nil || res.Loadgen == nil || res.Loadgen.Seconds <= 0 {
		t.Errorf("usage: server %+v, loadgen %+v", res.Server, res.Loadgen)
	}
}

func TestBareServerRefusesClientsWithoutCertificate(t *testing.T) {
	t.Parallel()
	addr, ca := startBare(t)
	tlsCfg, err := trust.ClientConfig(ca.pin(), "127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, dialOpts(tlsCfg)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := agentv1.NewAgentServiceClient(cc).ReportMetrics(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("got %v, want Unauthenticated", err)
	}
}

func TestCheckDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE metric_samples (id integer PRIMARY KEY, server_id integer NOT NULL, ts integer NOT NULL)",
		"INSERT INTO metric_samples (server_id, ts) VALUES (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (9, 1)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	tests := []struct {
		name       string
		acked      map[string]uint64
		mismatched int
		rows       uint64
	}{
		{"all stored", map[string]uint64{"1": 3, "2": 2}, 0, 5},
		{"one short", map[string]uint64{"1": 4, "2": 2}, 1, 5},
		{"none stored", map[string]uint64{"1": 3, "3": 1}, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			real := &agentFigures{serverID: 9}
			c, err := checkDatabase(context.Background(), path, tc.acked, real)
			if err != nil {
				t.Fatal(err)
			}
			if c.Mismatched != tc.mismatched || c.Rows != tc.rows || (tc.mismatched > 0) != (c.Example != "") {
				t.Fatalf("got %+v", c)
			}
			if real.StoredRows != 1 {
				t.Fatalf("real agent rows %d, want 1", real.StoredRows)
			}
		})
	}
}

func TestParseEnvList(t *testing.T) {
	t.Parallel()
	got, err := parseEnvList("GOGC=50,GOMEMLIMIT=8MiB")
	if err != nil || len(got) != 2 || got[1] != "GOMEMLIMIT=8MiB" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"=1", "A B=1", "$(x)=1", "X"} {
		if _, err := parseEnvList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDescribeCommandHidesBuildPaths(t *testing.T) {
	t.Parallel()
	got := describeCommand([]string{"-gatehouse", "/tmp/x/bin/gatehouse", "-agent=/tmp/x/gatehouse-agent", "-agents", "200", "-workdir", "/var/tmp/w"})
	want := "loadgen -gatehouse gatehouse -agent gatehouse-agent -agents 200 -workdir w"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// commandServer welcomes a session, sends one command and hands the
// agent's answer to results.
type commandServer struct {
	agentv1.UnimplementedAgentServiceServer
	results chan *agentv1.CommandResult
}

func (c *commandServer) Session(stream agentv1.AgentService_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	for _, m := range []*agentv1.ControllerMessage{
		{Kind: &agentv1.ControllerMessage_Welcome{Welcome: &agentv1.Welcome{}}},
		{Kind: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{Id: "cmd-1",
			Kind: &agentv1.Command_CheckNginxDrift{CheckNginxDrift: &agentv1.CheckNginxDrift{}}}}},
	} {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return nil
		}
		if r := m.GetResult(); r != nil {
			c.results <- r
		}
	}
}

func TestSimAnswersCommandsAsUnsupported(t *testing.T) {
	t.Parallel()
	ca, err := newBareCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.writeServerFiles(dir); err != nil {
		t.Fatal(err)
	}
	svc := &commandServer{results: make(chan *agentv1.CommandResult, 1)}
	srv, err := newBareGRPC(dir, svc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	s, err := newSim("sim-cmd")
	if err != nil {
		t.Fatal(err)
	}
	s.nodeID = "7"
	cert, err := ca.issue(s.key, s.nodeID)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l2 := newLink(s, target{addr: l.Addr().String(), pin: ca.pin(), cert: func(*sim) *tls.Certificate { return cert }}, window{})
	done := make(chan error, 1)
	go func() { done <- l2.conn(ctx, func() {}) }()
	select {
	case r := <-svc.results:
		if r.GetId() != "cmd-1" || r.GetError().GetCode() != agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED {
			t.Fatalf("got result %v, want cmd-1 answered as unsupported", r)
		}
	case err := <-done:
		t.Fatalf("connection ended before answering: %v", err)
	case <-ctx.Done():
		t.Fatal("no answer to the command")
	}
	cancel()
	<-done
}
