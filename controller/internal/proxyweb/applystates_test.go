package proxyweb

import (
	"context"
	"fmt"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
)

// The apply state of thousands of servers, repeated as the domain list
// repeats them, comes back whole: one OR over all of them would be deeper
// than SQLite accepts.
func TestApplyStatesOfManyServers(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 1500
		builders := make([]*ent.ServerCreate, n)
		for i := range builders {
			builders[i] = db.Client.Server.Create().SetName(fmt.Sprintf("node-%04d", i)).SetDesiredRevision(2).SetAppliedRevision(1)
		}
		var servers []*ent.Server
		for lo := 0; lo < n; lo += 500 {
			servers = append(servers, db.Client.Server.CreateBulk(builders[lo:lo+500]...).SaveX(ctx)...)
		}
		revs := make([]*ent.ConfigRevisionCreate, n)
		for i, s := range servers {
			status, outcome := configrevision.StatusPending, ""
			if i%3 == 0 {
				status, outcome = configrevision.StatusFailed, "test_failed"
			}
			revs[i] = db.Client.ConfigRevision.Create().SetServerID(s.ID).SetNumber(2).SetHash("h").SetFiles([]byte("[]")).
				SetStatus(status).SetOutcome(outcome)
		}
		for lo := 0; lo < n; lo += 500 {
			db.Client.ConfigRevision.CreateBulk(revs[lo : lo+500]...).ExecX(ctx)
		}
		states, err := ApplyStates(ctx, db, append(servers, servers[:700]...))
		if err != nil {
			t.Fatal(err)
		}
		if len(states) != n {
			t.Fatalf("%d states for %d servers", len(states), n)
		}
		for i, s := range servers {
			st := states[s.ID]
			wantStatus, wantOutcome := "pending", ""
			if i%3 == 0 {
				wantStatus, wantOutcome = "failed", "test_failed"
			}
			if st.Desired != 2 || st.Applied != 1 || st.Status != wantStatus || st.Outcome != wantOutcome || st.InSync() {
				t.Fatalf("server %d: %+v", i, st)
			}
		}
	})
}
