package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// bothDialects runs body against a fresh, migrated SQLite and PostgreSQL database.
func bothDialects(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			url := "sqlite:" + filepath.Join(t.TempDir(), "gh.db")
			if name == "postgres" {
				url = pgtest.Database(t)
			}
			db, err := store.Open(context.Background(), url, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			body(t, db)
		})
	}
}

func TestRecordAndList(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := New(db.Client, hclog.NewNullLogger())
		id := 7
		alice := Actor{ID: &id, Name: "alice", RemoteAddr: "192.0.2.1"}
		for i := range 5 {
			if err := r.Record(ctx, For(alice, "user.create", fmt.Sprintf("user:u%d", i), "role user")); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Record(ctx, For(System("cli"), "user.password", "user:alice", "")); err != nil {
			t.Fatal(err)
		}
		if err := r.Record(ctx, For(alice, "token.create", "token:1", strings.Repeat("é", 5000))); err != nil {
			t.Fatal(err)
		}

		all, err := r.List(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Events) != 7 || all.NextBefore != 0 {
			t.Fatalf("got %d events, next %d; want 7, 0", len(all.Events), all.NextBefore)
		}
		if all.Events[0].Action != "token.create" || all.Events[6].Target != "user:u0" {
			t.Fatalf("not newest first: %+v", all.Events)
		}
		if got := all.Events[0].Detail; len(got) > maxDetail || !strings.HasPrefix(got, "é") || strings.ContainsRune(got, '\uFFFD') {
			t.Fatalf("long detail not clipped cleanly: %d bytes", len(got))
		}
		if all.Events[1].ActorID != nil || all.Events[1].Actor != "cli" {
			t.Fatalf("system actor stored as %+v", all.Events[1])
		}
		if all.Events[2].ActorID == nil || *all.Events[2].ActorID != 7 || all.Events[2].RemoteAddr != "192.0.2.1" {
			t.Fatalf("user actor stored as %+v", all.Events[2])
		}

		tests := []struct {
			name string
			q    Query
			want int
		}{
			{"by actor", Query{Actor: "cli"}, 1},
			{"by exact action", Query{Action: "user.create"}, 5},
			{"by action prefix", Query{Action: "user."}, 6},
			{"actor and action", Query{Actor: "alice", Action: "token."}, 1},
			{"no match", Query{Actor: "bob"}, 0},
			{"by exact target", Query{Target: "user:alice"}, 1},
			{"by target kind", Query{Target: "user:"}, 6},
			{"target is not a prefix without the colon", Query{Target: "user:u"}, 0},
			{"target and action", Query{Target: "token:", Action: "token.create"}, 1},
		}
		for _, tc := range tests {
			p, err := r.List(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Events) != tc.want {
				t.Errorf("%s: got %d events, want %d", tc.name, len(p.Events), tc.want)
			}
		}

		// Walk pages of two and collect every id exactly once, newest first.
		var seen []int
		q := Query{Limit: 2}
		for {
			p, err := r.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				seen = append(seen, e.ID)
			}
			if p.NextBefore == 0 {
				break
			}
			q.BeforeID = p.NextBefore
		}
		if len(seen) != 7 {
			t.Fatalf("paging saw %d events, want 7", len(seen))
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] >= seen[i-1] {
				t.Fatalf("paging not strictly descending: %v", seen)
			}
		}
	})
}

func TestRecordRequiresActionAndActor(t *testing.T) {
	r := &Recorder{}
	if err := r.Record(context.Background(), Entry{Actor: "x"}); err == nil {
		t.Error("missing action accepted")
	}
	if err := r.Record(context.Background(), Entry{Action: "x"}); err == nil {
		t.Error("missing actor accepted")
	}
}
