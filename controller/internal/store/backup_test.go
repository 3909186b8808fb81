package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/gatehousehq/gatehouse/ent/user"
)

// A snapshot taken while a write transaction is open holds the committed
// rows, not the open ones, opens as a database of its own, and is readable
// by its owner only; an existing file is never overwritten.
func TestSnapshot(t *testing.T) {
	eachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "snap.db")
		if db.Dialect != dialect.SQLite {
			if err := db.Snapshot(ctx, out); !errors.Is(err, ErrSnapshotUnsupported) {
				t.Fatalf("snapshot of PostgreSQL: %v", err)
			}
			return
		}
		if err := db.Client.User.Create().SetUsername("kept").SetPasswordHash("x").SetRole(user.RoleUser).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		tx, err := db.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.User.Create().SetUsername("uncommitted").SetPasswordHash("x").SetRole(user.RoleUser).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- db.Snapshot(ctx, out) }()
		// SQLite lets one writer in at a time; the snapshot reads, so it
		// waits for nothing and sees only committed rows.
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("snapshot file: %v, %v", st, err)
		}
		snap := open(t, "sqlite:"+out)
		names, err := snap.Client.User.Query().Select(user.FieldUsername).Strings(ctx)
		if err != nil || len(names) != 1 || names[0] != "kept" {
			t.Fatalf("users in the snapshot: %v, %v", names, err)
		}
		if n, err := snap.Pending(ctx); err != nil || n != 0 {
			t.Fatalf("the snapshot lacks migrations: %d pending, %v", n, err)
		}
		if err := db.Snapshot(ctx, out); err == nil {
			t.Fatal("a snapshot overwrote an existing file")
		}
		if _, err := os.Stat(out); err != nil {
			t.Fatalf("the existing file was removed by a refused snapshot: %v", err)
		}
	})
}
