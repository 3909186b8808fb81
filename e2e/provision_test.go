package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/testnode"
)

// sshServer is the body that adds a server over SSH.
type sshServer struct {
	Name           string            `json:"name"`
	Host           string            `json:"host"`
	Port           int               `json:"port"`
	User           string            `json:"user"`
	Auth           string            `json:"auth"`
	PrivateKey     string            `json:"private_key,omitempty"`
	Password       string            `json:"password,omitempty"`
	Sudo           bool              `json:"sudo"`
	InstallNginx   bool              `json:"install_nginx"`
	InstallGlances bool              `json:"install_glances"`
	InstallPaths   map[string]string `json:"install_paths,omitempty"`
}

type sshView struct {
	ServerID      int    `json:"server_id"`
	Status        string `json:"status"`
	Auth          string `json:"auth"`
	HasCredential bool   `json:"has_credential"`
	HostKeys      []struct {
		Type        string `json:"type"`
		Fingerprint string `json:"fingerprint"`
		ApprovedBy  string `json:"approved_by"`
	} `json:"host_keys"`
}

type scanView struct {
	Presented struct {
		Type        string `json:"type"`
		Fingerprint string `json:"fingerprint"`
	} `json:"presented"`
	Status string `json:"status"`
}

func (c *controllerProc) addSSHServer(in sshServer) int {
	c.t.Helper()
	var out struct {
		Server sshView `json:"server"`
	}
	var fail apiError
	code := c.api("POST", "/api/v1/servers/ssh", in, &out)
	if code != 201 {
		c.api("POST", "/api/v1/servers/ssh", in, &fail) // same refusal, decoded as an error
		c.t.Fatalf("add %s over ssh: %d %+v", in.Name, code, fail)
	}
	if !out.Server.HasCredential {
		c.t.Fatalf("server %s stored without its credential", in.Name)
	}
	return out.Server.ServerID
}

func (c *controllerProc) scan(id int) scanView {
	c.t.Helper()
	var s scanView
	if code := c.api("POST", fmt.Sprintf("/api/v1/servers/%d/ssh/scan", id), nil, &s); code != 200 {
		c.t.Fatalf("scan server %d: %d", id, code)
	}
	return s
}

func (c *controllerProc) approve(id int, keyType, fp string) {
	c.t.Helper()
	if code := c.api("POST", fmt.Sprintf("/api/v1/servers/%d/ssh/approve", id), map[string]string{"type": keyType, "fingerprint": fp}, nil); code != 200 {
		c.t.Fatalf("approve host key of server %d: %d", id, code)
	}
}

// mustSucceed fails the test with the task's log unless it succeeded.
func mustSucceed(t *testing.T, tv taskView) {
	t.Helper()
	if tv.Status != "succeeded" {
		t.Fatalf("task %d (%s) %s: %s\n%s", tv.ID, tv.Kind, tv.Status, tv.Error, tv.Log)
	}
}

var stepLine = regexp.MustCompile(`(?m)^== ([a-z-]+) \(([^)]+)\) (ok|failed)$`)

// steps lists the steps of a task log with their durations.
func steps(log string) (names []string, durations map[string]string) {
	durations = map[string]string{}
	for _, m := range stepLine.FindAllStringSubmatch(log, -1) {
		names = append(names, m[1])
		durations[m[1]] = m[2]
	}
	return names, durations
}

// TestProvisionOverSSH drives provisioning through the API against a real
// sshd in a network namespace: install with a key as a sudo user and with a
// password as root, a controller killed mid-run, sudo that wants a password,
// hostile input, a changed host key and uninstall.
func TestProvisionOverSSH(t *testing.T) {
	n := testnode.Start(t)
	c := startController(t, "--agent-listen", hostPort(t, n), "--agent-dist-dir", distDir(t), "--token-lifetime", "5m")
	pwned := filepath.Join(t.TempDir(), "pwned")

	// --- 1. Key auth as the sudo user: unknown key first, then approval. ---
	la := newNodeLayout(t)
	a := c.addSSHServer(sshServer{Name: "node-a", Host: n.Addr, Port: n.Port, User: n.SudoUser, Auth: "key",
		PrivateKey: string(n.ClientKeyPEM), Sudo: true, InstallNginx: true, InstallGlances: true, InstallPaths: la.paths()})
	tv := c.runTask(a, "provision")
	if tv.Status != "failed" || !strings.Contains(tv.Error, "unknown host key") || !strings.Contains(tv.Error, n.HostKeyFingerprint) {
		t.Fatalf("provisioning before approval: %s %q, want a failure naming the unknown key %s", tv.Status, tv.Error, n.HostKeyFingerprint)
	}
	if _, err := os.Stat(la.BinDir); !os.IsNotExist(err) {
		t.Fatalf("something was installed before the host key was approved: %v", err)
	}
	sc := c.scan(a)
	if sc.Status != "unknown" || sc.Presented.Fingerprint != n.HostKeyFingerprint || sc.Presented.Type != n.HostKeyType {
		t.Fatalf("scan %+v, want unknown %s %s", sc, n.HostKeyType, n.HostKeyFingerprint)
	}
	c.approve(a, sc.Presented.Type, sc.Presented.Fingerprint)
	if sc := c.scan(a); sc.Status != "approved" {
		t.Fatalf("scan after approval: %+v", sc)
	}

	tv = c.runTask(a, "provision")
	mustSucceed(t, tv)
	names, durations := steps(tv.Log)
	want := "connect,detect,upload,bootstrap,service,packages,nginx-include,done,enroll"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("steps %s, want %s:\n%s", got, want, tv.Log)
	}
	t.Logf("provision as sudo user with Glances: %s total; steps %v", tv.FinishedAt.Sub(tv.StartedAt).Round(time.Millisecond), durations)
	eventually(t, 30*time.Second, "node-a online with metrics", func() bool {
		s := c.server(a)
		_, ok := c.latest(a)
		return s.Status == "online" && s.Connected && ok
	})
	if _, err := os.Stat(filepath.Join(la.ConfigDir, "token")); !os.IsNotExist(err) {
		t.Errorf("the enrolled agent left its token file: %v", err)
	}
	if st, err := os.Stat(filepath.Join(la.ConfigDir, "agent.conf")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap file: %v %v, want mode 0600", st, err)
	}
	if agents, sups := agentProcesses(t, la); agents != 1 || sups != 1 {
		t.Fatalf("node-a runs %d agents under %d supervisors, want 1 and 1", agents, sups)
	}
	if total, active := c.certificates(a); total != 1 || active != 1 {
		t.Fatalf("node-a has %d certificates, %d active; want one identity", total, active)
	}

	// --- 2 and 4. Password auth as root; the controller is killed mid-run. ---
	lb := newNodeLayout(t)
	b := c.addSSHServer(sshServer{Name: "node-b", Host: n.Addr, Port: n.Port, User: "root", Auth: "password",
		Password: n.RootPassword, InstallPaths: lb.paths()})
	c.approve(b, n.HostKeyType, n.HostKeyFingerprint)
	killed := c.startTask(b, "provision")
	eventually(t, 60*time.Second, "node-b's upload to finish", func() bool {
		return strings.Contains(c.task(killed).Log, "== upload (")
	})
	c.kill()
	c.restart()
	if tv := c.task(killed); tv.Status != "failed" || !strings.Contains(tv.Error, "interrupted") {
		t.Fatalf("task cut short by the kill: %s %q, want failed as interrupted", tv.Status, tv.Error)
	}
	tv = c.runTask(b, "provision")
	mustSucceed(t, tv)
	_, durations = steps(tv.Log)
	t.Logf("provision as root with a password (re-run after a kill): %s total; steps %v", tv.FinishedAt.Sub(tv.StartedAt).Round(time.Millisecond), durations)
	eventually(t, 30*time.Second, "node-b online", func() bool { s := c.server(b); return s.Status == "online" && s.Connected })
	// A second re-run on a done node converges too.
	tv = c.runTask(b, "provision")
	mustSucceed(t, tv)
	_, durations = steps(tv.Log)
	t.Logf("re-provision of a done node as root: %s total; steps %v", tv.FinishedAt.Sub(tv.StartedAt).Round(time.Millisecond), durations)
	eventually(t, 30*time.Second, "node-b online after the re-run", func() bool { return c.server(b).Connected })
	eventually(t, 10*time.Second, "one agent process for node-b", func() bool {
		agents, sups := agentProcesses(t, lb)
		return agents == 1 && sups == 1
	})
	if _, active := c.certificates(b); active != 1 {
		t.Fatalf("node-b has %d active certificates, want one identity", active)
	}

	// --- 2. sudo that needs a password: a clear error and nothing installed. ---
	lc := newNodeLayout(t)
	cs := c.addSSHServer(sshServer{Name: "node-c", Host: n.Addr, Port: n.Port, User: n.PasswordUser, Auth: "password",
		Password: n.PasswordUserPass, Sudo: true, InstallPaths: lc.paths()})
	c.approve(cs, n.HostKeyType, n.HostKeyFingerprint)
	tv = c.runTask(cs, "provision")
	wantErr := fmt.Sprintf("sudo on %s requires a password; allow password-less sudo for %s or connect as root", n.Addr, n.PasswordUser)
	if tv.Status != "failed" || tv.Error != wantErr {
		t.Fatalf("sudo needing a password: %s %q, want failed %q", tv.Status, tv.Error, wantErr)
	}
	if names, _ := steps(tv.Log); strings.Join(names, ",") != "connect" {
		t.Fatalf("steps after sudo refused: %v\n%s", names, tv.Log)
	}
	for _, p := range []string{lc.BinDir, lc.StateDir, lc.ConfigDir, lc.NginxDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists although sudo was refused", p)
		}
	}

	// --- 6. Hostile values are refused field by field, or passed as data. ---
	hostile := []struct {
		field string
		edit  func(*sshServer)
	}{
		{"name", func(s *sshServer) { s.Name = "x;touch " + pwned }},
		{"name", func(s *sshServer) { s.Name = "$(touch " + pwned + ")" }},
		{"host", func(s *sshServer) { s.Host = n.Addr + ";touch " + pwned }},
		{"host", func(s *sshServer) { s.Host = "$(touch " + pwned + ")" }},
		{"host", func(s *sshServer) { s.Host = "a\nb" }},
		{"user", func(s *sshServer) { s.User = "root'\"" }},
		{"user", func(s *sshServer) { s.User = "root\ntouch " + pwned }},
		{"user", func(s *sshServer) { s.User = "`touch " + pwned + "`" }},
		{"port", func(s *sshServer) { s.Port = 70000 }},
		{"password", func(s *sshServer) { s.Password = "pw\ntouch " + pwned }},
		{"auth", func(s *sshServer) { s.Auth = "key;rm" }},
		{"install_paths", func(s *sshServer) { s.InstallPaths = map[string]string{"bin_dir": "/tmp/$(touch " + pwned + ")"} }},
		{"install_paths", func(s *sshServer) {
			s.InstallPaths = map[string]string{"state_dir": "/tmp/gatehouse'; touch " + pwned + "'"}
		}},
		{"install_paths", func(s *sshServer) {
			s.InstallPaths = map[string]string{"nginx_conf": "/etc/nginx/`touch " + pwned + "`"}
		}},
	}
	for i, h := range hostile {
		in := sshServer{Name: fmt.Sprintf("hostile-%d", i), Host: n.Addr, Port: n.Port, User: "root", Auth: "password", Password: "x"}
		h.edit(&in)
		var fail apiError
		code := c.api("POST", "/api/v1/servers/ssh", in, &fail)
		if code != 422 || fail.Error.Fields[h.field] == "" {
			t.Errorf("hostile %s %+v: %d %+v, want 422 with a message for %s", h.field, in, code, fail, h.field)
		}
	}
	var list struct {
		Servers []serverView `json:"servers"`
	}
	c.api("GET", "/api/v1/servers", nil, &list)
	for _, s := range list.Servers {
		if strings.HasPrefix(s.Name, "hostile") || strings.Contains(s.Name, "touch") {
			t.Errorf("a refused server was stored: %s", s.Name)
		}
	}
	// A hostile password is data for SSH, never a command.
	hp := c.addSSHServer(sshServer{Name: "hostile-password", Host: n.Addr, Port: n.Port, User: "root", Auth: "password",
		Password: "$(touch " + pwned + ")`touch " + pwned + "`'\";touch " + pwned, InstallPaths: newNodeLayout(t).paths()})
	c.approve(hp, n.HostKeyType, n.HostKeyFingerprint)
	if tv := c.runTask(hp, "provision"); tv.Status != "failed" || !strings.Contains(tv.Error, "refused the key or password") {
		t.Fatalf("wrong password: %s %q", tv.Status, tv.Error)
	}
	if _, err := os.Stat(pwned); !os.IsNotExist(err) {
		t.Fatalf("hostile input was executed: %s exists", pwned)
	}

	// --- 5. Uninstall: agent gone, certificate refused. ---
	stateCopy := t.TempDir()
	copyDir(t, lb.StateDir, stateCopy)
	conf := agentConf(t, lb)
	mustSucceed(t, c.runTask(b, "uninstall"))
	if agents, sups := agentProcesses(t, lb); agents != 0 || sups != 0 {
		t.Fatalf("after uninstall node-b runs %d agents under %d supervisors", agents, sups)
	}
	for _, p := range []string{lb.agentPath(), lb.StateDir, lb.ConfigDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after uninstall", p)
		}
	}
	if data, _ := os.ReadFile(lb.NginxConf); strings.Contains(string(data), "gatehouse") {
		t.Errorf("nginx.conf still includes Gatehouse after uninstall:\n%s", data)
	}
	if s := c.server(b); s.Status != "removed" || s.Connected {
		t.Fatalf("node-b after uninstall: %+v", s)
	}
	if _, active := c.certificates(b); active != 0 {
		t.Fatalf("node-b keeps %d active certificates after uninstall", active)
	}
	// The removed agent's identity, replayed from a copy, is refused.
	ghost := startProc(t, "removed agent", []string{"GATEHOUSE_AGENT_STATE_DIR=" + stateCopy, "GATEHOUSE_AGENT_NGINX_DIR=" + filepath.Join(stateCopy, "nginx")},
		bins.agent, "-config", "/dev/null", "-controller", conf["controller"], "-ca_pin", conf["ca_pin"])
	ghost.waitOutput(regexp.MustCompile(`controller link down`), 30*time.Second)
	if c.server(b).Connected {
		t.Fatal("the uninstalled agent's certificate was accepted")
	}
	ghost.kill()

	// --- 3. A changed host key stops provisioning before credentials go out. ---
	old := n.HostKeyFingerprint
	before := snapshot(t, la.BinDir, la.ConfigDir, la.NginxConf)
	n.Rekey(t)
	tv = c.runTask(a, "provision")
	for _, want := range []string{"host key", "changed", old, n.HostKeyFingerprint} {
		if tv.Status != "failed" || !strings.Contains(tv.Error, want) {
			t.Errorf("provisioning after a rekey: %s %q lacks %q", tv.Status, tv.Error, want)
		}
	}
	if after := snapshot(t, la.BinDir, la.ConfigDir, la.NginxConf); after != before {
		t.Fatalf("files changed on the node although the host key changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if sc := c.scan(a); sc.Status != "changed" || sc.Presented.Fingerprint != n.HostKeyFingerprint {
		t.Fatalf("scan after rekey: %+v", sc)
	}
	c.approve(a, n.HostKeyType, n.HostKeyFingerprint)
	var audit struct {
		Events []struct {
			Action string `json:"action"`
			Detail string `json:"detail"`
		} `json:"events"`
	}
	c.api("GET", "/api/v1/audit?limit=200", nil, &audit)
	var reapproved bool
	for _, e := range audit.Events {
		reapproved = reapproved || (e.Action == "server.hostkey.reapprove" && strings.Contains(e.Detail, old) && strings.Contains(e.Detail, n.HostKeyFingerprint))
	}
	if !reapproved {
		t.Errorf("the re-approval is not in the audit log: %+v", audit.Events)
	}
	mustSucceed(t, c.runTask(a, "provision"))
	eventually(t, 30*time.Second, "node-a back online", func() bool { return c.server(a).Connected })
	if total, active := c.certificates(a); total != 1 || active != 1 {
		t.Fatalf("node-a has %d certificates (%d active) after re-provisioning; want its one identity", total, active)
	}
	mustSucceed(t, c.runTask(a, "uninstall"))
	if agents, sups := agentProcesses(t, la); agents != 0 || sups != 0 {
		t.Fatalf("after uninstall node-a runs %d agents under %d supervisors", agents, sups)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// agentConf reads the bootstrap config provisioning wrote for l.
func agentConf(t *testing.T, l nodeLayout) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.ConfigDir, "agent.conf"))
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v
		}
	}
	if kv["controller"] == "" || !strings.HasPrefix(kv["ca_pin"], "sha256:") || kv["token_file"] != filepath.Join(l.ConfigDir, "token") {
		t.Fatalf("bootstrap config lacks controller, ca_pin or token_file:\n%s", data)
	}
	return kv
}
