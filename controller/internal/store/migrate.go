package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"

	"github.com/gatehousehq/gatehouse/ent/migrate/migrations"
)

// migrationsTable records which versions have been applied.
const migrationsTable = "gatehouse_schema_migrations"

// Migration is one versioned migration file.
type Migration struct {
	Version string // the numeric prefix of the file name
	Name    string // the file name
	Stmts   []string
}

// Migrations returns the embedded migrations of a dialect in order.
func Migrations(dialectName string) ([]Migration, error) {
	return loadMigrations(migrations.FS, dirFor(dialectName))
}

func dirFor(d string) string {
	if d == dialect.Postgres {
		return "postgres"
	}
	return "sqlite"
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		stmts, err := atlasmigrate.NewLocalFile(e.Name(), b).Stmts()
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		version, _, _ := strings.Cut(e.Name(), "_")
		out = append(out, Migration{Version: version, Name: e.Name(), Stmts: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every embedded migration that the database has not seen,
// each in its own transaction, and returns the names applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	all, err := Migrations(db.Dialect)
	if err != nil {
		return nil, err
	}
	return db.apply(ctx, all)
}

// apply runs the given migrations in order, skipping applied ones.
func (db *DB) apply(ctx context.Context, all []Migration) ([]string, error) {
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if db.Dialect == dialect.Postgres {
		// Two controllers starting at once must not both migrate.
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7412001)"); err != nil {
			return nil, fmt.Errorf("lock migrations: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7412001)")
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+migrationsTable+
		" (version VARCHAR(32) PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at VARCHAR(40) NOT NULL)"); err != nil {
		return nil, fmt.Errorf("create migrations table: %w", err)
	}
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, m := range all {
		if done[m.Version] {
			continue
		}
		if err := db.applyOne(ctx, conn, m); err != nil {
			return applied, err
		}
		if db.log != nil {
			db.log.Info("applied migration", "name", m.Name)
		}
		applied = append(applied, m.Name)
	}
	return applied, nil
}

// applyOne runs one migration in a transaction. SQLite ignores
// "PRAGMA foreign_keys" inside a transaction, yet table rebuilds need the
// checks off, so for SQLite they are switched off around the transaction and
// the result is verified with foreign_key_check before commit.
func (db *DB) applyOne(ctx context.Context, conn *sql.Conn, m Migration) (err error) {
	sqlite := db.Dialect == dialect.SQLite
	if sqlite {
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
			return err
		}
		defer func() {
			if _, e := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = on"); e != nil && err == nil {
				err = e
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, s := range m.Stmts {
		if sqlite && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "PRAGMA FOREIGN_KEYS") {
			continue
		}
		if _, err := tx.ExecContext(ctx, s); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if sqlite {
		rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
		if err != nil {
			tx.Rollback()
			return err
		}
		bad := rows.Next()
		rows.Close()
		if bad {
			tx.Rollback()
			return fmt.Errorf("migration %s leaves rows that break foreign keys", m.Name)
		}
	}
	if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO "+migrationsTable+" (version, name, applied_at) VALUES (?, ?, ?)"),
		m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		tx.Rollback()
		return fmt.Errorf("record migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	return nil
}

func appliedVersions(ctx context.Context, conn *sql.Conn) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, "SELECT version FROM "+migrationsTable)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}

// Pending returns how many embedded migrations the database lacks. A database
// that has never been migrated has all of them pending.
func (db *DB) Pending(ctx context.Context) (int, error) {
	all, err := Migrations(db.Dialect)
	if err != nil {
		return 0, err
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return len(all), nil
	}
	n := 0
	for _, m := range all {
		if !done[m.Version] {
			n++
		}
	}
	return n, nil
}

// Unknown returns the applied migrations this build does not carry: the
// database was written by a newer Gatehouse, whose schema this one may not
// read.
func (db *DB) Unknown(ctx context.Context) ([]string, error) {
	all, err := Migrations(db.Dialect)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(all))
	for _, m := range all {
		known[m.Version] = true
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []string
	for v := range done {
		if !known[v] {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out, nil
}
