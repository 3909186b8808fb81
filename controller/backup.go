package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"entgo.io/ent/dialect"

	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ui"
)

// Snapshots of the SQLite database live in DATA_DIR/backups. The scheduled
// ones are named gatehouse-<UTC time>.db and pruned to backup_keep; the ones
// an admin takes with "gatehouse backup" are named gatehouse-manual-<UTC
// time>.db and never pruned.
var scheduledBackup = regexp.MustCompile(`^gatehouse-[0-9]{8}-[0-9]{6}\.[0-9]{3}\.db$`)

// backupDir is where snapshots are written.
func backupDir(cfg config.Config) string { return filepath.Join(cfg.DataDir, "backups") }

// backupName is the file name of a snapshot taken at t.
func backupName(prefix string, t time.Time) string {
	return prefix + t.UTC().Format("20060102-150405.000") + ".db"
}

// snapshotInto writes a snapshot of db into dir (created 0700) under name
// and returns its path and size.
func snapshotInto(ctx context.Context, db *store.DB, dir, name string) (string, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, fmt.Errorf("create backup directory: %w", err)
	}
	return snapshotTo(ctx, db, filepath.Join(dir, name))
}

// snapshotTo writes a snapshot of db to the new file path and returns its size.
func snapshotTo(ctx context.Context, db *store.DB, path string) (string, int64, error) {
	if err := db.Snapshot(ctx, path); err != nil {
		return "", 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, st.Size(), nil
}

// pruneBackups deletes all but the newest keep scheduled snapshots in dir
// and returns the names it deleted. Other files are never touched.
func pruneBackups(dir string, keep int) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && scheduledBackup.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // the names sort by time
	if len(names) <= keep {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// backupJob snapshots the database on the configured interval; nil when
// backups are off or the database is not SQLite.
func (c *Controller) backupJob() *scheduler.Job {
	if c.cfg.BackupInterval <= 0 || c.db.Dialect != dialect.SQLite {
		return nil
	}
	dir := backupDir(c.cfg)
	return &scheduler.Job{
		Name: "database.backup", Title: fmt.Sprintf("Snapshot the database (keeping %d)", c.cfg.BackupKeep),
		Every: c.cfg.BackupInterval,
		Run: func(ctx context.Context, l *scheduler.Log) error {
			path, size, err := snapshotInto(ctx, c.db, dir, backupName("gatehouse-", time.Now()))
			if err != nil {
				return err
			}
			l.Printf("wrote %s (%s)", path, ui.HumanBytes(size))
			removed, err := pruneBackups(dir, c.cfg.BackupKeep)
			for _, n := range removed {
				l.Printf("deleted the older snapshot %s", n)
			}
			return err
		},
	}
}

// Backup writes a snapshot for an admin: to the given path, or to
// DATA_DIR/backups/gatehouse-manual-<time>.db, which is never pruned.
func (a *Admin) Backup(ctx context.Context, to string) (string, int64, error) {
	if to == "" {
		return snapshotInto(ctx, a.db, backupDir(a.cfg), backupName("gatehouse-manual-", time.Now()))
	}
	return snapshotTo(ctx, a.db, to)
}

// DatabasePath is the SQLite database file, or "" for PostgreSQL.
func (a *Admin) DatabasePath() string { return store.SQLitePath(a.cfg.DatabaseURL) }
