package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"entgo.io/ent/dialect"
)

// ErrSnapshotUnsupported is Snapshot on a database that has its own backup
// tools (PostgreSQL: pg_dump).
var ErrSnapshotUnsupported = errors.New("snapshots are for SQLite; back PostgreSQL up with pg_dump or your provider's backups")

// Snapshot writes a consistent copy of the SQLite database to path while
// the controller keeps running (VACUUM INTO: one read transaction, so the
// copy is of one moment, compacted). path must not exist; it is created
// 0600 before SQLite writes into it, so the copy is never readable by others.
// On failure the partial file is removed.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if db.Dialect != dialect.SQLite {
		return ErrSnapshotUnsupported
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create snapshot file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("create snapshot file: %w", err)
	}
	if _, err := db.SQL.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return fmt.Errorf("snapshot the database: %w", err)
	}
	return nil
}

// CheckIntegrity runs SQLite's integrity check over the whole file: a
// damaged or truncated copy fails with SQLite's first complaints.
func (db *DB) CheckIntegrity(ctx context.Context) error {
	if db.Dialect != dialect.SQLite {
		return ErrSnapshotUnsupported
	}
	rows, err := db.SQL.QueryContext(ctx, "PRAGMA integrity_check(5)")
	if err != nil {
		return fmt.Errorf("check the database: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check the database: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the database: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the database is damaged: %s", strings.Join(problems, "; "))
	}
	return nil
}
