package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// The backup job snapshots the running controller's database into
// DATA_DIR/backups, keeps the newest backup_keep scheduled snapshots and
// leaves every other file there alone; a snapshot opens as a controller's
// database with the same users.
func TestBackupJob(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.BackupKeep = 2
	backups := filepath.Join(dir, "backups")
	if err := os.MkdirAll(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := []string{"gatehouse-manual-20200101-000000.000.db", "notes.txt", "gatehouse-20200101-000000.000.db.partial"}
	for _, n := range keep {
		if err := os.WriteFile(filepath.Join(backups, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An old scheduled snapshot, the first to go.
	if err := os.WriteFile(filepath.Join(backups, "gatehouse-20200101-000000.000.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, out := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	c, stop := start(t, cfg, logs, out)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	runs := func() int {
		h, err := c.sched.History(context.Background(), "database.backup", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range h {
			if r.FinishedAt != nil {
				n++
			}
		}
		return n
	}
	waitRuns := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for runs() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d backup runs finished, want %d; log:\n%s", runs(), n, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRuns(1) // a fresh controller has never backed up, so it does at once
	for i := 2; i <= 3; i++ {
		time.Sleep(5 * time.Millisecond) // snapshot names are in milliseconds
		for c.sched.Trigger("database.backup") != nil {
			time.Sleep(5 * time.Millisecond) // the previous run is still finishing
		}
		waitRuns(i)
	}

	entries, err := os.ReadDir(backups)
	if err != nil {
		t.Fatal(err)
	}
	var scheduled, others []string
	for _, e := range entries {
		if scheduledBackup.MatchString(e.Name()) {
			scheduled = append(scheduled, e.Name())
		} else {
			others = append(others, e.Name())
		}
	}
	slices.Sort(keep)
	if !slices.Equal(others, keep) {
		t.Fatalf("other files in the backup directory: %v, want %v untouched", others, keep)
	}
	if len(scheduled) != 2 || slices.Contains(scheduled, "gatehouse-20200101-000000.000.db") {
		t.Fatalf("scheduled snapshots kept: %v, want the newest 2", scheduled)
	}
	h, _ := c.sched.History(context.Background(), "database.backup", 1)
	if len(h) != 1 || !strings.Contains(h[0].Log, "wrote "+filepath.Join(backups, scheduled[1])) || !strings.Contains(h[0].Log, "deleted the older snapshot") {
		t.Fatalf("the last run's log does not say what it wrote and deleted: %+v", h)
	}
	st, err := os.Stat(filepath.Join(backups, scheduled[1]))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v %v", st, err)
	}
	stop()
	stopped = true

	// The newest snapshot is a working database: a controller started on a
	// copy of the data directory with it in place has the same admin.
	restored := t.TempDir()
	key, err := os.ReadFile(cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(filepath.Join(backups, scheduled[1]))
	if err != nil {
		t.Fatal(err)
	}
	if os.WriteFile(filepath.Join(restored, "master.key"), key, 0o600) != nil || os.WriteFile(filepath.Join(restored, "gatehouse.db"), snap, 0o600) != nil {
		t.Fatal("copying the backup")
	}
	rcfg := testConfig(t, restored)
	rcfg.BackupInterval = 0
	out2 := &syncbuf.Buffer{}
	c2, stop2 := start(t, rcfg, &syncbuf.Buffer{}, out2)
	defer stop2()
	if _, err := c2.users.Lookup(context.Background(), "admin"); err != nil {
		t.Fatalf("the restored database has no admin: %v", err)
	}
	if strings.Contains(out2.String(), "First run") {
		t.Fatal("the restored controller took itself for a first run")
	}
	if _, ok := c2.sched.Job("database.backup"); ok {
		t.Fatal("backup_interval 0 still registered the backup job")
	}
}

// "gatehouse backup" writes a manual snapshot the job never prunes, or to
// a new file of the admin's choosing, and never over an existing one.
func TestAdminBackup(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	a, err := OpenAdmin(context.Background(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path, size, err := a.Backup(context.Background(), "")
	if err != nil || size == 0 || filepath.Dir(path) != filepath.Join(dir, "backups") ||
		!strings.HasPrefix(filepath.Base(path), "gatehouse-manual-") || scheduledBackup.MatchString(filepath.Base(path)) {
		t.Fatalf("manual backup: %s %d %v", path, size, err)
	}
	to := filepath.Join(t.TempDir(), "before-upgrade.db")
	if p, _, err := a.Backup(context.Background(), to); err != nil || p != to {
		t.Fatalf("backup --to: %s %v", p, err)
	}
	if _, _, err := a.Backup(context.Background(), to); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if a.DatabasePath() != filepath.Join(dir, "gatehouse.db") {
		t.Fatalf("database path %q", a.DatabasePath())
	}
}
