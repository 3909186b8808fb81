package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/agent"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	"github.com/gatehousehq/gatehouse/internal/testutil/glancestest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// closedURL is a loopback URL nothing listens on (port 1 is never bound by
// the tests), so the agent falls back to its /proc sampler.
func closedURL(*testing.T) string { return "http://127.0.0.1:1" }

// startGlances runs Debian's Glances REST server on a free loopback port,
// with its update check and outside lookups switched off.
func startGlances(t *testing.T) string {
	t.Helper()
	return glancestest.Start(t).URL
}

// runAgent runs an in-process agent until the test ends.
func (e *env) runAgent(cfg agent.Config) (*agent.Agent, <-chan error) {
	e.t.Helper()
	if cfg.ControllerAddr == "" {
		cfg.ControllerAddr = e.addr
	}
	if cfg.CAPin == "" {
		cfg.CAPin = e.ca.Pin()
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(e.t.TempDir(), "state")
	}
	if cfg.GlancesURL == "" {
		cfg.GlancesURL = closedURL(e.t)
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	a, err := agent.New(cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{e.t}}))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("agent run: %v", err)
		}
	})
	return a, done
}

func TestAgentEnrollsAndReportsMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	token, nodeID := e.store.addToken(time.Hour)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "bootstrap.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	nginxDir := filepath.Join(dir, "nginx")
	a, _ := e.runAgent(agent.Config{TokenFile: tokenFile, StateDir: state, GlancesURL: startGlances(t),
		NginxDir: nginxDir, NginxBinary: "/nonexistent/nginx", NginxHTTPPort: 8080, NginxBindAddress: "127.0.0.1"})

	waitFor(t, "two samples stored", func() bool { return e.ingest.count(nodeID) >= 2 })
	h := e.current()
	if !h.Connected(nodeID) || a.Stats().NodeID != nodeID {
		t.Fatalf("connected=%v stats=%+v", h.Connected(nodeID), a.Stats())
	}
	// The agent's nginx setup reaches the controller with its Hello.
	ng := h.NginxNode(nodeID)
	if ng.GetDir() != nginxDir || ng.GetInstalled() || ng.GetHttpPort() != 8080 || ng.GetHttpsPort() != 443 || ng.GetBindAddress() != "127.0.0.1" {
		t.Fatalf("nginx node = %v", ng)
	}
	if h.NginxNode("999999") != nil {
		t.Fatal("an unknown node reports nginx")
	}
	var sample *agentv1.MetricSample
	for _, ts := range e.ingest.times(nodeID) {
		sample = e.ingest.samples[nodeID][ts]
	}
	if sample.GetSource() != "glances" || sample.GetMemTotal() == 0 || len(sample.GetPerCpu()) == 0 {
		t.Fatalf("sample does not look like glances data: source=%q mem=%d cpus=%d", sample.GetSource(), sample.GetMemTotal(), len(sample.GetPerCpu()))
	}

	// Enrollment leaves a private state dir and consumes the bootstrap token.
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bootstrap token file still there: %v", err)
	}
	st, err := os.Stat(state)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, %v", st.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(state)
	if len(entries) != 3 {
		t.Fatalf("state dir holds %d files, want key, certificate and chain", len(entries))
	}
	for _, de := range entries {
		info, _ := de.Info()
		if info.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", de.Name(), info.Mode().Perm())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := h.Send(ctx, nodeID, &agentv1.Command{Kind: &agentv1.Command_FetchGlancesPlugin{FetchGlancesPlugin: &agentv1.FetchGlancesPlugin{Name: "cpu"}}})
	if err != nil {
		t.Fatal(err)
	}
	var cpu map[string]any
	if err := json.Unmarshal(res.GetGlancesPlugin().GetJson(), &cpu); err != nil || cpu["total"] == nil {
		t.Fatalf("cpu plugin json %q: %v", res.GetGlancesPlugin().GetJson(), err)
	}

	tests := []struct {
		name string
		cmd  *agentv1.Command
		code agentv1.ErrorCode
	}{
		{"plugin outside allowlist", &agentv1.Command{Kind: &agentv1.Command_FetchGlancesPlugin{FetchGlancesPlugin: &agentv1.FetchGlancesPlugin{Name: "../config"}}}, agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
		{"apply without nginx", &agentv1.Command{Kind: &agentv1.Command_ApplyNginxRelease{ApplyNginxRelease: &agentv1.ApplyNginxRelease{Revision: 1}}}, agentv1.ErrorCode_ERROR_CODE_FAILED},
		{"challenge without nginx", &agentv1.Command{Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{Token: "t"}}}, agentv1.ErrorCode_ERROR_CODE_FAILED},
		{"revision zero", &agentv1.Command{Kind: &agentv1.Command_ApplyNginxRelease{ApplyNginxRelease: &agentv1.ApplyNginxRelease{Revision: 0}}}, agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT},
	}
	for _, tc := range tests {
		_, err := h.Send(ctx, nodeID, tc.cmd)
		var ce *hub.CommandError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
		}
		if tc.code == agentv1.ErrorCode_ERROR_CODE_FAILED && !strings.Contains(ce.Message, "nginx is not installed") {
			t.Errorf("%s: message %q does not say nginx is missing", tc.name, ce.Message)
		}
	}
}

func TestAgentRenewsWithoutDroppingSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *hub.Config) {
		c.CertLifetime = 3 * time.Second
		// Frequent heartbeats make the hub check the session's certificate
		// validity often: without renewal extending it, the session would end.
		c.HeartbeatInterval = 200 * time.Millisecond
	})
	token, nodeID := e.store.addToken(time.Hour)
	a, _ := e.runAgent(agent.Config{Token: token})
	waitFor(t, "session", func() bool { return e.current().Connected(nodeID) })
	first := e.store.firstCert(nodeID)

	// Two renewals, and the session outlives the first certificate by more
	// than a hub heartbeat (when the hub checks validity).
	waitFor(t, "two renewals", func() bool { return a.Stats().Renewals >= 2 })
	waitFor(t, "the first certificate to expire", func() bool { return time.Now().After(first.NotAfter.Add(time.Second)) })
	st := a.Stats()
	if st.Connects != 1 || e.eventCount(hub.EventOnline, nodeID) != 1 || e.eventCount(hub.EventOffline, nodeID) != 0 {
		t.Fatalf("session was re-established: connects=%d online=%d offline=%d last error %q",
			st.Connects, e.eventCount(hub.EventOnline, nodeID), e.eventCount(hub.EventOffline, nodeID), st.LastError)
	}
	if n := e.store.certCount(nodeID); n < 3 {
		t.Fatalf("store recorded %d certificates, want the enrolled one and two renewals", n)
	}
	if !e.current().Connected(nodeID) {
		t.Fatal("session gone after renewals")
	}
}

func TestControllerRestartReplaysEachSampleOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // metrics every second
	token, nodeID := e.store.addToken(time.Hour)
	a, _ := e.runAgent(agent.Config{Token: token})
	waitFor(t, "two samples stored", func() bool { return e.ingest.count(nodeID) >= 2 })

	e.current().Stop()
	down := a.Stats().Sampled
	waitFor(t, "samples buffered while the controller is down", func() bool {
		st := a.Stats()
		return st.Sampled >= down+3 && st.Pending >= 3
	})
	e.start() // same address, same CA, same store
	waitFor(t, "buffer drained into the new controller", func() bool {
		st := a.Stats()
		return st.Connects >= 2 && st.Pending == 0 && uint64(e.ingest.count(nodeID)) == st.Sampled
	})
	st := a.Stats()
	if st.Dropped != 0 {
		t.Fatalf("%d samples dropped", st.Dropped)
	}
	ts := e.ingest.times(nodeID)
	if uint64(len(ts)) < down+3 {
		t.Fatalf("stored %d samples, want at least %d", len(ts), down+3)
	}
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap <= 0 || gap > 2*time.Second {
			t.Fatalf("gap of %s between stored samples %d and %d (1 s interval)", gap, i-1, i)
		}
	}
}

func TestAgentRefusesControllerWithOtherPin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	token, nodeID := e.store.addToken(time.Hour)
	other, err := pki.NewCA("impostor", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.runAgent(agent.Config{Token: token, CAPin: other.Pin()})
	waitFor(t, "a refused handshake", func() bool { return strings.Contains(a.Stats().LastError, "ca pin") })
	if e.store.certCount(nodeID) != 0 || a.Stats().NodeID != "" {
		t.Fatal("agent enrolled with a controller that does not match its pin")
	}
	// The token was never sent: it still works over a pinned connection.
	if _, _, err := e.enroll(token); err != nil {
		t.Fatalf("token unusable after the refused attempts: %v", err)
	}
}

// TestAgentBinary builds and runs the real gatehouse-agent against the hub.
func TestAgentBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatehouse-agent")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/gatehousehq/gatehouse/internal/version.Version=1.2.3-test", "github.com/gatehousehq/gatehouse/agent/cmd/gatehouse-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "gatehouse-agent 1.2.3-test" {
		t.Fatalf("version: %q, %v", out, err)
	}

	token, nodeID := e.store.addToken(time.Hour)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.conf")
	// The pin comes from the file, the address from the environment and the
	// state dir from a flag: each layer is exercised.
	body := fmt.Sprintf("# bootstrap\nca_pin = %s\ntoken_file = %q\ncontroller = 127.0.0.1:1\n", e.ca.Pin(), tokenFile)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", conf, "-state_dir", filepath.Join(dir, "state"), "-glances_url", closedURL(t))
	cmd.Env = append(os.Environ(), "GATEHOUSE_AGENT_CONTROLLER="+e.addr)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	waitFor(t, "samples from the agent process", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("agent exited early: %v\n%s", err, logs.String())
		default:
		}
		return e.ingest.count(nodeID) >= 1 && e.current().Connected(nodeID)
	})
	e.store.mu.Lock()
	hello := e.store.online[nodeID]
	e.store.mu.Unlock()
	if hello.GetAgentVersion() != "1.2.3-test" || hello.GetCapability() != agent.Capability {
		t.Fatalf("hello %v", hello)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, logs.String())
	}
	waitFor(t, "offline after shutdown", func() bool { return !e.current().Connected(nodeID) })
}

// TestAgentReceivesLargeRelease: a release may hold up to
// nginx.MaxTotalSize bytes; gRPC's default 4 MiB receive limit made the
// agent drop the whole link on a bigger one, and the controller resent it
// on every reconnect, instead of the agent answering it.
func TestAgentReceivesLargeRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	token, nodeID := e.store.addToken(time.Hour)
	dir := t.TempDir()
	e.runAgent(agent.Config{Token: token, NginxDir: filepath.Join(dir, "nginx"), NginxBinary: "/nonexistent/nginx"})
	h := e.current()
	waitFor(t, "session", func() bool { return h.Connected(nodeID) })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	big := strings.Repeat("# a long comment line to fill the file up\n", (6<<20)/42)
	cmd := &agentv1.Command{Kind: &agentv1.Command_ApplyNginxRelease{ApplyNginxRelease: &agentv1.ApplyNginxRelease{
		Revision: 1, Files: []*agentv1.NginxFile{{Path: "big.conf", Content: []byte(big)}},
	}}}
	_, err := h.Send(ctx, nodeID, cmd)
	var ce *hub.CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "nginx is not installed") {
		t.Fatalf("err = %v, want the agent's answer that nginx is not installed", err)
	}
}
