package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// ErrDataDirInUse means another controller serves from the data directory.
var ErrDataDirInUse = errors.New("another gatehouse serves from this data directory")

// lockFile is the file a serving controller holds locked in its data
// directory, so a second one (or a restore) cannot use it meanwhile.
const lockFile = "gatehouse.lock"

// lockDataDir takes the data directory's lock without waiting and returns
// its release. The kernel drops the lock when the process ends, however it
// ends, so a crash never leaves the directory locked.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the data directory's lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): stop it first", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Database string // the database file now holding the snapshot
	Size     int64
	// Previous is where the database it replaced was moved; empty when
	// there was none.
	Previous string
	// Pending is how many migrations the next start applies to it (a
	// snapshot from an older Gatehouse).
	Pending int
}

// Restore replaces the SQLite database with the snapshot at from, while no
// controller serves from the data directory. The snapshot is checked first,
// on a copy next to the database: SQLite's integrity check passes, it was
// written by this Gatehouse or an older one, and its secrets open with the
// configured master key. Only then is the current database (with any -wal
// and -shm beside it) moved aside, never deleted, and the copy renamed into
// its place.
func Restore(ctx context.Context, cfg config.Config, from string, log hclog.Logger) (RestoreResult, error) {
	dbPath := store.SQLitePath(cfg.DatabaseURL)
	if dbPath == "" {
		return RestoreResult{}, errors.New("restore is for SQLite; restore PostgreSQL with pg_restore or your provider's tools")
	}
	src, err := os.Stat(from)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("the snapshot: %w", err)
	}
	if !src.Mode().IsRegular() {
		return RestoreResult{}, fmt.Errorf("the snapshot %s is not a regular file", from)
	}
	if cur, err := os.Stat(dbPath); err == nil && os.SameFile(cur, src) {
		return RestoreResult{}, fmt.Errorf("%s is the database itself, not a snapshot of it", from)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("create data directory: %w", err)
	}
	release, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return RestoreResult{}, err
	}
	defer release()

	staged := dbPath + ".restoring"
	removeDB(staged) // left by an earlier attempt that failed
	size, err := copyFile(from, staged)
	if err != nil {
		removeDB(staged)
		return RestoreResult{}, err
	}
	pending, err := checkSnapshot(ctx, cfg, staged, log)
	if err != nil {
		removeDB(staged)
		return RestoreResult{}, err
	}

	res := RestoreResult{Database: dbPath, Size: size, Pending: pending}
	if _, err := os.Stat(dbPath); err == nil {
		res.Previous = asideName(dbPath, time.Now())
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(dbPath+suffix, res.Previous+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				removeDB(staged)
				return RestoreResult{}, fmt.Errorf("move the current database aside: %w", err)
			}
		}
	}
	if err := os.Rename(staged, dbPath); err != nil {
		return res, fmt.Errorf("put the snapshot in place (the previous database is %s): %w", res.Previous, err)
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		return res, err
	}
	return res, nil
}

// asideName is a name for the database a restore replaces that no file
// has yet, so an earlier one is never overwritten.
func asideName(dbPath string, now time.Time) string {
	base := dbPath + ".before-restore-" + now.UTC().Format("20060102-150405")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// checkSnapshot opens the staged copy and checks it can serve this
// controller; it returns how many migrations it still lacks.
func checkSnapshot(ctx context.Context, cfg config.Config, path string, log hclog.Logger) (int, error) {
	db, err := store.Open(ctx, "sqlite:"+path, log.Named("store"))
	if err != nil {
		return 0, fmt.Errorf("open the snapshot: %w", err)
	}
	defer func() {
		db.Close()
		// The last connection's close checkpoints the log; drop what is left.
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
	}()
	if err := db.CheckIntegrity(ctx); err != nil {
		return 0, fmt.Errorf("the snapshot cannot be used: %w", err)
	}
	unknown, err := db.Unknown(ctx)
	if err != nil {
		return 0, fmt.Errorf("the snapshot is not a Gatehouse database: %w", err)
	}
	if len(unknown) > 0 {
		return 0, fmt.Errorf("the snapshot was written by a newer Gatehouse (%d migrations this one lacks, the first %s): restore it with that version", len(unknown), unknown[0])
	}
	pending, err := db.Pending(ctx)
	if err != nil {
		return 0, err
	}
	if err := checkMasterKey(ctx, db, cfg); err != nil {
		return 0, err
	}
	return pending, nil
}

// checkMasterKey proves the configured master key opens the database's
// sealed secrets, without creating a key.
func checkMasterKey(ctx context.Context, db *store.DB, cfg config.Config) error {
	canary, err := readCanary(ctx, db)
	if err != nil {
		return fmt.Errorf("read the snapshot's key canary: %w", err)
	}
	if canary == nil {
		return nil // nothing sealed yet
	}
	key, err := masterKey(cfg, false)
	if err != nil {
		return fmt.Errorf("the snapshot holds sealed secrets and the master key cannot be read: %w", err)
	}
	if _, err := openCanary(key, canary); err != nil {
		source := cfg.MasterKeyFile
		if cfg.MasterKey != "" {
			source = "GATEHOUSE_MASTER_KEY"
		}
		return fmt.Errorf("the snapshot's secrets were sealed with another master key than the one in %s (id %s): put back the master key of the installation it came from", source, key.ID)
	}
	return nil
}

// copyFile copies from into the new file to (0600) and syncs it.
func copyFile(from, to string) (int64, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, fmt.Errorf("open the snapshot: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("copy the snapshot: %w", err)
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy the snapshot: %w", err)
	}
	return n, nil
}

// removeDB removes a SQLite file with its -wal and -shm.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
