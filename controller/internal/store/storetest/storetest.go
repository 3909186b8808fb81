// Package storetest gives tests fresh, migrated databases of both dialects.
// Test packages that use PostgreSQL need a TestMain calling pgtest.Run.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

// Dialects are the names Open accepts, in the order Each runs them.
var Dialects = []string{"sqlite", "postgres"}

// Open returns a fresh, migrated database: "sqlite" is a file in the test's
// temporary directory, "postgres" a new database on the shared test server
// (skipped without PostgreSQL, a failure under CI=true).
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "gh.db")
	if dialect == "postgres" {
		url = pgtest.Database(t)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, url, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// Each runs body once per dialect, as subtests named after the dialect.
func Each(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) { body(t, Open(t, d)) })
	}
}
