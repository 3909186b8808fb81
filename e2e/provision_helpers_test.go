package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the controller's database to count identities

	"github.com/gatehousehq/gatehouse/internal/testutil/testnode"
)

// nodeLayout is where one provisioned agent keeps its files. Test nodes share
// the host's filesystem, so each install goes to its own temporary tree.
type nodeLayout struct {
	Root, BinDir, StateDir, ConfigDir, NginxDir, UnitDir, NginxConf string
}

func newNodeLayout(t *testing.T) nodeLayout {
	t.Helper()
	root := t.TempDir()
	l := nodeLayout{
		Root:      root,
		BinDir:    filepath.Join(root, "bin"),
		StateDir:  filepath.Join(root, "var", "gatehouse-agent"),
		ConfigDir: filepath.Join(root, "etc", "gatehouse-agent"),
		NginxDir:  filepath.Join(root, "etc", "nginx", "gatehouse"),
		UnitDir:   filepath.Join(root, "systemd"),
		NginxConf: filepath.Join(root, "nginx.conf"),
	}
	conf := fmt.Sprintf("pid %s;\nerror_log stderr;\nevents {\n}\nhttp {\n    access_log off;\n}\n", filepath.Join(root, "nginx.pid"))
	if err := os.WriteFile(l.NginxConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Leave no agent or Glances running if the test stops early.
	t.Cleanup(func() {
		for _, name := range []string{"agent", "glances"} {
			for _, f := range []string{name + ".supervisor.pid", name + ".pid"} {
				if pid := readPidFile(filepath.Join(l.StateDir, f)); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return l
}

func (l nodeLayout) paths() map[string]string {
	return map[string]string{"bin_dir": l.BinDir, "state_dir": l.StateDir, "config_dir": l.ConfigDir,
		"nginx_dir": l.NginxDir, "unit_dir": l.UnitDir, "nginx_conf": l.NginxConf}
}

func (l nodeLayout) agentPath() string { return filepath.Join(l.BinDir, "gatehouse-agent") }

func readPidFile(p string) int {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// processAlive reports whether pid runs (a zombie does not count).
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return err == nil && !bytes.Contains(status, []byte("State:\tZ"))
}

// agentProcesses counts running processes started from the agent binary of
// l, and the supervisors keeping one running.
func agentProcesses(t *testing.T, l nodeLayout) (agents, supervisors int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	sup := []byte("supervise\x00run\x00agent\x00" + l.StateDir + "\x00")
	bin := []byte(l.agentPath() + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !processAlive(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		switch {
		case bytes.Contains(cmdline, sup):
			supervisors++
		case bytes.HasPrefix(cmdline, bin):
			agents++
		}
	}
	return agents, supervisors
}

// snapshot lists every file under the roots with its size, mode and
// modification time, to show that nothing was written.
func snapshot(t *testing.T, roots ...string) string {
	t.Helper()
	var lines []string
	for _, root := range roots {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				lines = append(lines, p+" "+err.Error())
				return nil
			}
			lines = append(lines, fmt.Sprintf("%s %v %d %d", p, info.Mode(), info.Size(), info.ModTime().UnixNano()))
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// distDir holds the agent build for this machine under the name the
// controller looks for.
func distDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(bins.agent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gatehouse-agent-linux-"+runtime.GOARCH), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostPort picks a free port on the host end of the node's veth pair, where
// the controller's agent endpoint must listen for the node to reach it.
func hostPort(t *testing.T, n *testnode.Node) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(n.HostAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type taskView struct {
	ID         int       `json:"id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Error      string    `json:"error"`
	Log        string    `json:"log"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

func (c *controllerProc) task(id int) taskView {
	c.t.Helper()
	var tv taskView
	if code := c.api("GET", fmt.Sprintf("/api/v1/tasks/%d", id), nil, &tv); code != 200 {
		c.t.Fatalf("GET task %d: %d", id, code)
	}
	return tv
}

// startTask starts a provision or uninstall task and returns its id.
func (c *controllerProc) startTask(serverID int, kind string) int {
	c.t.Helper()
	var out struct {
		Task taskView `json:"task"`
	}
	if code := c.api("POST", fmt.Sprintf("/api/v1/servers/%d/%s", serverID, kind), nil, &out); code != 202 {
		c.t.Fatalf("start %s on server %d: %d", kind, serverID, code)
	}
	return out.Task.ID
}

// runTask starts a task and waits for its end.
func (c *controllerProc) runTask(serverID int, kind string) taskView {
	c.t.Helper()
	return c.waitTask(c.startTask(serverID, kind))
}

func (c *controllerProc) waitTask(id int) taskView {
	c.t.Helper()
	var tv taskView
	eventually(c.t, 2*time.Minute, fmt.Sprintf("task %d to finish", id), func() bool {
		tv = c.task(id)
		return tv.Status == "succeeded" || tv.Status == "failed"
	})
	return tv
}

// certificates counts a server's agent certificates in the controller's
// database: all of them, and those not revoked.
func (c *controllerProc) certificates(serverID int) (total, active int) {
	c.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dataDir, "gatehouse.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL) FROM agent_certificates WHERE server_certificates = ?`, serverID).Scan(&total, &active)
	if err != nil {
		c.t.Fatal(err)
	}
	return total, active
}
