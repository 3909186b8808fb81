package auth

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// bothDialects runs body against a fresh, migrated SQLite and PostgreSQL database.
func bothDialects(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	storetest.Each(t, body)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	db     *store.DB
	audit  *audit.Recorder
	users  *Users
	tokens *Tokens
	clock  *clock
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	rec := audit.New(db.Client, hclog.NewNullLogger())
	c := newClock()
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	users, err := NewUsers(db.Client, rec, hclog.NewNullLogger(), UsersOptions{BcryptCost: bcrypt.MinCost, Now: c.Now, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, audit: rec, users: users, tokens: NewTokens(db.Client, rec, hclog.NewNullLogger(), c.Now), clock: c}
}

var cli = audit.System("cli")

func (f *fixture) mustCreate(t *testing.T, username, password, role string) User {
	t.Helper()
	u, err := f.users.Create(context.Background(), cli, username, password, role)
	if err != nil {
		t.Fatalf("create %s: %v", username, err)
	}
	return u
}

// actions lists the audit log's actions, oldest first.
func (f *fixture) actions(t *testing.T) []string {
	t.Helper()
	p, err := f.audit.List(context.Background(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(p.Events) - 1; i >= 0; i-- {
		out = append(out, p.Events[i].Action)
	}
	return out
}

func hclogNull() hclog.Logger { return hclog.NewNullLogger() }
