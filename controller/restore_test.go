package controller

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
)

// A snapshot goes back only while no controller serves from the data
// directory, and only when it is sound, not from a newer Gatehouse, and
// sealed with the configured master key; a refused one leaves the database
// as it was. A restored one serves with its own state, and the database it
// replaced is kept aside.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	log := hclog.NewNullLogger()
	c, stop := start(t, cfg, io.Discard, io.Discard)
	addUser := func(c *Controller, name string) {
		t.Helper()
		if _, err := c.users.Create(ctx, audit.System("test"), name, name+" password", auth.RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	addUser(c, "before")
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, _, err := snapshotTo(ctx, c.db, snap); err != nil {
		t.Fatal(err)
	}
	addUser(c, "after")

	// Not while it serves; and a second controller may not serve beside it.
	if _, err := Restore(ctx, cfg, snap, log); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("restore while serving: %v", err)
	}
	if _, err := New(ctx, cfg, log, Options{}); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("a second controller on the same data directory: %v", err)
	}
	stop()

	dbPath := filepath.Join(dir, "gatehouse.db")
	before, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(name, from string, cfg config.Config, want string) {
		t.Helper()
		_, err := Restore(ctx, cfg, from, log)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
		now, err := os.ReadFile(dbPath)
		if err != nil || string(now) != string(before) {
			t.Errorf("%s: the database changed (%v)", name, err)
		}
		left, _ := filepath.Glob(filepath.Join(dir, "gatehouse.db.*"))
		if len(left) > 0 {
			t.Errorf("%s: left %v", name, left)
		}
	}
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	refused("half a snapshot", damaged, cfg, "malformed")
	// Whole, with the first page of the users table overwritten: it opens,
	// and only the integrity check finds the damage.
	if err := os.WriteFile(damaged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	raw, err := sql.Open("sqlite", damaged)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'users'").Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	scribbled := append([]byte(nil), data...)
	for i := (root - 1) * pageSize; i < root*pageSize; i++ {
		scribbled[i] = 0xA5
	}
	if err := os.WriteFile(damaged, scribbled, 0o600); err != nil {
		t.Fatal(err)
	}
	refused("a damaged page", damaged, cfg, "the snapshot cannot be used: check the database: database disk image is malformed")
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database\n", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("not a database", notDB, cfg, "not a database")
	refused("the database itself", dbPath, cfg, "the database itself")
	refused("a directory", dir, cfg, "not a regular file")
	refused("missing", filepath.Join(dir, "nope.db"), cfg, "no such file")

	newer := filepath.Join(t.TempDir(), "newer.db")
	if err := os.WriteFile(newer, data, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err = sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO gatehouse_schema_migrations (version, name, applied_at) VALUES ('99991231235959', '99991231235959_future.sql', CURRENT_TIMESTAMP)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	refused("from a newer Gatehouse", newer, cfg, "newer Gatehouse")

	otherKey, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := cfg
	wrongKey.MasterKey = otherKey.Format()
	refused("another master key", snap, wrongKey, "another master key than the one in GATEHOUSE_MASTER_KEY")
	noKey := cfg
	noKey.MasterKeyFile = filepath.Join(t.TempDir(), "master.key")
	refused("no master key", snap, noKey, "master key cannot be read")

	res, err := Restore(ctx, cfg, snap, log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Database != dbPath || res.Previous == "" || res.Pending != 0 || res.Size != int64(len(data)) {
		t.Errorf("restore: %+v", res)
	}
	if aside, err := os.ReadFile(res.Previous); err != nil || string(aside) != string(before) {
		t.Errorf("the replaced database was not kept aside: %v (%d bytes, want %d)", err, len(aside), len(before))
	}
	if st, err := os.Stat(dbPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("restored database: %v %v", st, err)
	}
	c, stop = start(t, cfg, io.Discard, io.Discard)
	defer stop()
	for name, want := range map[string]bool{"before": true, "after": false} {
		_, err := c.users.Lookup(ctx, name)
		if got := err == nil; got != want {
			t.Errorf("user %s present: %v, want %v (%v)", name, got, want, err)
		}
	}
}
