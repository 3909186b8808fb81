// Package store opens the controller's database (SQLite or PostgreSQL) through
// ent and keeps its schema current with the embedded versioned migrations.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/hashicorp/go-hclog"
	_ "github.com/lib/pq"  // PostgreSQL driver
	_ "modernc.org/sqlite" // SQLite driver

	"github.com/gatehousehq/gatehouse/ent"
)

// DB is an open database with its ent client.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
	log     hclog.Logger
}

// ParseURL turns a database URL into a driver name and DSN. Accepted forms:
// sqlite:PATH, sqlite://PATH, file:PATH, a bare path ending in .db, and
// postgres:// or postgresql:// URLs.
func ParseURL(raw string) (dialectName, driver, dsn string, err error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", "", fmt.Errorf("database url: %w", err)
		}
		return dialect.Postgres, "postgres", raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		return sqliteDSN(strings.TrimPrefix(raw, "sqlite://"))
	case strings.HasPrefix(raw, "sqlite:"):
		return sqliteDSN(strings.TrimPrefix(raw, "sqlite:"))
	case strings.HasPrefix(raw, "file:"):
		return sqliteDSN(strings.TrimPrefix(raw, "file:"))
	case strings.HasSuffix(raw, ".db") && !strings.Contains(raw, "://"):
		return sqliteDSN(raw)
	}
	return "", "", "", fmt.Errorf("database url %q: use sqlite:PATH or postgres://user@host/db", raw)
}

// SQLitePath returns the file of a SQLite database URL, or "" for others.
func SQLitePath(raw string) string {
	d, _, dsn, err := ParseURL(raw)
	if err != nil || d != dialect.SQLite {
		return ""
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	return path
}

func sqliteDSN(path string) (string, string, string, error) {
	path, query, _ := strings.Cut(path, "?")
	if path == "" {
		return "", "", "", errors.New("database url: sqlite needs a file path, e.g. sqlite:data/gatehouse.db")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", "", fmt.Errorf("database url: %w", err)
	}
	// Foreign keys must be on for ent; WAL lets readers run beside the writer;
	// the busy timeout makes concurrent writers wait instead of failing;
	// immediate transactions avoid lock upgrades that deadlock.
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// The driver writes a time as time.Time.String unless told otherwise,
	// which keeps the monotonic clock reading ("m=+1.5") of a time taken
	// from time.Now. SQLite compares times as text, so such a value never
	// equals the same instant read back and bound again, and a delete or
	// update bounded by a row's own time misses that row. Write the same
	// layout without the monotonic reading.
	q.Set("_time_format", "string_no_monotonic")
	// Text comparison is only right between times written in one zone, so
	// every time is written in UTC, whatever zone it was taken in.
	q.Set("_timezone", "UTC")
	return dialect.SQLite, "sqlite", "file:" + path + "?" + q.Encode(), nil
}

// Open connects to the database at rawURL. For SQLite the parent directory of
// the file is created (0700) if needed. It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string, log hclog.Logger) (*DB, error) {
	d, driver, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if d == dialect.SQLite {
		path := strings.TrimPrefix(dsn, "file:")
		path, _, _ = strings.Cut(path, "?")
		if path != ":memory:" && !strings.HasPrefix(path, "memdb") {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
			// Create the file owner-only; SQLite gives its -wal and -shm
			// files the same permissions.
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("create database file: %w", err)
			}
			f.Close()
		}
	}
	sqlDB, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	if d == dialect.SQLite {
		// One writer at a time is all SQLite allows; a small pool keeps
		// readers concurrent under WAL.
		sqlDB.SetMaxOpenConns(8)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", d, err)
	}
	drv := entsql.OpenDB(d, sqlDB)
	return &DB{Client: ent.NewClient(ent.Driver(drv)), SQL: sqlDB, Dialect: d, log: log}, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.Client.Close() }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.SQL.PingContext(ctx) }

// Rebind rewrites ? placeholders to $N for PostgreSQL.
func (db *DB) Rebind(q string) string {
	if db.Dialect != dialect.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
