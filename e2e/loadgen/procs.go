package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a process started by the load generator, with its output in files.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// startChild starts bin with args, appending stdout and stderr to
// dir/name.log. env adds to the inherited environment.
func startChild(name, dir, bin string, args, env []string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits; after grace it kills the process.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		return c.exitErr()
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.exitErr()
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", c.name, grace)
	}
}

func (c *child) exitErr() error {
	if c.err != nil {
		return fmt.Errorf("%s exited: %w\n%s", c.name, c.err, c.logTail())
	}
	return nil
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the child's output, for error messages.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "--- " + c.name + " output (last lines) ---\n" + strings.Join(lines, "\n")
}

// waitLog waits until the child's output contains want.
func (c *child) waitLog(ctx context.Context, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(c.logPath)
		if bytes.Contains(b, []byte(want)) {
			return nil
		}
		if c.exited() {
			return fmt.Errorf("%s exited before logging %q\n%s", c.name, want, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s\n%s", c.name, want, timeout, c.logTail())
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitTCP waits until addr accepts connections or the child exits.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.exited() {
			return fmt.Errorf("%s exited before listening on %s\n%s", c.name, addr, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening on %s after %s\n%s", c.name, addr, timeout, c.logTail())
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// controllerProc is a running `gatehouse serve`.
type controllerProc struct {
	*child
	bin, dataDir       string
	httpAddr, grpcAddr string
}

// startController runs `gatehouse serve` on fresh loopback ports with the
// data directory dataDir (reused across restarts).
func startController(ctx context.Context, bin, dataDir, logDir, name string, interval time.Duration) (*controllerProc, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--data-dir", dataDir, "--listen", httpAddr, "--agent-listen", grpcAddr,
		"--local-agent=false", "--metrics-interval", interval.String()}
	c, err := startChild(name, logDir, bin, args, []string{"GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DNS_RESOLVERS=127.0.0.1:1", "GATEHOUSE_ACME_DIRECTORY=https://127.0.0.1:1/directory"})
	if err != nil {
		return nil, err
	}
	p := &controllerProc{child: c, bin: bin, dataDir: dataDir, httpAddr: httpAddr, grpcAddr: grpcAddr}
	for _, a := range []string{grpcAddr, httpAddr} {
		if err := waitTCP(ctx, c, a, 60*time.Second); err != nil {
			c.stop(10 * time.Second)
			return nil, err
		}
	}
	return p, nil
}

// admin runs a `gatehouse` admin subcommand against the data directory and
// returns its standard output.
func (p *controllerProc) admin(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--data-dir", p.dataDir)
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_LOG_LEVEL=warn", "GATEHOUSE_DNS_RESOLVERS=127.0.0.1:1", "GATEHOUSE_ACME_DIRECTORY=https://127.0.0.1:1/directory")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gatehouse %s: %w: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// apiClient calls the controller's JSON API with a bearer token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// enrollmentReply is the answer of POST /api/v1/servers.
type enrollmentReply struct {
	Server struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"server"`
	Enrollment struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
		Command   string `json:"command"`
	} `json:"enrollment"`
}

// addServer registers a server and returns its id and one-time enrollment
// token.
func (a *apiClient) addServer(ctx context.Context, name string) (int, string, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/v1/servers", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("add server %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("add server %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("add server %s: %s: %s", name, resp.Status, strings.TrimSpace(string(b)))
	}
	var r enrollmentReply
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, "", fmt.Errorf("add server %s: decode reply: %w", name, err)
	}
	if r.Enrollment.Token == "" || r.Server.Name != name {
		return 0, "", fmt.Errorf("add server %s: reply lacks the server or its token: %s", name, strings.TrimSpace(string(b)))
	}
	return r.Server.ID, r.Enrollment.Token, nil
}

// scanReady reads "ready ADDR" from r.
func scanReady(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			return addr, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("baseline server ended without becoming ready")
}
