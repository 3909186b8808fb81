package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
)

// run runs the command line with the given arguments and returns its exit
// code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := Run(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// "gatehouse token create --read-only" issues a token that may only read.
func TestReadOnlyTokenCreate(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runIn(t, "a long enough password\n", "user", "create", "ops", "--admin", "--password-stdin", "--data-dir", dir); code != 0 {
		t.Fatalf("user create: %d %s", code, errOut)
	}
	code, out, errOut := run(t, "token", "create", "scraper", "--user", "ops", "--read-only", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `API token "scraper" for ops`) {
		t.Fatalf("token create: %d %q %q", code, out, errOut)
	}
	a, err := controller.OpenAdmin(context.Background(), config.Config{DataDir: dir, DatabaseURL: "sqlite:" + filepath.Join(dir, "gatehouse.db"),
		MasterKeyFile: filepath.Join(dir, "master.key")}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	u, err := a.Users.Lookup(context.Background(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	toks, err := a.Tokens.List(context.Background(), u.ID)
	if err != nil || len(toks) != 1 || !toks[0].ReadOnly {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
}

// A snapshot taken with "gatehouse backup" goes back with "gatehouse
// restore", named before or after the flags; a command line without exactly
// one snapshot is a usage error.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(t.TempDir(), "snap.db")
	if code, out, errOut := run(t, "backup", "--data-dir", dir, "--to", snap); code != 0 || !strings.Contains(out, "gatehouse restore "+snap) {
		t.Fatalf("backup: %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"restore", "--data-dir", dir},
		{"restore", snap, "--data-dir", dir, "other.db"},
	} {
		if code, _, errOut := run(t, args...); code != 2 || !strings.Contains(errOut, "restore takes one snapshot file") {
			t.Errorf("%v: %d %q", args, code, errOut)
		}
	}
	if code, out, errOut := run(t, "restore", snap, "--data-dir", dir); code != 0 || !strings.Contains(out, "restored "+snap) ||
		!strings.Contains(out, "the database it replaced is at "+filepath.Join(dir, "gatehouse.db.before-restore-")) {
		t.Fatalf("restore before the flags: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run(t, "restore", "--data-dir", dir, snap); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore after the flags: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, "restore", "--data-dir", dir, filepath.Join(dir, "gatehouse.db")); code != 1 || !strings.Contains(errOut, "is the database itself") {
		t.Errorf("restore of the database onto itself: %d %q", code, errOut)
	}
	// Each restore kept the database it replaced under its own name.
	if aside, _ := filepath.Glob(filepath.Join(dir, "gatehouse.db.before-restore-*")); len(aside) != 2 {
		t.Errorf("databases kept aside: %v", aside)
	}
}

// "gatehouse server set" changes the settings of a server's nginx through the
// same checks as the settings page, refusing what they refuse, and says when
// the running controller deploys them.
func TestServerSetNginxSettings(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := run(t, "server", "add", "edge-1", "--data-dir", dir); code != 0 {
		t.Fatalf("server add: %d %q %q", code, out, errOut)
	}
	for _, bad := range [][]string{
		{"--unknown-names", "444"},
		{"--cache-max-size", "1g;"},
		{"--real-ip-from", "10.0.0.0/8;include", "--real-ip-header", "X-Forwarded-For"},
		{"--real-ip-header", "X-Real-IP"},
	} {
		if code, out, _ := run(t, append([]string{"server", "set", "edge-1", "--data-dir", dir}, bad...)...); code == 0 {
			t.Errorf("server set %v: accepted: %q", bad, out)
		}
	}
	code, out, errOut := run(t, "server", "set", "edge-1", "--unknown-names", "close", "--cache-max-size", "20G",
		"--real-ip-from", "192.0.2.0/24, 10.0.0.1", "--real-ip-header", "X-Real-IP", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("server set: %d %q", code, errOut)
	}
	for _, want := range []string{"trusted proxies 10.0.0.1,192.0.2.0/24 via X-Real-IP", "unknown names close", "cache size 20g", "within 5 minutes"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := run(t, "server", "set", "edge-1", "--unknown-names", "default", "--cache-max-size", "", "--data-dir", dir); code != 0 ||
		!strings.Contains(out, "unknown names default, cache size 1g") {
		t.Errorf("back to the defaults: %d %q", code, out)
	}
}
