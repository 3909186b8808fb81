package nginxconf

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehousehq/gatehouse/internal/testutil/freeport"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

// testRoot prefixes every path in test configurations; goldens keep it, and runs against
// real nginx replace it with a temporary directory holding real files.
const testRoot = "/srv/gatehouse-test"

const streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// hasStream reports whether a release contains stream files.
func hasStream(files []File) bool {
	for _, f := range files {
		if strings.HasPrefix(f.Path, StreamDir+"/") {
			return true
		}
	}
	return false
}

// nginxEnv is a temporary nginx prefix holding a release, TLS material and a main config.
type nginxEnv struct {
	dir  string
	conf string
}

// newNginxEnv writes files (with testRoot replaced by a temp dir) and a main nginx.conf that
// includes them. extraMain and extraHTTP are added to the main and http contexts.
func newNginxEnv(t testing.TB, files []File, extraMain, extraHTTP string) nginxEnv {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"release/http", "release/stream", "tls", "acme/.well-known/acme-challenge", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, "release", filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := strings.ReplaceAll(string(f.Content), testRoot, dir)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nginxtest.WriteSelfSigned(t, filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"), "example.com")

	var main strings.Builder
	if hasStream(files) {
		if _, err := os.Stat(streamModule); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("nginx stream module missing (install libnginx-mod-stream): %v", err)
			}
			t.Skip("nginx stream module missing (install libnginx-mod-stream)")
		}
		main.WriteString("load_module " + streamModule + ";\n")
	}
	main.WriteString("pid " + dir + "/nginx.pid;\n")
	main.WriteString("error_log " + dir + "/logs/error.log;\n")
	main.WriteString(extraMain)
	main.WriteString("events { worker_connections 64; }\n")
	main.WriteString("http {\n")
	for _, tp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		main.WriteString("    " + tp + "_temp_path " + dir + "/tmp/" + tp + ";\n")
	}
	main.WriteString("    access_log off;\n")
	main.WriteString(extraHTTP)
	main.WriteString("    include " + dir + "/release/http/*.conf;\n}\n")
	if hasStream(files) {
		main.WriteString("stream {\n    include " + dir + "/release/stream/*.conf;\n}\n")
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return nginxEnv{dir: dir, conf: conf}
}

// nginxCheck runs "nginx -t" on a release and fails the test with nginx's own message when
// nginx rejects it or warns about it.
func nginxCheck(t testing.TB, files []File) {
	t.Helper()
	bin := nginxtest.Binary(t)
	env := newNginxEnv(t, files, "", "")
	args := []string{"-t", "-p", env.dir, "-c", env.conf}
	// nginx -t binds every listen address briefly; inside a fresh network namespace that
	// cannot disturb other nginx processes on this machine.
	if u, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		args = append([]string{"-n", bin}, args...)
		bin = u
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t rejected the rendered configuration: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("[warn]")) {
		t.Fatalf("nginx -t warned about the rendered configuration:\n%s", out)
	}
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	return freeport.Get(t)
}

// serveNginx runs real nginx in the foreground on a rendered release, with
// the given files placed under its ACME webroot, until the test ends, and
// returns once it accepts connections on 127.0.0.1:port.
func serveNginx(t *testing.T, files []File, challenges map[string]string, port int) {
	t.Helper()
	bin := nginxtest.Binary(t)
	env := newNginxEnv(t, files, "daemon off;\nmaster_process off;\n", "")
	for name, content := range challenges {
		if err := os.WriteFile(filepath.Join(env.dir, "acme/.well-known/acme-challenge", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-p", env.dir, "-c", env.conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// nginx ends with the test binary, even one that panics or times out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitListening(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited, env.dir, &stderr)
}
