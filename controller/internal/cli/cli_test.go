package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the command line with the given arguments and returns its exit
// code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := Run(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
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
