package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent"
)

// Every probe is counted in its hour per domain and server; maintenance and
// nodes that were not dialled are left out; the spans sum the right hours,
// the strip lines up with the clock, and old hours are pruned.
func TestUptime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, b := &node{status: 200}, &node{status: 200}
		srvA, srvB := httptest.NewServer(http.HandlerFunc(a.handler)), httptest.NewServer(http.HandlerFunc(b.handler))
		t.Cleanup(func() { srvA.Close(); srvB.Close() })
		s1 := db.Client.Server.Create().SetName("edge-1").SaveX(ctx)
		s2 := db.Client.Server.Create().SetName("edge-2").SaveX(ctx)
		s3 := db.Client.Server.Create().SetName("edge-3").SaveX(ctx)
		d := db.Client.Domain.Create().SetName("shop.example").AddServers(s1, s2, s3).SaveX(ctx)
		other := db.Client.Domain.Create().SetName("blog.example").AddServers(s1).SaveX(ctx)
		eps := map[int]Endpoint{
			s1.ID: {Host: "127.0.0.1", HTTPPort: port(t, srvA.URL)},
			s2.ID: {Host: "127.0.0.1", HTTPPort: port(t, srvB.URL)},
		}
		clock := time.Date(2030, 1, 10, 12, 30, 0, 0, time.UTC)
		svc := New(db, Config{
			Endpoint: func(_ context.Context, srv *ent.Server) (Endpoint, error) {
				if ep, ok := eps[srv.ID]; ok {
					return ep, nil
				}
				return Endpoint{}, NotProbed(errors.New("not probed: loopback"))
			},
			Now:   func() time.Time { return clock },
			Audit: audit.New(db.Client, hclog.NewNullLogger()),
		}, hclog.NewNullLogger())
		for _, id := range []int{d.ID, other.ID} {
			if _, err := svc.Set(ctx, audit.System("test"), id, "/", true); err != nil {
				t.Fatal(err)
			}
		}
		probe := func(id int) {
			t.Helper()
			if _, err := svc.ProbeDomain(ctx, id); err != nil {
				t.Fatal(err)
			}
		}

		// Hour 12: two rounds, edge-2 down in the second; edge-3 is never dialled.
		probe(d.ID)
		b.set(503)
		clock = clock.Add(10 * time.Minute)
		probe(d.ID)
		probe(other.ID)
		// Hour 13: edge-2 back up; one round in maintenance is not counted.
		b.set(200)
		clock = clock.Add(time.Hour)
		probe(d.ID)
		db.Client.Domain.UpdateOneID(d.ID).SetMaintenance(true).ExecX(ctx)
		b.set(503)
		probe(d.ID)
		db.Client.Domain.UpdateOneID(d.ID).SetMaintenance(false).ExecX(ctx)
		b.set(200)
		// Two days earlier: one failure on edge-1, outside 24 hours, inside 7 days.
		clock2 := clock
		clock = clock.Add(-48 * time.Hour)
		a.set(500)
		probe(d.ID)
		clock = clock2
		a.set(200)

		if n := db.Client.HealthHour.Query().CountX(ctx); n != 7 {
			t.Errorf("%d hour rows, want 7 (shop: 2 servers × 3 hours; blog: 1)", n)
		}
		day, err := svc.DomainUptime(ctx, []int{d.ID, other.ID, other.ID + 100}, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got := day[d.ID]; got.Up != 5 || got.Down != 1 || got.Label() != "83.33 %" {
			t.Errorf("shop over 24 h: %+v %s", got, got.Label())
		}
		if got := day[other.ID]; got.Up != 1 || got.Down != 0 || got.Label() != "100 %" {
			t.Errorf("blog over 24 h: %+v", got)
		}
		if _, ok := day[other.ID+100]; ok {
			t.Error("a domain without probes has uptime")
		}
		week, _ := svc.DomainUptime(ctx, []int{d.ID}, 7*24*time.Hour)
		if got := week[d.ID]; got.Up != 6 || got.Down != 2 {
			t.Errorf("shop over 7 days: %+v", got)
		}
		per, err := svc.ServerUptime(ctx, d.ID, 7*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if per[s1.ID].Up != 3 || per[s1.ID].Down != 1 || per[s2.ID].Up != 3 || per[s2.ID].Down != 1 || per[s3.ID].Probes() != 0 {
			t.Errorf("per server: %+v", per)
		}
		if per[s1.ID].LatencyMS < 0 || per[s1.ID].LatencyMS > 5000 {
			t.Errorf("mean latency %d ms", per[s1.ID].LatencyMS)
		}

		hours, err := svc.Hours(ctx, d.ID, 48)
		if err != nil {
			t.Fatal(err)
		}
		if len(hours) != 48 || !hours[47].Start.Equal(time.Date(2030, 1, 10, 13, 0, 0, 0, time.UTC)) ||
			hours[46].Up != 3 || hours[46].Down != 1 || hours[47].Up != 2 || hours[47].Down != 0 || hours[0].Probes() != 0 {
			t.Errorf("hours: first %+v, last two %+v %+v", hours[0], hours[46], hours[47])
		}
		if hours[46].Label() != "75.00 %" || (Uptime{}).Label() != "—" || (Uptime{Up: 99999, Down: 1}).Label() != "99.99 %" {
			t.Errorf("labels: %s %s %s", hours[46].Label(), Uptime{}.Label(), Uptime{Up: 99999, Down: 1}.Label())
		}

		days, err := svc.Days(ctx, []int{d.ID, other.ID}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if sd := days[d.ID]; len(sd) != 3 || !sd[2].Start.Equal(time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)) ||
			sd[2].Up != 5 || sd[2].Down != 1 || sd[1].Probes() != 0 || sd[0].Up != 1 || sd[0].Down != 1 {
			t.Errorf("days of shop: %+v", sd)
		}
		if bd := days[other.ID]; len(bd) != 3 || bd[2].Up != 1 {
			t.Errorf("days of blog: %+v", bd)
		}

		// Hours past the retention go with the next run (which fails, as
		// edge-3 is not probed, and counts a new hour for the others).
		clock = clock.Add(Retention - 24*time.Hour)
		if err := svc.ProbeAll(ctx, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "domain #") {
			t.Fatalf("run with a node not dialled: %v", err)
		}
		if n := db.Client.HealthHour.Query().CountX(ctx); n != 8 {
			t.Errorf("%d hour rows after the prune, want 8 (7, less the earliest hour's 2, plus 3 new)", n)
		}
		// Removing a server removes its counts.
		db.Client.Server.DeleteOneID(s2.ID).ExecX(ctx)
		if per, _ := svc.ServerUptime(ctx, d.ID, Retention); per[s2.ID].Probes() != 0 {
			t.Errorf("counts of a removed server: %+v", per[s2.ID])
		}
	})
}
