package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/store/schemadiff"
	"github.com/gatehousehq/gatehouse/ent/predicate"
	"github.com/gatehousehq/gatehouse/ent/task"
	"github.com/gatehousehq/gatehouse/ent/user"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// eachDialect runs body against a fresh SQLite file and a fresh PostgreSQL database.
func eachDialect(t *testing.T, body func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) {
		body(t, "sqlite:"+filepath.Join(t.TempDir(), "gh.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		body(t, pgtest.Database(t))
	})
}

func open(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateFreshAndIdempotent(t *testing.T) {
	eachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if n, err := db.Pending(ctx); err != nil || n == 0 {
			t.Fatalf("a new database must have pending migrations: %d %v", n, err)
		}
		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := Migrations(db.Dialect)
		if len(applied) != len(all) {
			t.Fatalf("applied %d of %d migrations", len(applied), len(all))
		}
		again, err := db.Migrate(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second migrate applied %v, %v", again, err)
		}
		if n, _ := db.Pending(ctx); n != 0 {
			t.Fatalf("pending after migrate: %d", n)
		}
		u, err := db.Client.User.Create().SetUsername("ada").SetPasswordHash("x").SetRole(user.RoleAdmin).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := db.Client.Server.Create().SetName("web-1").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Client.MetricSample.Create().SetServerID(srv.ID).SetTs(1000).SetCPU(12.5).Save(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Client.MetricSample.Create().SetServerID(srv.ID).SetTs(1000).Save(ctx); err == nil {
			t.Fatal("a second sample with the same (server, ts) must be refused")
		}
		// Foreign keys are enforced: deleting the server removes its samples.
		if err := db.Client.Server.DeleteOne(srv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.Client.MetricSample.Query().Count(ctx); n != 0 {
			t.Fatalf("samples of a deleted server survived: %d", n)
		}
		if u.ID == 0 {
			t.Fatal("no id")
		}
	})
}

// TestUpgradeKeepsRows builds a database with every migration but the last,
// fills it, then upgrades it and checks nothing was lost.
func TestUpgradeKeepsRows(t *testing.T) {
	eachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		all, err := Migrations(db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) < 2 {
			t.Fatalf("need at least two migrations to test an upgrade, have %d", len(all))
		}
		if _, err := db.apply(ctx, all[:len(all)-1]); err != nil {
			t.Fatal(err)
		}
		// Write rows with plain SQL: the ent client speaks the newest schema.
		for _, q := range []string{
			"INSERT INTO users (created_at, updated_at, username, password_hash, role, disabled, session_epoch) VALUES (?, ?, 'ada', 'h', 'admin', false, 3)",
			"INSERT INTO tasks (created_at, updated_at, kind, subject, status, log, error) VALUES (?, ?, 'check', 's', 'succeeded', 'line one', '')",
			"INSERT INTO settings (created_at, updated_at, key, value, secret) VALUES (?, ?, 'site', 'x', false)",
		} {
			now := "2026-01-02 03:04:05"
			if db.Dialect == dialect.Postgres {
				now = "2026-01-02T03:04:05Z"
			}
			if _, err := db.SQL.ExecContext(ctx, db.Rebind(q), now, now); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		applied, err := db.Migrate(ctx)
		if err != nil || len(applied) != 1 {
			t.Fatalf("upgrade applied %v: %v", applied, err)
		}
		u, err := db.Client.User.Query().Where(user.Username("ada")).Only(ctx)
		if err != nil || u.SessionEpoch != 3 || u.Role != user.RoleAdmin {
			t.Fatalf("user after upgrade: %+v %v", u, err)
		}
		tk, err := db.Client.Task.Query().Only(ctx)
		if err != nil || tk.Log != "line one" {
			t.Fatalf("task after upgrade: %+v %v", tk, err)
		}
		if n, _ := db.Client.Setting.Query().Count(ctx); n != 1 {
			t.Fatalf("settings after upgrade: %d", n)
		}
	})
}

// TestMigrationsMatchSchema fails when the ent schema changed without a new
// migration (run `make migration NAME=...`).
func TestMigrationsMatchSchema(t *testing.T) {
	root := filepath.Join("..", "..", "..", "ent", "migrate", "migrations")
	for d, sub := range map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"} {
		t.Run(sub, func(t *testing.T) {
			if d == dialect.Postgres {
				pgtest.Database(t) // skip or fail like every PostgreSQL test
			}
			changed, err := schemadiff.Diff(context.Background(), d, filepath.Join(root, sub), "", false)
			if err != nil {
				t.Fatal(err)
			}
			if changed {
				t.Fatal("the ent schema and the committed migrations disagree; run make migration NAME=<what changed>")
			}
		})
	}
}

// A time taken from time.Now and stored must equal itself when read back and
// used in a query: deletes and updates bounded by a row's own time (keep the
// newest N, close the run started at T) depend on it.
func TestStoredTimeMatchesItselfReadBack(t *testing.T) {
	eachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		at := time.Now() // carries a monotonic clock reading
		created, err := db.Client.Task.Create().SetKind("job").SetSubject("probe").SetCreatedAt(at).SetStartedAt(at).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Client.Task.Get(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CreatedAt.Equal(at.Round(time.Microsecond)) && !got.CreatedAt.Equal(at) {
			t.Fatalf("created_at read back as %s, stored %s", got.CreatedAt, at)
		}
		for _, tc := range []struct {
			name string
			pred predicate.Task
		}{
			{"created_at equal", task.CreatedAt(got.CreatedAt)},
			{"created_at at most", task.CreatedAtLTE(got.CreatedAt)},
			{"started_at equal", task.StartedAt(*got.StartedAt)},
		} {
			n, err := db.Client.Task.Query().Where(tc.pred).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%s: %d rows match the time read back from the row, want 1", tc.name, n)
			}
		}
	})
}

// Times taken in different zones compare by the instant they name: SQLite
// compares times as text, so the store writes them all in UTC.
func TestTimesFromOtherZonesCompareByInstant(t *testing.T) {
	eachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
		east := time.FixedZone("east", 3*3600)
		// 07:00 UTC written as 10:00+03, and 07:30 UTC written as such.
		early := db.Client.Task.Create().SetKind("job").SetSubject("early").SetCreatedAt(base.In(east)).SaveX(ctx)
		db.Client.Task.Create().SetKind("job").SetSubject("late").SetCreatedAt(base.Add(30 * time.Minute)).SaveX(ctx)
		got, err := db.Client.Task.Query().Where(task.CreatedAtLT(base.Add(15 * time.Minute))).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != early.ID || !got[0].CreatedAt.Equal(base) {
			t.Errorf("tasks before 07:15 UTC: %d, want only the one from 07:00 UTC written in another zone", len(got))
		}
	})
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, dialect string }{
		{"sqlite:data/gh.db", dialect.SQLite},
		{"sqlite:///var/lib/gh.db", dialect.SQLite},
		{"data/gh.db", dialect.SQLite},
		{"postgres://u@localhost/gh", dialect.Postgres},
		{"postgresql://u@localhost/gh?sslmode=disable", dialect.Postgres},
	} {
		d, _, _, err := ParseURL(tc.in)
		if err != nil || d != tc.dialect {
			t.Errorf("%s: %s %v", tc.in, d, err)
		}
	}
	for _, bad := range []string{"mysql://x", "sqlite:", "whatever"} {
		if _, _, _, err := ParseURL(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := open(t, "sqlite:"+filepath.Join(dir, "gh.db"))
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gh.db", "gh.db-wal"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %o; the database must be readable by its owner only", name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %o, want 700", st.Mode().Perm())
	}
}
