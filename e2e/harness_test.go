package e2e

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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// bins holds the binaries built once for the whole test run.
var bins struct {
	dir        string
	controller string
	agent      string
}

// binDirPrefix names the directory of the binaries built for one test run;
// its owner file holds the pid of the test binary that made it.
const binDirPrefix = "gatehouse-e2e-bin-"

func TestMain(m *testing.M) {
	removeOrphanBinDirs(os.TempDir())
	dir, err := os.MkdirTemp("", binDirPrefix)
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		panic(err)
	}
	bins.dir = dir
	bins.controller = filepath.Join(dir, "gatehouse")
	bins.agent = filepath.Join(dir, "gatehouse-agent")
	for out, pkg := range map[string]string{bins.controller: "../controller/cmd/gatehouse", bins.agent: "../agent/cmd/gatehouse-agent"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// removeOrphanBinDirs deletes the binary directories of earlier runs whose
// test binary is gone without cleaning up (killed by -timeout or a signal).
// A directory without a readable owner is left alone: it may be a run that
// has only just created it.
func removeOrphanBinDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), binDirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// freeAddr is a loopback address on a port no other test of this run got.
func freeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeport.Get(t)))
}

// proc is a child process started by a test.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

func startProc(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// Its own group, so kill reaches what it starts; SIGTERM when this test
	// binary ends without its cleanups (a panic, the -timeout), so no
	// controller, agent or nginx outlives the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, out.String())
		}
	})
	return p
}

// kill sends SIGKILL to the process group and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop asks for a clean shutdown, then kills after a grace period.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// waitOutput waits until the process printed a line matching re and returns the first submatch.
func (p *proc) waitOutput(re *regexp.Regexp, within time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited while waiting for %q:\n%s", p.name, re, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not print %q within %s:\n%s", p.name, re, within, p.out.String())
	return ""
}

// controllerProc is a running gatehouse serve.
type controllerProc struct {
	*proc
	t         testing.TB
	dataDir   string
	httpAddr  string
	agentAddr string
	extra     []string
	password  string // the first admin's password, from the first start
	apiToken  string
}

// loopbackOnly points every outside service the controller could reach
// (public DNS resolvers, the public ACME directory, Telegram's Bot API) at
// closed loopback ports, so no test can send traffic off this machine. Tests
// that need them pass their own loopback servers with flags, which take
// precedence.
var loopbackOnly = []string{
	"GATEHOUSE_DNS_RESOLVERS=127.0.0.1:1",
	"GATEHOUSE_ACME_DIRECTORY=https://127.0.0.1:1/directory",
	"GATEHOUSE_TELEGRAM_API_URL=http://127.0.0.1:1",
}

var (
	passwordLine = regexp.MustCompile(`password: (\S+)`)
	readyLine    = regexp.MustCompile(`Gatehouse is running at (\S+)`)
)

// startController runs a controller on free loopback ports with its own data
// directory. extra flags are appended to serve's.
func startController(t testing.TB, extra ...string) *controllerProc {
	t.Helper()
	c := &controllerProc{t: t, dataDir: t.TempDir(), httpAddr: freeAddr(t), agentAddr: freeAddr(t), extra: extra}
	c.start()
	c.password = c.waitOutput(passwordLine, 30*time.Second)
	return c
}

func (c *controllerProc) args(sub ...string) []string {
	return append(sub, "--data-dir", c.dataDir)
}

func (c *controllerProc) start() {
	c.t.Helper()
	args := append(c.args("serve"), "--listen", c.httpAddr, "--agent-listen", c.agentAddr, "--local-agent=false")
	args = append(args, c.extra...)
	c.proc = startProc(c.t, "controller", append([]string{"GATEHOUSE_LOG_LEVEL=debug"}, loopbackOnly...), bins.controller, args...)
	c.waitOutput(readyLine, 60*time.Second)
}

// restart starts the controller again on the same ports and data.
func (c *controllerProc) restart() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) { // the old process's sockets may linger briefly
		l1, err1 := net.Listen("tcp", c.httpAddr)
		l2, err2 := net.Listen("tcp", c.agentAddr)
		if l1 != nil {
			l1.Close()
		}
		if l2 != nil {
			l2.Close()
		}
		if err1 == nil && err2 == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.start()
}

// cli runs a gatehouse admin subcommand against the controller's data.
func (c *controllerProc) cli(sub ...string) string {
	c.t.Helper()
	cmd := exec.Command(bins.controller, c.args(sub...)...)
	cmd.Env = append(append(os.Environ(), "GATEHOUSE_LOG_LEVEL=warn"), loopbackOnly...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("gatehouse %s: %v\n%s", strings.Join(sub, " "), err, out)
	}
	return string(out)
}

var (
	tokenEnv = regexp.MustCompile(`GATEHOUSE_AGENT_TOKEN=(\S+)`)
	pinArg   = regexp.MustCompile(`-ca_pin (\S+)`)
)

// addServer registers a server (with the flags of "server add", if any) and
// returns its one-time token and the CA pin.
func (c *controllerProc) addServer(name string, flags ...string) (token, pin string) {
	c.t.Helper()
	out := c.cli(append([]string{"server", "add", name}, flags...)...)
	t, p := tokenEnv.FindStringSubmatch(out), pinArg.FindStringSubmatch(out)
	if t == nil || p == nil {
		c.t.Fatalf("server add printed no install command:\n%s", out)
	}
	return t[1], p[1]
}

// api calls the JSON API with an admin token and decodes the answer into out.
func (c *controllerProc) api(method, path string, body, out any) int {
	c.t.Helper()
	if c.apiToken == "" {
		lines := strings.Split(strings.TrimSpace(c.cli("token", "create", "e2e", "--user", "admin")), "\n")
		c.apiToken = strings.TrimSpace(lines[len(lines)-1])
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+c.httpAddr+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// agentProc runs gatehouse-agent enrolled against c.
func startAgent(t testing.TB, c *controllerProc, token, pin, glancesURL string, extraEnv ...string) *proc {
	t.Helper()
	return startAgentWith(t, c, token, pin, glancesURL, nil, extraEnv...)
}

// startAgentWith is startAgent with more command-line arguments.
func startAgentWith(t testing.TB, c *controllerProc, token, pin, glancesURL string, args []string, extraEnv ...string) *proc {
	t.Helper()
	state := t.TempDir()
	env := append([]string{
		"GATEHOUSE_AGENT_TOKEN=" + token,
		"GATEHOUSE_AGENT_STATE_DIR=" + state,
		"GATEHOUSE_AGENT_NGINX_DIR=" + filepath.Join(state, "nginx"),
		"GATEHOUSE_AGENT_GLANCES_URL=" + glancesURL,
	}, extraEnv...)
	return startProc(t, "agent", env, bins.agent, append([]string{"-controller", c.agentAddr, "-ca_pin", pin}, args...)...)
}

// eventually polls cond until it holds or the time is up.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lines reads text line by line (for parsing CLI output).
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
