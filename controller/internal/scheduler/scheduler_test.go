package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/task"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// eachDialect runs body against a migrated SQLite file and PostgreSQL database.
func eachDialect(t *testing.T, body func(t *testing.T, db *store.DB)) {
	open := func(t *testing.T, url string) *store.DB {
		db, err := store.Open(context.Background(), url, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db
	}
	t.Run("sqlite", func(t *testing.T) { body(t, open(t, "sqlite:"+filepath.Join(t.TempDir(), "gh.db"))) })
	t.Run("postgres", func(t *testing.T) { body(t, open(t, pgtest.Database(t))) })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// start runs s until the test ends, or until the returned stop is called.
func start(t *testing.T, s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func TestRunsAreRecordedWithOutcomeAndLog(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		st := NewEntStore(db.Client)
		s := New(st, hclog.NewNullLogger(), Options{})
		var n atomic.Int32
		mustAdd(t, s, Job{Name: "ok", Title: "Succeeds", Every: time.Hour, Run: func(ctx context.Context, l *Log) error {
			n.Add(1)
			l.Printf("rolled up %d buckets", 3)
			return nil
		}})
		mustAdd(t, s, Job{Name: "bad", Title: "Fails", Every: time.Hour, Run: func(context.Context, *Log) error {
			return errors.New("database is locked")
		}})
		mustAdd(t, s, Job{Name: "boom", Title: "Panics", Every: time.Hour, Run: func(context.Context, *Log) error {
			panic("nil map")
		}})
		start(t, s)
		eventually(t, "three finished runs", func() bool {
			for _, j := range s.Jobs() {
				if j.Last == nil || j.Last.FinishedAt == nil {
					return false
				}
			}
			return true
		})
		runs := map[string]Run{}
		for _, name := range []string{"ok", "bad", "boom"} {
			h, err := s.History(context.Background(), name, 10)
			if err != nil || len(h) != 1 {
				t.Fatalf("history of %s: %v %v", name, h, err)
			}
			runs[name] = h[0]
		}
		if r := runs["ok"]; r.Outcome != OutcomeSucceeded || !strings.Contains(r.Log, "rolled up 3 buckets") || r.Error != "" || r.FinishedAt == nil {
			t.Errorf("ok run = %+v", r)
		}
		if r := runs["bad"]; r.Outcome != OutcomeFailed || r.Error != "database is locked" {
			t.Errorf("bad run = %+v", r)
		}
		if r := runs["boom"]; r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "panicked: nil map") {
			t.Errorf("boom run = %+v", r)
		}
		if n.Load() != 1 {
			t.Errorf("hourly job ran %d times at start, want 1", n.Load())
		}
		if _, err := s.History(context.Background(), "nope", 1); !errors.Is(err, ErrUnknownJob) {
			t.Errorf("history of unknown job: %v", err)
		}
	})
}

func TestJobNeverOverlapsItself(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		s := New(NewEntStore(db.Client), hclog.NewNullLogger(), Options{})
		var active, maxActive, runs atomic.Int32
		release := make(chan struct{})
		started := make(chan struct{}, 16)
		mustAdd(t, s, Job{Name: "slow", Title: "Slow", Every: 100 * time.Millisecond, Run: func(ctx context.Context, _ *Log) error {
			a := active.Add(1)
			defer active.Add(-1)
			for {
				m := maxActive.Load()
				if a <= m || maxActive.CompareAndSwap(m, a) {
					break
				}
			}
			runs.Add(1)
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}})
		start(t, s)
		<-started
		if err := s.Trigger("slow"); !errors.Is(err, ErrRunning) {
			t.Fatalf("Trigger while running = %v, want ErrRunning", err)
		}
		if st, _ := s.Job("slow"); !st.Running {
			t.Fatal("status does not show the job running")
		}
		// Several periods pass while the run is held; then let runs go.
		time.Sleep(350 * time.Millisecond)
		close(release)
		eventually(t, "four runs", func() bool { return runs.Load() >= 4 })
		if m := maxActive.Load(); m != 1 {
			t.Fatalf("%d runs of one job were active at once", m)
		}
		if err := s.Trigger("none"); !errors.Is(err, ErrUnknownJob) {
			t.Errorf("Trigger of unknown job = %v", err)
		}
	})
}

func TestScheduleSurvivesRestart(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewEntStore(db.Client)
		last := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
		id, err := st.Begin(ctx, "daily", last)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Finish(ctx, id, last.Add(time.Second), OutcomeSucceeded, "", ""); err != nil {
			t.Fatal(err)
		}
		// A run of another job left open by a crash.
		if _, err := st.Begin(ctx, "hourly", last); err != nil {
			t.Fatal(err)
		}

		s := New(st, hclog.NewNullLogger(), Options{})
		var dailyRuns, hourlyRuns atomic.Int32
		mustAdd(t, s, Job{Name: "daily", Title: "Daily", Every: 24 * time.Hour, Run: func(context.Context, *Log) error { dailyRuns.Add(1); return nil }})
		mustAdd(t, s, Job{Name: "hourly", Title: "Hourly", Every: time.Hour, Run: func(context.Context, *Log) error { hourlyRuns.Add(1); return nil }})
		start(t, s)
		// The hourly job's last run started 10 minutes ago as well, but was
		// interrupted; it is due again only an hour after that start.
		eventually(t, "schedule computed", func() bool {
			d, _ := s.Job("daily")
			h, _ := s.Job("hourly")
			return !d.Next.IsZero() && !h.Next.IsZero()
		})
		d, _ := s.Job("daily")
		if !d.Next.Equal(last.Add(24 * time.Hour)) {
			t.Errorf("daily next run = %s, want %s", d.Next, last.Add(24*time.Hour))
		}
		if d.Last == nil || d.Last.Outcome != OutcomeSucceeded {
			t.Errorf("daily last run = %+v", d.Last)
		}
		h, _ := s.Job("hourly")
		if h.Last == nil || h.Last.Outcome != OutcomeFailed || !strings.Contains(h.Last.Error, "interrupted") {
			t.Errorf("interrupted run not closed as failed: %+v", h.Last)
		}
		if dailyRuns.Load()+hourlyRuns.Load() != 0 {
			t.Errorf("jobs ran at start although not due")
		}
		// Run now still works.
		if err := s.Trigger("daily"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "triggered run", func() bool { return dailyRuns.Load() == 1 })
		eventually(t, "triggered run recorded", func() bool {
			d, _ := s.Job("daily")
			return d.Last != nil && d.Last.FinishedAt != nil && d.Last.StartedAt.After(last)
		})
		d, _ = s.Job("daily")
		if want := d.Last.StartedAt.Add(24 * time.Hour); !d.Next.Equal(want) {
			t.Errorf("after run now, next = %s, want %s", d.Next, want)
		}
	})
}

func TestPruneAndQuietJobs(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var logs syncbuf.Buffer
		s := New(NewEntStore(db.Client), hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}), Options{Keep: 3})
		var mu sync.Mutex
		var loud, quiet int
		mustAdd(t, s, Job{Name: "loud", Title: "Loud", Every: 100 * time.Millisecond, Run: func(context.Context, *Log) error {
			mu.Lock()
			loud++
			mu.Unlock()
			return nil
		}})
		mustAdd(t, s, Job{Name: "quiet", Title: "Quiet", Every: 100 * time.Millisecond, Quiet: true, Run: func(_ context.Context, l *Log) error {
			mu.Lock()
			defer mu.Unlock()
			quiet++
			if quiet == 2 {
				l.Printf("something worth keeping")
			}
			if quiet == 3 {
				return errors.New("failed once")
			}
			return nil
		}})
		stop := start(t, s)
		eventually(t, "runs", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return loud >= 6 && quiet >= 5
		})
		// Once the scheduler has stopped, every recorded run has been
		// finished and pruned: exactly Keep runs remain.
		stop()
		kept, err := db.Client.Task.Query().Where(task.Subject("loud")).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kept != 3 {
			t.Errorf("%d runs of a job kept, want 3; scheduler log:\n%s", kept, logs.String())
		}
		h, err := s.History(ctx, "quiet", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Outcome != OutcomeFailed || !strings.Contains(h[1].Log, "something worth keeping") {
			t.Fatalf("quiet job history = %+v, want only the run that logged and the failed one", h)
		}
		if q, _ := s.Job("quiet"); q.Last == nil {
			t.Error("quiet job shows no last run")
		}
	})
}

// Prune keeps exactly the newest runs, whatever clock reading their start
// times carry (time.Now's monotonic reading included).
func TestPruneKeepsNewestRuns(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewEntStore(db.Client)
		base := time.Now()
		var ids []int
		for i := range 6 {
			id, err := st.Begin(ctx, "j", base.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if _, err := st.Begin(ctx, "other", base); err != nil {
			t.Fatal(err)
		}
		for _, keep := range []int{3, 3, 1} {
			if err := st.Prune(ctx, "j", keep); err != nil {
				t.Fatal(err)
			}
			h, err := st.History(ctx, "j", 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, r := range h {
				got = append(got, r.ID)
			}
			want := []int{}
			for i := len(ids) - 1; i >= len(ids)-keep; i-- {
				want = append(want, ids[i])
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after pruning to %d: runs %v, want %v", keep, got, want)
			}
		}
		if h, _ := st.History(ctx, "other", 100); len(h) != 1 {
			t.Errorf("pruning one job removed another's runs: %v", h)
		}
	})
}

func TestJobValidation(t *testing.T) {
	run := func(context.Context, *Log) error { return nil }
	for _, tc := range []struct {
		job  Job
		want string
	}{
		{Job{Name: "Bad Name", Title: "x", Every: time.Second, Run: run}, "name:"},
		{Job{Name: "ok", Title: " ", Every: time.Second, Run: run}, "title: required"},
		{Job{Name: "ok", Title: "x", Every: time.Millisecond, Run: run}, "every:"},
		{Job{Name: "ok", Title: "x", Every: time.Second}, "run: required"},
	} {
		err := New(nil, hclog.NewNullLogger(), Options{}).Add(tc.job)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%+v) = %v, want %q", tc.job.Name, err, tc.want)
		}
	}
	s := New(nil, hclog.NewNullLogger(), Options{})
	mustAdd(t, s, Job{Name: "a", Title: "A", Every: time.Second, Run: run})
	if err := s.Add(Job{Name: "a", Title: "A", Every: time.Second, Run: run}); err == nil {
		t.Error("duplicate job accepted")
	}
}

func TestLogIsBounded(t *testing.T) {
	l := &Log{now: time.Now}
	line := strings.Repeat("x", 1000)
	for range 100 {
		l.Printf("%s", line)
	}
	if got := l.String(); len(got) > MaxLog+100 || !strings.HasSuffix(got, "… log truncated\n") {
		t.Fatalf("log of %d bytes, suffix %q", len(got), got[len(got)-20:])
	}
}

func mustAdd(t *testing.T, s *Scheduler, j Job) {
	t.Helper()
	if err := s.Add(j); err != nil {
		t.Fatal(err)
	}
}
