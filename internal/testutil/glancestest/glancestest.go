// Package glancestest runs a real Glances REST server for tests.
package glancestest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// config keeps Glances quiet and local: no update checks, no public IP
// lookups, nothing but loopback.
const config = `[global]
check_update=false
[outputs]
[ip]
disable=True
public_ip_disabled=True
[wifi]
disable=True
[hddtemp]
disable=True
`

// Server is a running Glances. Stop and Start may be called repeatedly to
// simulate an outage; the port stays the same.
type Server struct {
	t    testing.TB
	Port int
	URL  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncbuf.Buffer
}

// Binary returns the glances executable, skipping the test when it is not
// installed (failing under CI=true).
func Binary(t testing.TB) string {
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

// Start runs Glances on a free loopback port and waits until it answers.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server after Stop.
func (s *Server) Start() {
	s.t.Helper()
	bin := Binary(s.t)
	dir := s.t.TempDir()
	conf := filepath.Join(dir, "glances.conf")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(bin, "-C", conf, "-w", "--disable-webui", "--disable-check-update",
		"--disable-plugin", "ports,cloud,ip,wifi,hddtemp,folders,amps,docker,gpu",
		"-B", "127.0.0.1", "-p", fmt.Sprint(s.Port))
	cmd.Dir = dir
	// Glances logs to $TMPDIR/glances-$USER.log: the test's directory, not
	// a file in /tmp that every run appends to.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "TMPDIR="+dir)
	// SIGKILL when this test binary ends without its cleanups (a panic, the
	// -timeout), so no Glances outlives the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &syncbuf.Buffer{} // read below while Glances still writes to it
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start glances: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			s.t.Fatalf("glances exited before answering:\n%s", out.String())
		default:
		}
		for _, v := range []string{"4", "3"} {
			resp, err := client.Get(s.URL + "/api/" + v + "/pluginslist")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("glances did not answer on %s within a minute\n%s", s.URL, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}
