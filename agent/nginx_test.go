package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func newTestAgent(t *testing.T, edit func(*Config)) *Agent {
	t.Helper()
	cfg := Config{ControllerAddr: "127.0.0.1:1", CAPin: "sha256:" + strings.Repeat("ab", 32),
		StateDir: t.TempDir(), NginxDir: filepath.Join(t.TempDir(), "gatehouse")}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func applyCmd(rev int64, files ...*agentv1.NginxFile) *agentv1.Command {
	return &agentv1.Command{Kind: &agentv1.Command_ApplyNginxRelease{ApplyNginxRelease: &agentv1.ApplyNginxRelease{Revision: rev, Files: files}}}
}

// Without nginx the agent still runs; every nginx command says what is
// missing, and nothing is written.
func TestNginxCommandsWithoutNginx(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t, func(c *Config) { c.NginxBinary = "/nonexistent/nginx" })
	if a.nginx.node(a.cfg).GetInstalled() {
		t.Fatal("nginx reported installed")
	}
	cmds := map[string]*agentv1.Command{
		"apply": applyCmd(1, &agentv1.NginxFile{Path: "http/a.conf", Content: []byte("# a\n")}),
		"drift": {Kind: &agentv1.Command_CheckNginxDrift{CheckNginxDrift: &agentv1.CheckNginxDrift{}}},
		"place": {Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{
			Token: strings.Repeat("a", 43), KeyAuthorization: strings.Repeat("a", 43) + ".thumb"}}},
		"remove": {Kind: &agentv1.Command_RemoveChallenge{RemoveChallenge: &agentv1.RemoveChallenge{Token: strings.Repeat("a", 43)}}},
	}
	for name, cmd := range cmds {
		res := a.execute(context.Background(), cmd)
		e := res.GetError()
		if e.GetCode() != agentv1.ErrorCode_ERROR_CODE_FAILED || !strings.Contains(e.GetMessage(), "nginx is not installed on this node") {
			t.Errorf("%s: got %v, want FAILED saying nginx is not installed", name, res)
		}
	}
	if _, err := os.Stat(a.cfg.NginxDir); !os.IsNotExist(err) {
		t.Fatalf("managed dir created without nginx: %v", err)
	}
	if rev := a.nginx.current(); rev != 0 {
		t.Fatalf("current = %d, want 0", rev)
	}
}

// Hostile arguments are refused as invalid before anything reaches nginx.
func TestNginxCommandsRefuseHostileArguments(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is required in CI: %v", err)
		}
		t.Skipf("nginx not installed: %v", err)
	}
	a := newTestAgent(t, func(c *Config) { c.NginxBinary = bin })
	tests := []struct {
		name string
		cmd  *agentv1.Command
		want string
	}{
		{"zero revision", applyCmd(0), "revision 0"},
		{"negative revision", applyCmd(-3), "revision -3"},
		{"traversal", applyCmd(1, &agentv1.NginxFile{Path: "../../etc/passwd", Content: []byte("x")}), `"../../etc/passwd"`},
		{"absolute", applyCmd(1, &agentv1.NginxFile{Path: "/etc/nginx/nginx.conf", Content: []byte("x")}), `"/etc/nginx/nginx.conf"`},
		{"setuid mode", applyCmd(1, &agentv1.NginxFile{Path: "http/a.conf", Content: []byte("x"), Mode: 0o4755}), "mode"},
		{"duplicate", applyCmd(1, &agentv1.NginxFile{Path: "http/a.conf"}, &agentv1.NginxFile{Path: "http/a.conf"}), "duplicate"},
		{"challenge token", &agentv1.Command{Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{
			Token: "../../../../etc/cron.d/x", KeyAuthorization: "x.y"}}}, "token"},
		{"challenge key auth", &agentv1.Command{Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{
			Token: strings.Repeat("a", 43), KeyAuthorization: strings.Repeat("a", 43) + ".<script>"}}}, "key authorization"},
		{"remove token", &agentv1.Command{Kind: &agentv1.Command_RemoveChallenge{RemoveChallenge: &agentv1.RemoveChallenge{Token: "a/b"}}}, "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := a.execute(context.Background(), tc.cmd)
			e := res.GetError()
			if e.GetCode() != agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT || !strings.Contains(e.GetMessage(), tc.want) {
				t.Fatalf("got %v, want INVALID_ARGUMENT mentioning %q", res, tc.want)
			}
		})
	}
	if rev := a.nginx.current(); rev != 0 {
		t.Fatalf("current = %d after refused releases, want 0", rev)
	}
	entries, err := os.ReadDir(filepath.Join(a.cfg.NginxDir, "releases"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("releases after refused applies: %v %v", entries, err)
	}
	// With nothing applied, drift is clean and a challenge round trip works.
	res := a.execute(context.Background(), &agentv1.Command{Kind: &agentv1.Command_CheckNginxDrift{CheckNginxDrift: &agentv1.CheckNginxDrift{}}})
	if d := res.GetDrift(); d == nil || len(d.GetAdded())+len(d.GetRemoved())+len(d.GetModified()) != 0 {
		t.Fatalf("drift = %v, want a clean result", res)
	}
	token := strings.Repeat("b", 43)
	res = a.execute(context.Background(), &agentv1.Command{Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{Token: token, KeyAuthorization: token + ".thumb"}}})
	if res.GetChallenge() == nil {
		t.Fatalf("place challenge: %v", res)
	}
	got, err := os.ReadFile(filepath.Join(a.cfg.NginxDir, "acme/.well-known/acme-challenge", token))
	if err != nil || string(got) != token+".thumb" {
		t.Fatalf("challenge file = %q, %v", got, err)
	}
	res = a.execute(context.Background(), &agentv1.Command{Kind: &agentv1.Command_RemoveChallenge{RemoveChallenge: &agentv1.RemoveChallenge{Token: token}}})
	if res.GetChallenge() == nil {
		t.Fatalf("remove challenge: %v", res)
	}
	if _, err := os.Stat(filepath.Join(a.cfg.NginxDir, "acme/.well-known/acme-challenge", token)); !os.IsNotExist(err) {
		t.Fatalf("challenge still there: %v", err)
	}
}

// Hello reports the release `current` names, read without waiting for an
// apply and without creating anything when the managed dir is missing.
func TestNginxCurrentForHello(t *testing.T) {
	t.Parallel()
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to stand in for nginx")
	}
	a := newTestAgent(t, func(c *Config) { c.NginxBinary = truePath })
	if rev := a.nginx.current(); rev != 0 {
		t.Fatalf("current = %d without a managed dir, want 0", rev)
	}
	if _, err := os.Stat(a.cfg.NginxDir); !os.IsNotExist(err) {
		t.Fatalf("reporting created the managed dir: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(a.cfg.NginxDir, "releases", "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("releases/7", filepath.Join(a.cfg.NginxDir, "current")); err != nil {
		t.Fatal(err)
	}
	if rev := a.nginx.current(); rev != 7 {
		t.Fatalf("current = %d, want 7", rev)
	}
	node := a.nginx.node(a.cfg)
	if node.GetDir() != a.cfg.NginxDir || !node.GetInstalled() || node.GetHttpPort() != 80 || node.GetHttpsPort() != 443 || node.GetBindAddress() != "" {
		t.Fatalf("nginx node = %v", node)
	}
}

// Hello says whether nginx has stub_status, as `nginx -V` lists it: the real
// nginx does (Debian builds it in); a binary that says nothing, or fails,
// does not.
func TestNginxStubStatusForHello(t *testing.T) {
	t.Parallel()
	real, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nginx is not installed (CI=true): %v", err)
		}
		t.Skip("nginx is not installed")
	}
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, binary string
		want         bool
		version      string // "*": any nginx/x.y.z
	}{
		{"real nginx", real, true, "*"},
		{"built without it", script("plain", `echo "nginx version: openresty/1.21.4.1" >&2; echo "configure arguments: --with-http_ssl_module" >&2`), false, "openresty/1.21.4.1"},
		{"says it, then fails", script("failing", `echo "nginx version: nginx/1.22.1" >&2; echo "`+stubStatusFlag+`" >&2; exit 1`), false, ""},
		{"hostile version", script("hostile", `printf 'nginx version: nginx/1.2.3<script>\n' >&2`), false, ""},
		{"missing binary", filepath.Join(dir, "absent"), false, ""},
	} {
		a := newTestAgent(t, func(c *Config) { c.NginxBinary = tc.binary })
		node := a.nginx.node(a.cfg)
		if got := node.GetStubStatus(); got != tc.want {
			t.Errorf("%s: stub_status = %v, want %v", tc.name, got, tc.want)
		}
		if got := node.GetVersion(); tc.version == "*" && !strings.HasPrefix(got, "nginx/") || tc.version != "*" && got != tc.version {
			t.Errorf("%s: version = %q, want %q", tc.name, got, tc.version)
		}
	}
}

// The version is the word after "nginx version: " when it has the form
// name/1.2.3; anything else is no version.
func TestParseNginxVersion(t *testing.T) {
	t.Parallel()
	for out, want := range map[string]string{
		"nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.15\n": "nginx/1.22.1",
		"nginx version: nginx/1.24.0 (Ubuntu)\r\nbuilt by gcc\n":   "nginx/1.24.0",
		"built by gcc\nnginx version: openresty/1.21.4.1\n":        "openresty/1.21.4.1",
		"nginx version: nginx/1.22.1\x1b[31m\n":                    "",
		"nginx version: \n":                                        "",
		"configure arguments: --with-http_stub_status_module\n":    "",
		"nginx version: nginx/" + strings.Repeat("1.", 30) + "1\n": "",
		"xnginx version: nginx/1.22.1\n":                           "",
		"nginx version: nginx/1.22.1\nnginx version: evil/9.9.9\n": "nginx/1.22.1",
	} {
		if got := parseNginxVersion([]byte(out)); got != want {
			t.Errorf("parseNginxVersion(%q) = %q, want %q", out, got, want)
		}
	}
}
