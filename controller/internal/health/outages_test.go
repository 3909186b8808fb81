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

// A run of failed probes through one server is one outage: opened by the
// first with its reason, counted while it lasts, ended by a good probe, by
// maintenance, by the server no longer serving the domain or by the check
// being turned off, and pruned once ended long ago.
func TestOutages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n1, n2 := &node{status: 200}, &node{status: 200}
		h1, h2 := httptest.NewServer(http.HandlerFunc(n1.handler)), httptest.NewServer(http.HandlerFunc(n2.handler))
		t.Cleanup(func() { h1.Close(); h2.Close() })
		s1 := db.Client.Server.Create().SetName("edge-1").SaveX(ctx)
		s2 := db.Client.Server.Create().SetName("edge-2").SaveX(ctx)
		ports := map[int]Endpoint{s1.ID: {Host: "127.0.0.1", HTTPPort: port(t, h1.URL)}, s2.ID: {Host: "127.0.0.1", HTTPPort: port(t, h2.URL)}}
		d := db.Client.Domain.Create().SetName("shop.example").AddServers(s1, s2).SaveX(ctx)
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := start
		svc := New(db, Config{
			Endpoint: func(_ context.Context, srv *ent.Server) (Endpoint, error) { return ports[srv.ID], nil },
			Now:      func() time.Time { return clock },
		}, hclog.NewNullLogger())
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", true); err != nil {
			t.Fatal(err)
		}
		at := func(minutes int, st1, st2 int) {
			t.Helper()
			clock = start.Add(time.Duration(minutes) * time.Minute)
			n1.set(st1)
			n2.set(st2)
			if _, err := svc.ProbeDomain(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		type want struct {
			server          string
			start, end      int // minutes after start; end -1 while open
			checks          int
			messageContains string
		}
		check := func(step string, wants ...want) {
			t.Helper()
			got, err := svc.Outages(ctx, d.ID, 20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(wants) {
				t.Fatalf("%s: %d outages, want %d: %+v", step, len(got), len(wants), got)
			}
			for i, w := range wants {
				o := got[i]
				end := -1
				if o.EndedAt != nil {
					end = int(o.EndedAt.Sub(start) / time.Minute)
				}
				if o.Edges.Server == nil || o.Edges.Server.Name != w.server || !o.StartedAt.Equal(start.Add(time.Duration(w.start)*time.Minute)) ||
					end != w.end || o.Checks != w.checks || !strings.Contains(o.Message, w.messageContains) {
					t.Errorf("%s: outage %d = %+v (server %v), want %+v", step, i, o, o.Edges.Server, w)
				}
			}
		}
		at(0, 200, 502)
		at(1, 200, 503)
		check("a run of failures", want{"edge-2", 0, -1, 2, "answered 502 Bad Gateway"})
		at(2, 500, 200)
		check("recovery and a new failure", want{"edge-1", 2, -1, 1, "answered 500"}, want{"edge-2", 0, 2, 2, "502"})

		// Maintenance ends the open outage; its failures open none.
		db.Client.Domain.UpdateOneID(d.ID).SetMaintenance(true).ExecX(ctx)
		at(3, 503, 503)
		check("maintenance", want{"edge-1", 2, 3, 1, "500"}, want{"edge-2", 0, 2, 2, "502"})
		db.Client.Domain.UpdateOneID(d.ID).SetMaintenance(false).ExecX(ctx)

		// A server that stops serving the domain ends its outage.
		at(4, 500, 200)
		db.Client.Domain.UpdateOneID(d.ID).RemoveServers(s1).ExecX(ctx)
		at(5, 500, 200)
		check("a server removed", want{"edge-1", 4, 5, 1, "500"}, want{"edge-1", 2, 3, 1, "500"}, want{"edge-2", 0, 2, 2, "502"})

		// Turning the check off ends the open outage.
		at(6, 200, 500)
		clock = start.Add(7 * time.Minute)
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", false); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Outages(ctx, d.ID, 1); len(got) != 1 || got[0].EndedAt == nil || !got[0].EndedAt.Equal(clock) {
			t.Fatalf("after the check was turned off: %+v", got)
		}

		// Ended outages go with the hourly counts; an open one stays.
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", true); err != nil {
			t.Fatal(err)
		}
		at(8, 200, 500)
		clock = start.Add(Retention + time.Hour)
		if _, err := svc.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		check("after pruning", want{"edge-2", 8, -1, 1, "500"})
	})
}

// A node that was not dialled for a while and then fails for real gets an
// outage from that failure, not from when it stopped being dialled.
func TestOutageAfterNotProbed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n := &node{status: 500}
		h := httptest.NewServer(http.HandlerFunc(n.handler))
		t.Cleanup(h.Close)
		s1 := db.Client.Server.Create().SetName("edge-1").SaveX(ctx)
		d := db.Client.Domain.Create().SetName("shop.example").AddServers(s1).SaveX(ctx)
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := start
		dial := false
		svc := New(db, Config{
			Endpoint: func(context.Context, *ent.Server) (Endpoint, error) {
				if !dial {
					return Endpoint{}, NotProbed(errors.New("not probed: loopback"))
				}
				return Endpoint{Host: "127.0.0.1", HTTPPort: port(t, h.URL)}, nil
			},
			Now: func() time.Time { return clock },
		}, hclog.NewNullLogger())
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", true); err != nil {
			t.Fatal(err)
		}
		for _, m := range []int{0, 1} {
			clock = start.Add(time.Duration(m) * time.Minute)
			if _, err := svc.ProbeDomain(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		dial, clock = true, start.Add(5*time.Minute)
		if _, err := svc.ProbeDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		o, err := svc.Outages(ctx, d.ID, 5)
		if err != nil || len(o) != 1 || !o[0].StartedAt.Equal(clock) {
			t.Fatalf("outages: %+v %v", o, err)
		}
	})
}
