package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// TestCleanupJobPrunesTrustedDevices: the hourly sign-in clean-up job also
// deletes remembered browsers whose 30 days are over, and only those.
func TestCleanupJobPrunesTrustedDevices(t *testing.T) {
	logs := &syncbuf.Buffer{}
	c, stop := start(t, testConfig(t, t.TempDir()), logs, &syncbuf.Buffer{})
	t.Cleanup(stop)
	ctx := context.Background()
	u, err := c.users.Create(ctx, audit.System("test"), "ida", "idas password", auth.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, exp := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour)} {
		err := c.db.Client.TrustedDevice.Create().SetUserID(u.ID).SetTokenHash([]byte{byte(i), 1, 2, 3}).
			SetExpiresAt(exp).SetLastUsedAt(now).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	runs := func() int {
		h, err := c.sched.History(ctx, "sessions.cleanup", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range h {
			if r.FinishedAt != nil && strings.Contains(r.Log, "deleted 1 expired trusted browsers") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for runs() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the clean-up job never deleted the expired browser; log:\n%s", logs.String())
		}
		c.sched.Trigger("sessions.cleanup") // busy while a run is on: try again
		time.Sleep(20 * time.Millisecond)
	}
	left, err := c.db.Client.TrustedDevice.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || !left[0].ExpiresAt.After(now) {
		t.Fatalf("after the clean-up: %v", left)
	}
}
