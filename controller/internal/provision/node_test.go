package provision_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/internal/testutil/testnode"
)

func approved(n *testnode.Node) provision.HostKeyPolicy {
	return provision.HostKeyPolicy{Approved: []provision.KnownKey{{Type: n.HostKeyType, Fingerprint: n.HostKeyFingerprint}}}
}

func rootTarget(n *testnode.Node) provision.Target {
	return provision.Target{Host: n.Addr, Port: n.Port, User: "root", Auth: provision.Auth{Password: n.RootPassword}}
}

func sudoTarget(n *testnode.Node) provision.Target {
	return provision.Target{Host: n.Addr, Port: n.Port, User: n.SudoUser, Auth: provision.Auth{PrivateKeyPEM: n.ClientKeyPEM}, Sudo: true}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHostKeyTrustWithRealSSHD(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	ctx := ctxT(t)

	// Unknown: the fingerprint shown is the one of sshd's key file.
	_, err := provision.Dial(ctx, rootTarget(n), provision.HostKeyPolicy{})
	var unknown *provision.UnknownHostKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("err = %v, want *UnknownHostKeyError", err)
	}
	if unknown.Fingerprint != n.HostKeyFingerprint || unknown.Type != "ssh-ed25519" {
		t.Fatalf("unknown key %s %s, want ssh-ed25519 %s", unknown.Type, unknown.Fingerprint, n.HostKeyFingerprint)
	}

	// Approved, password as root.
	c, err := provision.Dial(ctx, rootTarget(n), approved(n))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Run(ctx, "id", "-un")
	c.Close()
	if err != nil || strings.TrimSpace(string(out.Stdout)) != "root" {
		t.Fatalf("id -un = %q, %v", out.Stdout, err)
	}
	if !strings.Contains(n.SSHDLogText(t), "userauth-request for user root") {
		t.Fatal("sshd log does not record authentication requests; the check below would prove nothing")
	}

	// Changed: sshd gets a new key; the old approval must refuse it before
	// any authentication request reaches sshd.
	old := approved(n)
	n.Rekey(t)
	logBefore := len(n.SSHDLogText(t))
	_, err = provision.Dial(ctx, rootTarget(n), old)
	var changed *provision.HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("err = %v, want *HostKeyChangedError", err)
	}
	if changed.Got.Fingerprint != n.HostKeyFingerprint || changed.Want[0] != old.Approved[0] {
		t.Fatalf("changed error %+v", changed)
	}
	for _, want := range []string{"host key", "changed", n.HostKeyFingerprint, old.Approved[0].Fingerprint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// sshd notices the closed connection asynchronously; wait for its line.
	var tail string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		tail = n.SSHDLogText(t)[logBefore:]
		if strings.Contains(tail, "Connection closed by") || strings.Contains(tail, "Connection reset") ||
			strings.Contains(tail, "kex_exchange_identification") || strings.Contains(tail, "disconnected") {
			break
		}
	}
	if strings.Contains(tail, "userauth-request") || strings.Contains(tail, "Failed") || strings.Contains(tail, "Accepted") {
		t.Fatalf("sshd saw an authentication attempt after a changed key:\n%s", tail)
	}
	if !strings.Contains(tail, "Connection from") {
		t.Fatalf("sshd log has no record of the refused connection:\n%s", tail)
	}
}

func TestRunQuotesHostileArguments(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	ctx := ctxT(t)
	c, err := provision.Dial(ctx, sudoTarget(n), approved(n))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	args := []string{
		"$(touch " + pwned + ")",
		"`touch " + pwned + "`",
		"a; touch " + pwned,
		"a && touch " + pwned,
		"a | touch " + pwned,
		"'; touch " + pwned + "; '",
		`"; touch ` + pwned + `; "`,
		"a\ntouch " + pwned,
		"> " + pwned,
		"*",
		"$HOME",
	}
	for _, a := range args {
		out, err := c.Run(ctx, "printf", "%s", a)
		if err != nil {
			t.Fatalf("printf %q: %v", a, err)
		}
		if string(out.Stdout) != a {
			t.Errorf("printf %q printed %q", a, out.Stdout)
		}
	}
	if _, err := os.Stat(pwned); !os.IsNotExist(err) {
		t.Fatalf("a quoted argument was executed: %s exists", pwned)
	}
	if _, err := c.Run(ctx, "echo", "a\x00b"); err == nil {
		t.Fatal("an argument with a NUL byte was sent")
	}
	// Sudo really gives root.
	out, err := c.Run(ctx, "id", "-u")
	if err != nil || strings.TrimSpace(string(out.Stdout)) != "0" {
		t.Fatalf("sudo id -u = %q, %v", out.Stdout, err)
	}
	out, err = c.RunAsUser(ctx, "id", "-un")
	if err != nil || strings.TrimSpace(string(out.Stdout)) != n.SudoUser {
		t.Fatalf("id -un = %q, %v", out.Stdout, err)
	}
}

// fakeAgent is a stand-in agent: it records each start, its arguments and
// environment, then waits.
const fakeAgent = `#!/bin/sh
echo "$$ $* $GATEHOUSE_AGENT_NGINX_DIR" >>"$GATEHOUSE_AGENT_STATE_DIR/starts"
exec sleep 600
`

type fixture struct {
	node      *testnode.Node
	plan      provision.Plan
	nginxConf string
	pwned     string
}

func newFixture(t *testing.T, n *testnode.Node) *fixture {
	root := t.TempDir()
	conf := filepath.Join(root, "nginx.conf")
	nginxConf := fmt.Sprintf("pid %s;\nerror_log stderr;\nevents {\n}\nhttp {\n    access_log off;\n}\n", filepath.Join(root, "nginx.pid"))
	if err := os.WriteFile(conf, []byte(nginxConf), 0o644); err != nil {
		t.Fatal(err)
	}
	pwned := filepath.Join(root, "pwned")
	l := provision.Layout{
		BinDir:    filepath.Join(root, "bin"),
		StateDir:  filepath.Join(root, "var", "gatehouse-agent"),
		ConfigDir: filepath.Join(root, "etc", "gatehouse-agent"),
		NginxDir:  filepath.Join(root, "etc", "nginx", "gatehouse"),
		UnitDir:   filepath.Join(root, "systemd"),
	}
	return &fixture{
		node:      n,
		nginxConf: conf,
		pwned:     pwned,
		plan: provision.Plan{
			Layout: l,
			AgentBinary: func(p provision.Platform) (io.ReadCloser, error) {
				if p.OS != "linux" {
					return nil, fmt.Errorf("no build for %s", p)
				}
				return io.NopCloser(strings.NewReader(fakeAgent)), nil
			},
			// Hostile content is data, never code.
			Bootstrap: []byte("controller=10.0.0.1:8443\nca_pin=$(touch " + pwned + ")`touch " + pwned + "`'\"\n"),
			Token:     "tok-" + strings.Repeat("A", 40),
			NginxConf: conf,
			Init:      provision.InitAuto,
		},
	}
}

func (f *fixture) provision(t *testing.T, target provision.Target) ([]provision.Step, error) {
	var steps []provision.Step
	p := provision.New(hclog.NewNullLogger())
	_, err := p.Provision(ctxT(t), target, approved(f.node), f.plan, func(s provision.Step) { steps = append(steps, s) })
	return steps, err
}

func stepNames(steps []provision.Step) []string {
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	return names
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return pid
}

// alive reports whether pid runs (a zombie awaiting its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(state), "Z")
		}
	}
	return true
}

// supervisors counts running supervisor processes for name in stateDir.
func supervisors(t *testing.T, name, stateDir string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("supervise\x00run\x00" + name + "\x00" + stateDir + "\x00")
	count := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, want) {
			count++
		}
	}
	return count
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestProvisionSupervisorLifecycle(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	f := newFixture(t, n)
	l := f.plan.Layout
	agentPid := filepath.Join(l.StateDir, "agent.pid")
	t.Cleanup(func() {
		// Leave no agent behind if an assertion stopped the test early.
		if pid, err := os.ReadFile(filepath.Join(l.StateDir, "agent.supervisor.pid")); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})

	steps, err := f.provision(t, sudoTarget(n))
	if err != nil {
		for _, s := range steps {
			t.Logf("step %s: %v\n%s", s.Name, s.Err, s.Output)
		}
		t.Fatal(err)
	}
	want := []string{"connect", "detect", "upload", "bootstrap", "service", "packages", "nginx-include", "done"}
	if got := stepNames(steps); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for _, s := range steps {
		if s.Err != nil {
			t.Errorf("step %s: %v", s.Name, s.Err)
		}
		if strings.Contains(s.Output, "ca_pin=") || strings.Contains(s.Output, f.plan.Token) {
			t.Errorf("step %s output reveals the bootstrap content:\n%s", s.Name, s.Output)
		}
	}
	if !strings.Contains(steps[1].Output, "supervisor") {
		t.Errorf("detect did not choose the supervisor on a node without systemd:\n%s", steps[1].Output)
	}

	// Files in place with the right modes and content.
	assertFile(t, l.AgentPath(), 0o755, fakeAgent)
	assertFile(t, l.BootstrapPath(), 0o600, string(f.plan.Bootstrap)+
		"# Added by Gatehouse provisioning: the one-time enrollment token, deleted by the agent once enrolled.\ntoken_file="+l.TokenPath()+"\n")
	assertFile(t, l.TokenPath(), 0o600, f.plan.Token+"\n")
	if _, err := os.Stat(f.pwned); !os.IsNotExist(err) {
		t.Fatalf("bootstrap content was executed: %s exists", f.pwned)
	}
	assertIncludeCount(t, f.nginxConf, l.IncludeLine(), 1)
	// This nginx.conf loads no stream module: nginx refuses a stream block,
	// so the step leaves none behind and says why in its log.
	assertIncludeCount(t, f.nginxConf, l.StreamIncludeLine(), 0)
	assertIncludeCount(t, f.nginxConf, "stream", 0)
	if inc := steps[6]; !strings.Contains(inc.Output, "# stream proxies skipped: nginx rejected a stream {} block") ||
		!strings.Contains(inc.Output, "libnginx-mod-stream") || !strings.Contains(inc.Output, l.StreamIncludeLine()) {
		t.Errorf("nginx-include step does not note the skipped stream include:\n%s", inc.Output)
	}

	// The agent runs with its environment, under one supervisor.
	waitFor(t, "agent start record", func() bool { return countLines(filepath.Join(l.StateDir, "starts")) >= 1 })
	starts, _ := os.ReadFile(filepath.Join(l.StateDir, "starts"))
	if !strings.Contains(string(starts), " -config "+l.BootstrapPath()+" "+l.NginxDir) {
		t.Fatalf("agent environment not passed: %q", starts)
	}
	if got := supervisors(t, "agent", l.StateDir); got != 1 {
		t.Fatalf("%d supervisors running, want 1", got)
	}

	// kill -9 of the agent: the supervisor starts it again.
	first := readPid(t, agentPid)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent restart after kill -9", func() bool {
		data, err := os.ReadFile(agentPid)
		if err != nil {
			return false
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil && pid != first && alive(pid)
	})

	// Re-running converges: one include line, one supervisor, a fresh agent.
	beforeRerun := readPid(t, agentPid)
	if _, err := f.provision(t, sudoTarget(n)); err != nil {
		t.Fatal(err)
	}
	assertIncludeCount(t, f.nginxConf, l.IncludeLine(), 1)
	if got := supervisors(t, "agent", l.StateDir); got != 1 {
		t.Fatalf("after re-run: %d supervisors running, want 1", got)
	}
	waitFor(t, "old agent gone after re-run", func() bool { return !alive(beforeRerun) })
	if pid := readPid(t, agentPid); !alive(pid) {
		t.Fatalf("agent %d not running after re-run", pid)
	}

	// Uninstall removes everything but nginx and its managed directory.
	var usteps []provision.Step
	err = provision.New(hclog.NewNullLogger()).Uninstall(ctxT(t), sudoTarget(n), approved(n), f.plan,
		func(s provision.Step) { usteps = append(usteps, s) })
	if err != nil {
		for _, s := range usteps {
			t.Logf("step %s: %v\n%s", s.Name, s.Err, s.Output)
		}
		t.Fatal(err)
	}
	last := readPidOrZero(agentPid)
	for _, p := range []string{l.AgentPath(), l.SupervisorPath(), l.BootstrapPath(), l.StateDir, l.ConfigDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after uninstall", p)
		}
	}
	if got := supervisors(t, "agent", l.StateDir); got != 0 {
		t.Errorf("%d supervisors still running after uninstall", got)
	}
	if last != 0 && alive(last) {
		t.Errorf("agent %d still running after uninstall", last)
	}
	assertIncludeCount(t, f.nginxConf, l.IncludeLine(), 0)
	if _, err := os.Stat(l.NginxDir); err != nil {
		t.Errorf("managed nginx directory should be left in place: %v", err)
	}
	// Uninstalling twice is harmless.
	if err := provision.New(hclog.NewNullLogger()).Uninstall(ctxT(t), sudoTarget(n), approved(n), f.plan, nil); err != nil {
		t.Fatalf("second uninstall: %v", err)
	}
}

func readPidOrZero(file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func countLines(file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

func assertFile(t *testing.T, p string, mode os.FileMode, content string) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s mode %v, want %v", p, st.Mode().Perm(), mode)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != content {
		t.Errorf("%s content %q, want %q", p, data, content)
	}
}

func assertIncludeCount(t *testing.T, conf, line string, want int) {
	t.Helper()
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), line); got != want {
		t.Fatalf("%s has %d include lines, want %d:\n%s", conf, got, want, data)
	}
}

func TestSudoNeedingPasswordInstallsNothing(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	f := newFixture(t, n)
	target := provision.Target{Host: n.Addr, Port: n.Port, User: n.PasswordUser,
		Auth: provision.Auth{Password: n.PasswordUserPass}, Sudo: true}
	steps, err := f.provision(t, target)
	var sudoErr *provision.SudoPasswordError
	if !errors.As(err, &sudoErr) {
		t.Fatalf("err = %v, want *SudoPasswordError", err)
	}
	want := fmt.Sprintf("sudo on %s requires a password; allow password-less sudo for %s or connect as root", n.Addr, n.PasswordUser)
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if len(steps) != 1 || steps[0].Name != "connect" || steps[0].Err == nil {
		t.Fatalf("steps %v: want a single failed connect step", stepNames(steps))
	}
	l := f.plan.Layout
	for _, p := range []string{l.BinDir, l.StateDir, l.ConfigDir, l.NginxDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was created although sudo failed", p)
		}
	}
	assertIncludeCount(t, f.nginxConf, f.plan.Layout.IncludeLine(), 0)
}

func TestProvisionRejectsHostileInput(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	f := newFixture(t, n)
	tests := []struct {
		name   string
		target func(provision.Target) provision.Target
		plan   func(provision.Plan) provision.Plan
	}{
		{"host substitution", func(tg provision.Target) provision.Target {
			tg.Host = "$(touch " + f.pwned + ")"
			return tg
		}, nil},
		{"host semicolon", func(tg provision.Target) provision.Target { tg.Host = n.Addr + ";touch " + f.pwned; return tg }, nil},
		{"user newline", func(tg provision.Target) provision.Target { tg.User = "ghtest\ntouch"; return tg }, nil},
		{"user quote", func(tg provision.Target) provision.Target { tg.User = "gh'test"; return tg }, nil},
		{"no sudo and not root", func(tg provision.Target) provision.Target { tg.Sudo = false; return tg }, nil},
		{"bin dir substitution", nil, func(p provision.Plan) provision.Plan {
			p.Layout.BinDir = "/tmp/$(touch " + f.pwned + ")"
			return p
		}},
		{"state dir quote", nil, func(p provision.Plan) provision.Plan {
			p.Layout.StateDir = "/tmp/gatehouse'; touch " + f.pwned + "'"
			return p
		}},
		{"nginx conf backtick", nil, func(p provision.Plan) provision.Plan {
			p.NginxConf = "/etc/nginx/`touch " + f.pwned + "`"
			return p
		}},
	}
	for _, tt := range tests {
		target := sudoTarget(n)
		if tt.target != nil {
			target = tt.target(target)
		}
		plan := f.plan
		if tt.plan != nil {
			plan = tt.plan(plan)
		}
		var steps []provision.Step
		_, err := provision.New(hclog.NewNullLogger()).Provision(ctxT(t), target, approved(n), plan,
			func(s provision.Step) { steps = append(steps, s) })
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
		if len(steps) != 0 {
			t.Errorf("%s: ran steps %v before validating", tt.name, stepNames(steps))
		}
	}
	if _, err := os.Stat(f.pwned); !os.IsNotExist(err) {
		t.Fatalf("hostile input was executed: %s exists", f.pwned)
	}
}

// hostHasMonitoringPackages reports whether nginx, Glances and bottle are
// installed, so that the packages step has nothing to install: a test must
// never run the package manager (the node shares the host's filesystem).
func hostHasMonitoringPackages() bool {
	for _, p := range []string{"/usr/sbin/nginx", "/usr/bin/glances", "/usr/lib/python3/dist-packages/bottle.py"} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func TestProvisionAsRootRunsGlancesOnLoopback(t *testing.T) {
	t.Parallel()
	if !hostHasMonitoringPackages() {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx, glances and python3-bottle must be installed (scripts/ci-deps.sh)")
		}
		t.Skip("nginx, glances or python3-bottle missing; the test must not install packages")
	}
	n := testnode.Start(t)
	f := newFixture(t, n)
	f.plan.InstallNginx = true
	f.plan.InstallGlances = true
	f.plan.GlancesPort = 61299
	l := f.plan.Layout
	t.Cleanup(func() {
		for _, name := range []string{"agent", "glances"} {
			if pid := readPidOrZero(filepath.Join(l.StateDir, name+".supervisor.pid")); pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if pid := readPidOrZero(filepath.Join(l.StateDir, name+".pid")); pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	steps, err := f.provision(t, rootTarget(n))
	if err != nil {
		for _, s := range steps {
			t.Logf("step %s: %v\n%s", s.Name, s.Err, s.Output)
		}
		t.Fatal(err)
	}
	pkg := steps[5]
	if pkg.Name != "packages" || !strings.Contains(pkg.Output, "already installed") ||
		strings.Contains(pkg.Output, "apt-get") {
		t.Fatalf("packages step should find everything installed and run no package manager:\n%s", pkg.Output)
	}
	if strings.Contains(steps[0].Output, "sudo") {
		t.Errorf("root login should not use sudo:\n%s", steps[0].Output)
	}
	// Glances' API answers on loopback inside the node, and only there.
	listening := func() string {
		out, _ := n.Command("ss", "-ltnH").CombinedOutput()
		return string(out)
	}
	waitFor(t, "glances listening", func() bool { return strings.Contains(listening(), ":61299") })
	for _, line := range strings.Split(listening(), "\n") {
		if strings.Contains(line, ":61299") && !strings.Contains(line, "127.0.0.1:61299") {
			t.Fatalf("glances listens beyond loopback: %s", line)
		}
	}
	glancesPid := readPid(t, filepath.Join(l.StateDir, "glances.pid"))

	if err := provision.New(hclog.NewNullLogger()).Uninstall(ctxT(t), rootTarget(n), approved(n), f.plan, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "glances stopped", func() bool { return !alive(glancesPid) })
	if got := supervisors(t, "glances", l.StateDir); got != 0 {
		t.Fatalf("%d glances supervisors left", got)
	}
}

func TestProvisionIncludesStreamWhenNginxHasTheModule(t *testing.T) {
	t.Parallel()
	const module = "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(module); err != nil {
		t.Skipf("%s missing: %v", module, err)
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatalf("%s exists but nginx is not on PATH: %v", module, err)
	}
	n := testnode.Start(t)
	f := newFixture(t, n)
	l := f.plan.Layout
	t.Cleanup(func() {
		if pid := readPidOrZero(filepath.Join(l.StateDir, "agent.supervisor.pid")); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	orig, err := os.ReadFile(f.nginxConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.nginxConf, append([]byte("load_module "+module+";\n"), orig...), 0o644); err != nil {
		t.Fatal(err)
	}
	block := "stream { " + l.StreamIncludeLine() + " }"

	for _, run := range []string{"first", "re-run"} {
		steps, err := f.provision(t, sudoTarget(n))
		if err != nil {
			for _, s := range steps {
				t.Logf("step %s: %v\n%s", s.Name, s.Err, s.Output)
			}
			t.Fatalf("%s: %v", run, err)
		}
		if inc := steps[6]; inc.Name != "nginx-include" || strings.Contains(inc.Output, "stream proxies skipped") {
			t.Errorf("%s: step %s notes a skipped stream include although nginx has the module:\n%s", run, inc.Name, inc.Output)
		}
		assertIncludeCount(t, f.nginxConf, l.IncludeLine(), 1)
		assertIncludeCount(t, f.nginxConf, block, 1)
		assertIncludeCount(t, f.nginxConf, l.StreamIncludeLine(), 1)
		if out, err := exec.Command(nginx, "-t", "-q", "-c", f.nginxConf).CombinedOutput(); err != nil {
			t.Fatalf("%s: nginx -t on the provisioned nginx.conf: %v\n%s", run, err, out)
		}
	}

	if err := provision.New(hclog.NewNullLogger()).Uninstall(ctxT(t), sudoTarget(n), approved(n), f.plan, nil); err != nil {
		t.Fatal(err)
	}
	assertIncludeCount(t, f.nginxConf, l.IncludeLine(), 0)
	assertIncludeCount(t, f.nginxConf, l.StreamIncludeLine(), 0)
	assertIncludeCount(t, f.nginxConf, "stream {", 0)
}
