package metrics

import (
	"context"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func eachDialect(t *testing.T, body func(t *testing.T, db *store.DB)) {
	storetest.Each(t, body)
}

func sample(at time.Time, cpu float64) *agentv1.MetricSample {
	return &agentv1.MetricSample{
		Time: timestamppb.New(at), Source: "glances", CpuPercent: cpu, Load1: 0.5,
		MemTotal: 1000, MemUsed: 250, SwapTotal: 100, SwapUsed: 10,
		Filesystems: []*agentv1.Filesystem{{Mount: "/", Device: "/dev/sda1", Size: 200, Used: 50}, {Mount: "/bind", Device: "/dev/sda1", Size: 200, Used: 50}},
		Interfaces:  []*agentv1.Interface{{Name: "eth0", RxBps: 10, TxBps: 20}, {Name: "lo", RxBps: 999}},
	}
}

func start(t *testing.T, db *store.DB, publish Publisher) *Writer {
	w := NewWriter(db, hclog.NewNullLogger(), WriterOptions{Publish: publish})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func TestIngestDedupRollupRetention(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := db.Client.Server.Create().SetName("web-1").SetStatus(server.StatusOnline).SaveX(ctx)
		id := strconv.Itoa(srv.ID)
		var mu sync.Mutex
		var published []Summary
		w := start(t, db, func(l []Summary) { mu.Lock(); published = append(published, l...); mu.Unlock() })

		now := time.Now().Truncate(time.Minute)
		base := now.Add(-2 * time.Minute)
		var batch []*agentv1.MetricSample
		for i := 0; i < 12; i++ { // two minutes at 10 s
			s := sample(base.Add(time.Duration(i)*10*time.Second), float64(i*10))
			// nginx's counters from the third sample on, the rate rising by 2 a sample.
			if i >= 2 {
				s.Nginx = &agentv1.NginxStatus{Active: uint32(i), Requests: uint64(100 * i), RequestsPerSecond: float64(2 * i)}
			}
			batch = append(batch, s)
		}
		if err := w.Ingest(ctx, id, batch); err != nil {
			t.Fatal(err)
		}
		// A replay of the same samples must not double count.
		if err := w.Ingest(ctx, id, batch[3:8]); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.MetricSample.Query().CountX(ctx); n != 12 {
			t.Fatalf("stored %d samples, want 12", n)
		}
		mu.Lock()
		if len(published) == 0 || published[len(published)-1].CPU != 110 {
			t.Fatalf("publisher did not see the newest sample: %+v", published)
		}
		if p := published[0]; p.DiskTotal != 200 || p.NetRx != 10 || p.MemUsed != 250 {
			t.Fatalf("summary must count a device once and skip lo: %+v", p)
		}
		mu.Unlock()

		m := NewMaintainer(w, Retention{Raw: 48 * time.Hour, Minute: 14 * 24 * time.Hour, Hour: 365 * 24 * time.Hour}, 30*time.Second)
		if err := m.Maintain(ctx, now); err != nil {
			t.Fatal(err)
		}
		ups := db.Client.MetricRollup.Query().AllX(ctx)
		var minutes, hours int
		for _, r := range ups {
			switch r.Resolution {
			case Minute:
				minutes++
				if r.Count != 6 {
					t.Errorf("minute bucket %d has %d samples, want 6", r.Bucket, r.Count)
				}
				if r.Bucket == base.UnixMilli() && (r.CPU != 25 || r.CPUMax != 50) {
					t.Errorf("first minute avg/max = %v/%v, want 25/50", r.CPU, r.CPUMax)
				}
				if r.MemUsed != 250 {
					t.Errorf("mem avg %d", r.MemUsed)
				}
				// Samples without counters count as 0: (0+0+4+6+8+10)/6 and (12+…+22)/6.
				if want := map[bool]float64{true: 28.0 / 6, false: 102.0 / 6}[r.Bucket == base.UnixMilli()]; math.Abs(r.NginxRps-want) > 1e-9 || math.Abs(r.NginxConns-want/2) > 1e-9 {
					t.Errorf("minute %d: nginx rate %v, connections %v; want %v and %v", r.Bucket, r.NginxRps, r.NginxConns, want, want/2)
				}
			case Hour:
				hours++
			}
		}
		if minutes != 2 || hours < 1 {
			t.Fatalf("rollups: %d minute, %d hour buckets", minutes, hours)
		}
		srv = db.Client.Server.GetX(ctx, srv.ID)
		if srv.LastSeenAt == nil || srv.MetricsSource != "glances" {
			t.Fatalf("last seen / source not recorded: %v %q", srv.LastSeenAt, srv.MetricsSource)
		}

		series, err := NewQuery(w).Series(ctx, srv.ID, time.Hour, now)
		if err != nil || series.Resolution != "raw" || len(series.Points) != 12 {
			t.Fatalf("1 h series: %s %d %v", series.Resolution, len(series.Points), err)
		}
		if p := series.Points[0]; p.MemPct != 25 || p.DiskPct != 25 {
			t.Fatalf("percentages: %+v", p)
		}
		if p, q := series.Points[0], series.Points[11]; p.NginxRPS != 0 || p.NginxConns != 0 || q.NginxRPS != 22 || q.NginxConns != 11 {
			t.Fatalf("nginx points: first %+v, last %+v", p, q)
		}
		series, err = NewQuery(w).Series(ctx, srv.ID, 24*time.Hour, now)
		if err != nil || series.Resolution != "1m" || len(series.Points) != 2 {
			t.Fatalf("24 h series: %s %d %v", series.Resolution, len(series.Points), err)
		}
		series, err = NewQuery(w).Series(ctx, srv.ID, 30*24*time.Hour, now)
		if err != nil || series.Resolution != "1h" || len(series.Points) < 1 {
			t.Fatalf("30 d series: %s %d %v", series.Resolution, len(series.Points), err)
		}

		// A late sample (replayed after an outage) lands in an old bucket and is rolled up.
		late := base.Add(-time.Hour)
		if err := w.Ingest(ctx, id, []*agentv1.MetricSample{sample(late, 70)}); err != nil {
			t.Fatal(err)
		}
		if err := m.Maintain(ctx, now); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.MetricRollup.Query().CountX(ctx); n < 4 {
			t.Fatalf("late sample not rolled up: %d rollups", n)
		}

		// Retention: move the clock three days on; raw samples go, rollups stay.
		if err := m.Maintain(ctx, now.Add(72*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.MetricSample.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d raw samples survived retention", n)
		}
		if n := db.Client.MetricRollup.Query().CountX(ctx); n == 0 {
			t.Fatal("rollups must outlive raw retention")
		}
		// No samples for longer than the offline window: the server goes offline.
		if got := db.Client.Server.GetX(ctx, srv.ID).Status; got != server.StatusOffline {
			t.Fatalf("status %s, want offline", got)
		}
	})
}

func TestIngestRejectsBadNode(t *testing.T) {
	w := NewWriter(nil, hclog.NewNullLogger(), WriterOptions{})
	for _, id := range []string{"", "0", "-1", "abc", "1; DROP TABLE servers"} {
		if err := w.Ingest(context.Background(), id, []*agentv1.MetricSample{sample(time.Now(), 1)}); err == nil {
			t.Errorf("accepted node id %q", id)
		}
	}
}

func TestConcurrentIngestIsBatched(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := start(t, db, nil)
		const nodes, per = 20, 30
		var ids []string
		for i := 0; i < nodes; i++ {
			s := db.Client.Server.Create().SetName("n" + strconv.Itoa(i)).SaveX(ctx)
			ids = append(ids, strconv.Itoa(s.ID))
		}
		base := time.Now().Add(-time.Hour)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if err := w.Ingest(ctx, id, []*agentv1.MetricSample{sample(base.Add(time.Duration(i)*time.Second), 1)}); err != nil {
						t.Error(err)
						return
					}
				}
			}(id)
		}
		wg.Wait()
		if n := db.Client.MetricSample.Query().CountX(ctx); n != nodes*per {
			t.Fatalf("stored %d, want %d", n, nodes*per)
		}
	})
}

// TestRollupWaitsForTheMinuteToClose: frequent calls aggregate each minute
// once, after it has closed, and never lose the open minute's samples.
func TestRollupWaitsForTheMinuteToClose(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := db.Client.Server.Create().SetName("m-1").SaveX(ctx)
		w := start(t, db, nil)
		m := NewMaintainer(w, Retention{Raw: 48 * time.Hour, Minute: 24 * time.Hour, Hour: 48 * time.Hour}, 0)
		minute := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
		var batch []*agentv1.MetricSample
		for i := 0; i < 6; i++ {
			batch = append(batch, sample(minute.Add(time.Duration(i)*10*time.Second), 10))
		}
		if err := w.Ingest(ctx, strconv.Itoa(srv.ID), batch); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			return db.Client.MetricRollup.Query().CountX(ctx)
		}
		// Mid-minute: the minute is still open, nothing is rolled up yet.
		if err := m.Rollup(ctx, minute.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 0 {
			t.Fatalf("an open minute was rolled up: %d rows", n)
		}
		if err := m.Rollup(ctx, minute.Add(50*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 0 {
			t.Fatalf("an open minute was rolled up: %d rows", n)
		}
		// Once it closes, one minute bucket and its hour appear.
		if err := m.Rollup(ctx, minute.Add(61*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("after the minute closed: %d rollup rows, want 2", n)
		}
		// Nothing new: nothing to do.
		if err := m.Rollup(ctx, minute.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		r := db.Client.MetricRollup.Query().AllX(ctx)
		for _, x := range r {
			if x.Count != 6 {
				t.Fatalf("bucket %d res %d has %d samples", x.Bucket, x.Resolution, x.Count)
			}
		}
	})
}

// After a restart the dashboard reads each silent server's newest stored
// sample once, for all of them together, and keeps it: the writer's cache
// holds anything newer.
func TestLatestSummariesAfterRestart(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := db.Client.Server.Create().SetName("a").SetStatus(server.StatusOffline).SaveX(ctx)
		b := db.Client.Server.Create().SetName("b").SetStatus(server.StatusOffline).SaveX(ctx)
		never := db.Client.Server.Create().SetName("never").SaveX(ctx)
		before := start(t, db, nil)
		base := time.Now().Truncate(time.Minute).Add(-10 * time.Minute)
		if err := before.Ingest(ctx, strconv.Itoa(a.ID), []*agentv1.MetricSample{sample(base, 10), sample(base.Add(time.Minute), 20)}); err != nil {
			t.Fatal(err)
		}
		if err := before.Ingest(ctx, strconv.Itoa(b.ID), []*agentv1.MetricSample{sample(base.Add(2*time.Minute), 30)}); err != nil {
			t.Fatal(err)
		}

		// A new writer is a restarted controller: nothing in memory.
		q := NewQuery(NewWriter(db, hclog.NewNullLogger(), WriterOptions{}))
		ids := []int{a.ID, b.ID, never.ID}
		got, err := q.LatestSummaries(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[a.ID].CPU != 20 || got[b.ID].CPU != 30 || got[a.ID].ServerID != a.ID {
			t.Fatalf("summaries after a restart: %+v", got)
		}
		if _, ok := got[never.ID]; ok {
			t.Fatalf("a server that never reported has a summary: %+v", got[never.ID])
		}
		// Loaded once: with the rows gone the answer stays, so a dashboard
		// refresh does not query again for silent servers.
		db.Client.MetricSample.Delete().ExecX(ctx)
		again, err := q.LatestSummaries(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 2 || again[a.ID].CPU != 20 || again[b.ID].CPU != 30 {
			t.Fatalf("summaries on the second read: %+v", again)
		}
	})
}
