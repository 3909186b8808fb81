package nginx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

// testNginx is a private nginx master run by the test in the foreground,
// with its pid, logs and temp paths in a temp directory.
type testNginx struct {
	bin      string
	prefix   string
	conf     string
	pidFile  string
	errorLog string
	cmd      *exec.Cmd
	output   *bytes.Buffer
}

// readableTempDir is t.TempDir made traversable, so nginx workers running
// as nobody can read challenge files below it.
func readableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startNginx starts a master whose http{} includes includeGlob.
func startNginx(t testing.TB, includeGlob string) *testNginx {
	t.Helper()
	bin := nginxtest.Binary(t)
	prefix := readableTempDir(t)
	n := &testNginx{
		bin:      bin,
		prefix:   prefix,
		conf:     filepath.Join(prefix, "nginx.conf"),
		pidFile:  filepath.Join(prefix, "nginx.pid"),
		errorLog: filepath.Join(prefix, "error.log"),
		output:   &bytes.Buffer{},
	}
	userLine := ""
	if os.Geteuid() == 0 {
		group := "nogroup"
		if _, err := user.LookupGroup(group); err != nil {
			group = "nobody"
		}
		userLine = "user nobody " + group + ";"
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
%s
pid %s;
error_log %s;
events { worker_connections 256; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path %[4]s/tmp/body;
    proxy_temp_path %[4]s/tmp/proxy;
    fastcgi_temp_path %[4]s/tmp/fastcgi;
    uwsgi_temp_path %[4]s/tmp/uwsgi;
    scgi_temp_path %[4]s/tmp/scgi;
    server_names_hash_max_size 65536;
    server_names_hash_bucket_size 128;
    include %[5]s;
}
`, userLine, n.pidFile, n.errorLog, prefix, includeGlob)
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, n.args()...)
	n.cmd.Stdout = n.output
	n.cmd.Stderr = n.output
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-exited
		}
	})
	// Ready once the master wrote its pid and started a worker.
	want := strconv.Itoa(n.cmd.Process.Pid)
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(n.pidFile)
		if strings.TrimSpace(string(data)) == want {
			if kids, err := (master{pid: n.cmd.Process.Pid}).children(); err == nil && len(kids) > 0 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited at start: %s", n.output)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start: %s", n.output)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

func (n *testNginx) args() []string { return []string{"-p", n.prefix, "-c", n.conf} }

func (n *testNginx) master() master { return master{pid: n.cmd.Process.Pid} }

// fixture is a private nginx plus an Applier driving it.
type fixture struct {
	t    testing.TB
	dir  string
	ngx  *testNginx
	a    *Applier
	port int
	logs *bytes.Buffer
}

// newFixture starts nginx including <dir>/current/http/*.conf and returns an
// Applier for dir; edit adjusts the configuration before New.
func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	dir := filepath.Join(readableTempDir(t), "gatehouse")
	ngx := startNginx(t, filepath.Join(dir, "current", "http", "*.conf"))
	cfg := Config{
		Dir:         dir,
		NginxBinary: ngx.bin,
		NginxArgs:   ngx.args(),
		PIDFile:     ngx.pidFile,
		ErrorLog:    ngx.errorLog,
	}
	if edit != nil {
		edit(&cfg)
	}
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	a, err := New(logger, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, dir: dir, ngx: ngx, a: a, port: freePort(t), logs: &logs}
}

func freePort(t testing.TB) int {
	t.Helper()
	return freeport.Get(t)
}

// server renders a server block answering every request with body.
func server(port int, name, body string) string {
	return fmt.Sprintf("server {\n    listen 127.0.0.1:%d;\n    server_name %s;\n    location / { return 200 %q; }\n}\n", port, name, body)
}

func release(rev uint64, files ...string) Release {
	r := Release{Revision: rev}
	for i := 0; i+1 < len(files); i += 2 {
		r.Files = append(r.Files, File{Path: files[i], Content: []byte(files[i+1])})
	}
	return r
}

func (f *fixture) apply(rel Release) Outcome {
	f.t.Helper()
	o, err := f.a.Apply(context.Background(), rel)
	if err != nil {
		f.t.Fatalf("Apply(%d): %v", rel.Revision, err)
	}
	return o
}

func (f *fixture) mustApply(rel Release) Outcome {
	f.t.Helper()
	o := f.apply(rel)
	if o.Code != Applied {
		f.t.Fatalf("Apply(%d) = %s: %s\nnginx log:\n%s\napplier log:\n%s", rel.Revision, o.Code, o.Output, readFile(f.t, f.ngx.errorLog), f.logs)
	}
	return o
}

// get asks nginx for path on the fixture port with a Host header.
func get(t testing.TB, port int, host, path string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// settle waits until nginx runs a single generation: the test config has
// one worker, so exactly one live child that is not shutting down. Only then
// does a request show which configuration nginx runs, rather than
// possibly reaching an old worker in the moments after a reload.
func (n *testNginx) settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		kids, err := n.master().children()
		if err != nil {
			t.Fatal(err)
		}
		if liveChildren(kids) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx still runs %d workers", liveChildren(kids))
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) settle() { f.t.Helper(); f.ngx.settle(f.t) }

func (f *fixture) wantBody(host, want string) {
	f.t.Helper()
	f.settle()
	code, body := get(f.t, f.port, host, "/")
	if code != http.StatusOK || body != want {
		f.t.Fatalf("GET %s = %d %q, want 200 %q", host, code, body, want)
	}
}

func (f *fixture) currentTarget() string {
	f.t.Helper()
	target, err := os.Readlink(filepath.Join(f.dir, "current"))
	if err != nil {
		f.t.Fatalf("read current: %v", err)
	}
	return target
}

func (f *fixture) releaseNames() []string {
	f.t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.dir, "releases"))
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(data)
}

// liveChildren counts the master's children that are neither exited nor
// shutting down (old workers retitle themselves as they close their
// listening sockets). A freshly forked worker still carries the master's
// title and counts too.
func liveChildren(kids map[int]bool) int {
	n := 0
	for pid := range kids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || bytes.Contains(cmdline, []byte("shutting down")) {
			continue
		}
		n++
	}
	return n
}
