package proxyconf

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// eachDB runs body in parallel against a fresh, migrated SQLite and PostgreSQL database.
func eachDB(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			body(t, storetest.Open(t, d))
		})
	}
}

// recorder is a Notifier that remembers every call.
type recorder struct {
	mu    sync.Mutex
	calls [][]int
}

func (r *recorder) Changed(ids ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, slices.Clone(ids))
}

// take returns and forgets the calls so far.
func (r *recorder) take() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

var (
	admin = Actor{Actor: audit.Actor{Name: "alice", RemoteAddr: "192.0.2.1"}, Admin: true}
	user  = Actor{Actor: audit.Actor{Name: "bob"}}
)

func newService(t *testing.T, db *store.DB) (*Service, *recorder) {
	t.Helper()
	rec := &recorder{}
	return New(db, Config{Notifier: rec}, hclog.NewNullLogger()), rec
}

func newServer(t *testing.T, db *store.DB, name string) *ent.Server {
	t.Helper()
	s, err := db.Client.Server.Create().SetName(name).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// auditActions returns the recorded audit actions with their targets, oldest first.
func auditActions(t *testing.T, db *store.DB) []string {
	t.Helper()
	page, err := audit.New(db.Client, hclog.NewNullLogger()).List(context.Background(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range slices.Backward(page.Events) {
		out = append(out, e.Actor+" "+e.Action+" "+e.Target)
	}
	return out
}

func webUpstream() UpstreamInput {
	return UpstreamInput{Name: "web", Targets: []TargetInput{{Host: "10.0.0.1", Port: 8080}}}
}
