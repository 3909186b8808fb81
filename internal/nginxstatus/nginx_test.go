package nginxstatus

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"
)

// startNginx runs a private nginx master in the foreground whose http block
// holds servers, with its pid, logs and temp paths in a temp directory, and
// returns once addr accepts connections. It skips where nginx is missing,
// unless in CI.
func startNginx(t *testing.T, servers, addr string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is required in CI: %v", err)
		}
		t.Skipf("nginx not installed: %v", err)
	}
	prefix := t.TempDir()
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
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
%[3]s
}
`, userLine, prefix, servers)
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx output:\n%s\nerror log:\n%s", out.String(), b)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited at start: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept on %s: %s", addr, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freePort returns a TCP port free on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Get(t)
}

// statusBlock is the server block the controller renders for the agent, on
// the given listen addresses, allowing the given clients besides loopback.
func statusBlock(listen []string, allow ...string) string {
	var b strings.Builder
	b.WriteString("server {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s;\n", l)
	}
	fmt.Fprintf(&b, "    server_name %s;\n    server_tokens off;\n    access_log off;\n", Host)
	for _, a := range append([]string{"127.0.0.1", "::1"}, allow...) {
		fmt.Fprintf(&b, "    allow %s;\n", a)
	}
	fmt.Fprintf(&b, "    deny all;\n    location = %s { stub_status; }\n    location / { return 404; }\n}\n", Path)
	return b.String()
}

// siteBlocks are what else a node serves on the same listeners: a catch-all
// default server that knows no name, and one domain.
func siteBlocks(listen []string) string {
	var b strings.Builder
	b.WriteString("server {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s default_server;\n", l)
	}
	b.WriteString("    return 404;\n}\nserver {\n")
	for _, l := range listen {
		fmt.Fprintf(&b, "    listen %s;\n", l)
	}
	b.WriteString("    server_name app.test;\n    location / { return 200 \"app\\n\"; }\n}\n")
	return b.String()
}
