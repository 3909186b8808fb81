// Package schemadiff compares the ent schema with the committed versioned
// migrations, replayed on a scratch database, and writes the next migration.
// It is used by the migration generator and by tests, never when serving.
package schemadiff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	atlasmigrate "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/gatehousehq/gatehouse/ent/migrate"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	_ "modernc.org/sqlite" // SQLite driver for the scratch database
)

// Diff compares the ent schema with the migrations in dir, replayed on a
// scratch database of the dialect. With write set, a new migration named
// name is written to dir when they differ; without it, dir is left alone.
// It reports whether they differ.
func Diff(ctx context.Context, dialectName, dir, name string, write bool) (bool, error) {
	local, err := atlasmigrate.NewLocalDir(dir)
	if err != nil {
		return false, err
	}
	var target atlasmigrate.Dir = local
	if !write {
		mem := &atlasmigrate.MemDir{}
		files, err := local.Files()
		if err != nil {
			return false, err
		}
		if err := mem.CopyFiles(files); err != nil {
			return false, err
		}
		sum, err := local.Checksum()
		if err != nil {
			return false, err
		}
		if err := atlasmigrate.WriteSumFile(mem, sum); err != nil {
			return false, err
		}
		target = mem
	}
	drv, cleanup, err := scratch(ctx, dialectName)
	if err != nil {
		return false, err
	}
	defer cleanup()
	m, err := schema.NewMigrate(drv,
		schema.WithDir(target),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(dialectName),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
		schema.WithErrNoPlan(true),
		schema.WithFormatter(atlasmigrate.DefaultFormatter),
	)
	if err != nil {
		return false, err
	}
	if name == "" {
		name = "check"
	}
	err = m.NamedDiff(ctx, name, migrate.Tables...)
	if errors.Is(err, atlasmigrate.ErrNoPlan) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// scratch opens an empty database of the dialect for replaying migrations.
func scratch(ctx context.Context, dialectName string) (*entsql.Driver, func(), error) {
	switch dialectName {
	case dialect.SQLite:
		db, err := sql.Open("sqlite", "file:scratch?mode=memory&_pragma=foreign_keys(1)")
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(1)
		return entsql.OpenDB(dialect.SQLite, db), func() { db.Close() }, nil
	case dialect.Postgres:
		srv, err := pgtest.Start(ctx)
		if err != nil {
			return nil, nil, err
		}
		u, err := srv.CreateDatabase(ctx)
		if err != nil {
			srv.Stop()
			return nil, nil, err
		}
		db, err := sql.Open("postgres", u)
		if err != nil {
			srv.Stop()
			return nil, nil, err
		}
		return entsql.OpenDB(dialect.Postgres, db), func() { db.Close(); srv.Stop() }, nil
	}
	return nil, nil, fmt.Errorf("unknown dialect %q", dialectName)
}
