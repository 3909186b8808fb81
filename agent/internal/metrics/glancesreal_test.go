package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// glancesConfig keeps the test's Glances on loopback: no update check
// against PyPI, no port scans of the default gateway, no cloud metadata or
// public IP lookups.
const glancesConfig = `[global]
check_update=false
[ports]
disable=True
port_default_gateway=False
[cloud]
disable=True
[ip]
disable=True
public_ip_disabled=True
[wifi]
disable=True
[hddtemp]
disable=True
`

func glancesBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("glances")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("glances is required in CI (scripts/ci-deps.sh installs it): %v", err)
		}
		t.Skipf("glances not installed: %v", err)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGlances runs Glances' REST server on 127.0.0.1:port until the
// returned stop function is called (or the test ends) and waits until it
// answers.
func startGlances(t *testing.T, port int) (stop func()) {
	t.Helper()
	bin := glancesBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "glances.conf")
	if err := os.WriteFile(conf, []byte(glancesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-C", conf, "-w", "--disable-webui", "--disable-check-update",
		"--disable-plugin", "ports,cloud,ip,wifi,hddtemp,folders,amps,docker,gpu",
		"-B", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting glances: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	t.Cleanup(stop)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("glances exited before answering: %v\n%s", err, out.String())
		default:
		}
		for _, v := range []string{"4", "3"} {
			resp, err := client.Get(base + "/api/" + v + "/pluginslist")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return stop
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("glances did not answer on %s within a minute\n%s", base, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGlancesReal(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startGlances(t, port)
	g := NewGlances(fmt.Sprintf("http://127.0.0.1:%d", port), nil, hclog.NewNullLogger())
	ctx := context.Background()

	s, err := g.Sample(ctx)
	if err != nil {
		t.Fatalf("Sample from real glances: %v", err)
	}
	if v := g.Version(); v != 3 && v != 4 {
		t.Errorf("Version() = %d", v)
	}
	if s.Source != "glances" || s.CPUPercent < 0 || s.CPUPercent > 100 || len(s.PerCPU) == 0 {
		t.Errorf("cpu: source %q total %v per-cpu %v", s.Source, s.CPUPercent, s.PerCPU)
	}
	if s.MemTotal == 0 || s.MemUsed == 0 || s.MemUsed > s.MemTotal || s.MemAvailable == 0 {
		t.Errorf("memory: total %d used %d available %d", s.MemTotal, s.MemUsed, s.MemAvailable)
	}
	if len(s.Filesystems) == 0 || len(s.Interfaces) == 0 || s.UptimeSeconds == 0 || s.Processes == 0 {
		t.Errorf("filesystems %v interfaces %v uptime %d processes %d", s.Filesystems, s.Interfaces, s.UptimeSeconds, s.Processes)
	}

	// Both sources read the same kernel: the totals must agree.
	ps, err := NewProc("/proc", "/sys", nil).Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.MemTotal != s.MemTotal || ps.SwapTotal != s.SwapTotal || len(ps.PerCPU) != len(s.PerCPU) {
		t.Errorf("glances and proc disagree: mem %d/%d swap %d/%d cpus %d/%d",
			s.MemTotal, ps.MemTotal, s.SwapTotal, ps.SwapTotal, len(s.PerCPU), len(ps.PerCPU))
	}
	rootSize := func(fs []Filesystem) uint64 {
		for _, f := range fs {
			if f.Mount == "/" {
				return f.Size
			}
		}
		return 0
	}
	if r := rootSize(s.Filesystems); r == 0 || r != rootSize(ps.Filesystems) {
		t.Errorf("root filesystem size: glances %d, proc %d", r, rootSize(ps.Filesystems))
	}

	raw, err := g.Plugin(ctx, "processlist")
	if err != nil {
		t.Fatalf("Plugin(processlist): %v", err)
	}
	var procs []map[string]any
	if err := json.Unmarshal(raw, &procs); err != nil || len(procs) == 0 || procs[0]["pid"] == nil {
		t.Errorf("processlist: %d processes, err %v", len(procs), err)
	}
	if _, err := g.Plugin(ctx, "../etc"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf(`Plugin("../etc") err = %v, want refusal`, err)
	}
}

func TestFallbackWithRealGlances(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	stop := startGlances(t, port)
	glances := NewGlances(fmt.Sprintf("http://127.0.0.1:%d", port), nil, hclog.NewNullLogger())
	f := NewFallback(glances, NewProc("/proc", "/sys", nil), hclog.NewNullLogger())
	ctx := context.Background()

	sample := func() Sample {
		t.Helper()
		s, err := f.Sample(ctx)
		if err != nil {
			t.Fatalf("Sample: %v", err)
		}
		if s.MemTotal == 0 || s.Time.IsZero() {
			t.Fatalf("empty sample from %s: %+v", s.Source, s)
		}
		return s
	}
	if s := sample(); s.Source != "glances" || f.Current() != "glances" {
		t.Fatalf("with glances up: source %q, current %q", s.Source, f.Current())
	}

	stop()
	for i := range 3 {
		if s := sample(); s.Source != "proc" || f.Current() != "proc" {
			t.Fatalf("sample %d with glances stopped: source %q, current %q", i, s.Source, f.Current())
		}
	}

	startGlances(t, port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := sample()
		if s.Source == "glances" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still on %q after glances came back", s.Source)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f.Current() != "glances" {
		t.Errorf("Current() = %q after recovery", f.Current())
	}
}
