package monitors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/monitor"
)

func TestValidatePush(t *testing.T) {
	t.Parallel()
	ok := Input{Name: "nightly backup", Kind: KindPush, IntervalS: 86400, Retries: 1, Enabled: true, StatusPage: true}
	for _, tc := range []struct {
		name  string
		edit  func(*Input)
		field string // "" when accepted
	}{
		{"accepted", func(*Input) {}, ""},
		{"spaces around the target", func(in *Input) { in.Target = "  " }, ""},
		{"target", func(in *Input) { in.Target = "https://a.example/" }, "target"},
		{"timeout", func(in *Input) { in.TimeoutMS = 10000 }, "timeout_ms"},
		{"expected status", func(in *Input) { in.ExpectStatus = "200" }, "expect_status"},
		{"expected body", func(in *Input) { in.ExpectBody = "ok" }, "expect_body"},
		{"any certificate", func(in *Input) { in.IgnoreTLSErrors = true }, "ignore_tls_errors"},
		{"interval low", func(in *Input) { in.IntervalS = 19 }, "interval_s"},
		{"interval high", func(in *Input) { in.IntervalS = 86401 }, "interval_s"},
		{"retries", func(in *Input) { in.Retries = 11 }, "retries"},
		{"name", func(in *Input) { in.Name = "backup\n" }, "name"},
	} {
		in := ok
		tc.edit(&in)
		got, err := Validate(in)
		fe, _ := err.(FieldErrors)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.field == "" && (got.TimeoutMS != 0 || got.Target != ""):
			t.Errorf("%s: cleaned to timeout %d, target %q", tc.name, got.TimeoutMS, got.Target)
		case tc.field != "" && (fe[tc.field] == "" || len(fe) != 1):
			t.Errorf("%s: %v, want a message at %s only", tc.name, err, tc.field)
		}
	}
	if _, err := Validate(Input{Name: "x", Kind: "cron"}); err == nil || !strings.Contains(err.(FieldErrors)["kind"], "push") {
		t.Errorf("an unknown kind's message does not offer push: %v", err)
	}
}

func TestGrace(t *testing.T) {
	t.Parallel()
	for iv, want := range map[int]time.Duration{20: 30 * time.Second, 300: 30 * time.Second, 301: 30100 * time.Millisecond, 3600: 6 * time.Minute, 86400: 8640 * time.Second} {
		if got := Grace(iv); got != want {
			t.Errorf("Grace(%d) = %s, want %s", iv, got, want)
		}
	}
}

func TestParseReport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  Report
		field string // "" when accepted
	}{
		{"", Report{}, ""},
		{"status=up", Report{}, ""},
		{"status=down", Report{Down: true}, ""},
		{"status=down&msg=disk+full%3A+%2Fvar+at+98%25", Report{Down: true, Message: "disk full: /var at 98%"}, ""},
		{"msg=" + strings.Repeat("%C3%A9", 200), Report{Message: strings.Repeat("é", 200)}, ""},
		{"ping=0", Report{}, ""},
		{"ping=1234&status=up", Report{PingMS: 1234}, ""},
		{"ping=86400000", Report{PingMS: MaxPushPing}, ""},
		{"msg=" + strings.Repeat("a", 201), Report{}, "msg"},
		{"msg=" + strings.Repeat("%C3%A9", 201), Report{}, "msg"},
		{"msg=a%0Ab", Report{}, "msg"},
		{"msg=a%0D%0AX-Evil:+1", Report{}, "msg"},
		{"msg=a%00b", Report{}, "msg"},
		{"msg=a%09b", Report{}, "msg"},
		{"msg=%FF%FE", Report{}, "msg"},
		{"msg=a%E2%80%AEb", Report{}, "msg"}, // right-to-left override
		{"status=Down", Report{}, "status"},
		{"status=failed", Report{}, "status"},
		{"status=up&status=down", Report{}, "status"},
		{"msg=a&msg=b", Report{}, "msg"},
		{"ping=-1", Report{}, "ping"},
		{"ping=1e3", Report{}, "ping"},
		{"ping=+5", Report{}, "ping"},
		{"ping=007", Report{}, "ping"},
		{"ping=86400001", Report{}, "ping"},
		{"ping=99999999999999999999", Report{}, "ping"},
		{"stauts=down", Report{}, "query"},
		{"status=down;msg=x", Report{}, "query"},
		{"msg=%zz", Report{}, "query"},
	} {
		got, err := ParseReport(tc.query)
		fe, _ := err.(FieldErrors)
		switch {
		case tc.field == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v %v, want %+v", tc.query, got, err, tc.want)
		case tc.field != "" && fe[tc.field] == "":
			t.Errorf("%q: %+v %v, want a message at %s", tc.query, got, err, tc.field)
		}
	}
}

func TestTokenShape(t *testing.T) {
	t.Parallel()
	token, hash, err := newPushToken()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := newPushToken()
	if !TokenShape(token) || len(token) != 43 || token == other || hash != HashToken(token) || len(hash) != 64 || strings.Contains(hash, token) {
		t.Fatalf("token %q, hash %q", token, hash)
	}
	for _, bad := range []string{"", token[:42], token + "A", token[:42] + "=", token[:42] + "+", token[:42] + "/", token[:42] + ".", strings.Repeat("A", 42) + "B"} {
		if TokenShape(bad) {
			t.Errorf("%q has the shape of a token", bad)
		}
	}
}

// pushEnv is a Service on a stopped clock, with one push monitor.
type pushEnv struct {
	t     *testing.T
	db    *store.DB
	s     *Service
	start time.Time
	clock time.Time
	m     *ent.Monitor
	token string
}

func newPushEnv(t *testing.T, db *store.DB, in Input) *pushEnv {
	t.Helper()
	e := &pushEnv{t: t, db: db, start: time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)}
	e.clock = e.start
	e.s = New(db, Config{Now: func() time.Time { return e.clock }, Audit: audit.New(db.Client, hclog.NewNullLogger())}, hclog.NewNullLogger())
	var err error
	e.m, e.token, err = e.s.Create(context.Background(), audit.System("test"), in)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// at stands the clock at start plus d.
func (e *pushEnv) at(d time.Duration) { e.clock = e.start.Add(d) }

func (e *pushEnv) push(query string) (*ent.Monitor, error) {
	e.t.Helper()
	rep, err := ParseReport(query)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.s.Push(context.Background(), e.token, rep)
}

func (e *pushEnv) probe() {
	e.t.Helper()
	_ = e.s.ProbeAll(context.Background(), func(string, ...any) {}) // it fails while a monitor is down
}

func (e *pushEnv) get() *ent.Monitor {
	e.t.Helper()
	m, err := e.s.Get(context.Background(), e.m.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *pushEnv) outages() []*ent.MonitorOutage {
	e.t.Helper()
	o, err := e.s.Outages(context.Background(), e.m.ID, 10)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// counted is how many up and down checks the hours hold.
func (e *pushEnv) counted() (up, down int) {
	e.t.Helper()
	for _, h := range e.db.Client.MonitorHour.Query().AllX(context.Background()) {
		up, down = up+h.Up, down+h.Down
	}
	return up, down
}

func at(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// A push monitor is up while pushes come in time; each interval without
// one (after the grace) is a failed check dated at its deadline, down after
// retries+1 of them with the outage from the first; a push ends it at once;
// a push may report a failure itself.
func TestPushMonitor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPushEnv(t, db, Input{Name: "backup", Kind: KindPush, IntervalS: 60, Retries: 1, Enabled: true})
		const grace = 30 * time.Second
		m := e.get()
		if m.Kind != monitor.KindPush || m.Target != "" || m.PushTokenHash == nil || *m.PushTokenHash != HashToken(e.token) ||
			m.PushDueAt == nil || !m.PushDueAt.Equal(e.start.Add(90*time.Second)) || m.CheckedAt != nil {
			t.Fatalf("created: %+v", m)
		}
		// Nothing is due before the first deadline.
		e.at(89 * time.Second)
		e.probe()
		if m = e.get(); m.CheckedAt != nil {
			t.Fatalf("checked before its deadline: %+v", m)
		}
		// A push: up at once, and the deadline moves on.
		e.at(10 * time.Second)
		if m, err := e.push(""); err != nil || !m.Ok || m.FailedChecks != 0 || !m.LastPushAt.Equal(e.clock) || !m.CheckedAt.Equal(e.clock) ||
			!m.PushDueAt.Equal(e.clock.Add(time.Minute+grace)) {
			t.Fatalf("after a push: %+v %v", m, err)
		}
		lastPush := e.clock
		firstMiss := lastPush.Add(time.Minute + grace) // +100 s
		// The first missed deadline: retrying, dated at the deadline.
		e.at(105 * time.Second)
		e.probe()
		m = e.get()
		if !m.Ok || m.FailedChecks != 1 || !m.CheckedAt.Equal(firstMiss) || !m.FailingSince.Equal(firstMiss) ||
			m.Message != "no push since "+at(lastPush) || !m.PushDueAt.Equal(firstMiss.Add(time.Minute)) {
			t.Fatalf("after the first missed deadline: %+v", m)
		}
		// The job running again before the next deadline changes nothing.
		e.probe()
		if again := e.get(); again.FailedChecks != 1 || again.Seq != m.Seq {
			t.Fatalf("a second run counted again: %+v", again)
		}
		if o := e.outages(); len(o) != 0 {
			t.Fatalf("an outage while retrying: %+v", o)
		}
		// The second: down, with the outage from the first missed deadline.
		e.at(165 * time.Second)
		e.probe()
		m = e.get()
		if m.Ok || m.FailedChecks != 2 || !m.FailingSince.Equal(firstMiss) || !m.CheckedAt.Equal(firstMiss.Add(time.Minute)) {
			t.Fatalf("after the second missed deadline: %+v", m)
		}
		o := e.outages()
		if len(o) != 1 || !o[0].StartedAt.Equal(firstMiss) || o[0].EndedAt != nil || o[0].Message != "no push since "+at(lastPush) {
			t.Fatalf("outage: %+v", o)
		}
		// A push ends it at once.
		e.at(170 * time.Second)
		if m, err := e.push("ping=1500"); err != nil || !m.Ok || m.FailedChecks != 0 || m.FailingSince != nil || m.LatencyMs != 1500 || m.Message != "" {
			t.Fatalf("after a late push: %+v %v", m, err)
		}
		if o = e.outages(); len(o) != 1 || o[0].EndedAt == nil || !o[0].EndedAt.Equal(e.clock) || o[0].Checks != 1 {
			t.Fatalf("outage after the push: %+v", o)
		}
		// A push that reports a failure is a failed check with its message.
		e.at(180 * time.Second)
		m, err := e.push("status=down&msg=disk+full")
		if err != nil || !m.Ok || m.FailedChecks != 1 || m.Message != "disk full" || !m.FailingSince.Equal(e.clock) {
			t.Fatalf("after a push reporting down: %+v %v", m, err)
		}
		downPush := e.clock
		e.at(190 * time.Second)
		if m, err = e.push("status=down"); err != nil || m.Ok || m.FailedChecks != 2 || m.Message != "the push reported down" {
			t.Fatalf("after a second push reporting down: %+v %v", m, err)
		}
		if o = e.outages(); len(o) != 2 || !o[0].StartedAt.Equal(downPush) || o[0].Message != "the push reported down" {
			t.Fatalf("outage of pushes reporting down: %+v", o)
		}
		e.at(200 * time.Second)
		if m, err = e.push("status=up&msg=ignored"); err != nil || !m.Ok || m.Message != "" {
			t.Fatalf("a good push: %+v %v", m, err)
		}
		if up, down := e.counted(); up != 3 || down != 4 {
			t.Errorf("hours count %d up and %d down, want 3 and 4", up, down)
		}
		// A controller stopped for an hour counts one missed deadline, not
		// sixty: it could take no push meanwhile. The next deadline stays
		// on the grid of intervals.
		due := e.get().PushDueAt.UTC() // +290 s
		e.at(200*time.Second + time.Hour)
		e.probe()
		m = e.get()
		if m.FailedChecks != 1 || !m.CheckedAt.Equal(due) || !m.PushDueAt.Equal(due.Add(59*time.Minute)) {
			t.Errorf("after an hour away: failed %d, checked %s, next %s", m.FailedChecks, m.CheckedAt, m.PushDueAt)
		}
	})
}

// Pushes are limited to one a second per monitor without a database write;
// an unknown token, a malformed one and a monitor that is off record
// nothing and are not remembered.
func TestPushRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newPushEnv(t, db, Input{Name: "cron", Kind: KindPush, Enabled: true})
		if _, err := e.push(""); err != nil {
			t.Fatal(err)
		}
		seq := e.get().Seq
		e.at(999 * time.Millisecond)
		if _, err := e.push(""); !errors.Is(err, ErrTooSoon) {
			t.Errorf("a second push within a second: %v", err)
		}
		if e.get().Seq != seq {
			t.Error("a refused push was written")
		}
		e.at(time.Second)
		if _, err := e.push(""); err != nil {
			t.Errorf("a push a second later: %v", err)
		}
		unknown, _, _ := newPushToken()
		for _, tok := range []string{unknown, "", "not-a-token", e.token + "x", strings.ToUpper(e.token)} {
			if _, err := e.s.Push(ctx, tok, Report{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("token %q: %v", tok, err)
			}
		}
		// Off: refused and not counted against the limit.
		in := InputOf(e.get())
		in.Enabled = false
		if _, _, err := e.s.Update(ctx, audit.System("test"), e.m.ID, in); err != nil {
			t.Fatal(err)
		}
		e.at(5 * time.Second)
		for range 2 {
			if _, err := e.push(""); !errors.Is(err, ErrPushOff) {
				t.Errorf("a push to a monitor that is off: %v", err)
			}
		}
		if m := e.get(); m.PushDueAt != nil || !m.LastPushAt.Equal(e.start.Add(time.Second)) {
			t.Errorf("a monitor that is off: %+v", m)
		}
		e.probe()
		if m := e.get(); m.FailedChecks != 0 {
			t.Errorf("a monitor that is off was checked: %+v", m)
		}
		// Back on, the wait starts afresh from now; the token is the same.
		e.at(time.Hour)
		in.Enabled = true
		if m, token, err := e.s.Update(ctx, audit.System("test"), e.m.ID, in); err != nil || token != "" || !m.PushDueAt.Equal(e.clock.Add(90*time.Second)) {
			t.Fatalf("back on: %+v %q %v", m, token, err)
		}
		if _, err := e.push(""); err != nil {
			t.Errorf("a push after turning it back on: %v", err)
		}
		e.s.pushes.mu.Lock()
		remembered := len(e.s.pushes.last)
		e.s.pushes.mu.Unlock()
		if remembered != 1 {
			t.Errorf("the limiter remembers %d tokens, want 1", remembered)
		}
	})
}

// The token is shown once and kept as a hash; edits keep it, a new one
// replaces it, and a monitor of another kind has none and takes no push.
func TestPushTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin := audit.System("test")
		e := newPushEnv(t, db, Input{Name: "cron", Kind: KindPush, Enabled: true})
		in := InputOf(e.get())
		in.Name, in.IntervalS = "cron-hourly", 3600
		m, token, err := e.s.Update(ctx, admin, e.m.ID, in)
		if err != nil || token != "" || *m.PushTokenHash != HashToken(e.token) || !m.PushDueAt.Equal(e.clock.Add(time.Hour+6*time.Minute)) {
			t.Fatalf("an edit: %+v %q %v", m, token, err)
		}
		if _, err := e.push(""); err != nil {
			t.Fatalf("a push after an edit: %v", err)
		}
		old := e.token
		m, e.token, err = e.s.NewPushToken(ctx, admin, e.m.ID)
		if err != nil || e.token == old || *m.PushTokenHash != HashToken(e.token) {
			t.Fatalf("a new token: %+v %v", m, err)
		}
		e.at(2 * time.Second)
		if _, err := e.s.Push(ctx, old, Report{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("a push with the replaced token: %v", err)
		}
		if _, err := e.push(""); err != nil {
			t.Errorf("a push with the new token: %v", err)
		}
		// The token is nowhere in the database: not in the row, not in the
		// audit log.
		for _, ev := range db.Client.AuditEvent.Query().AllX(ctx) {
			for _, tok := range []string{old, e.token} {
				if strings.Contains(ev.Detail+ev.Target+ev.Action, tok) {
					t.Errorf("audit entry %s holds a token: %s", ev.Action, ev.Detail)
				}
			}
		}
		if n := len(db.Client.AuditEvent.Query().AllX(ctx)); n != 3 {
			t.Errorf("%d audit entries, want create, update and the new push URL", n)
		}
		if s := e.get().String(); strings.Contains(s, *e.get().PushTokenHash) {
			t.Errorf("the row's text shows the token's hash: %s", s)
		}
		// Another kind: no token, no pushes, no new token.
		tcp := Input{Name: "cron-hourly", Kind: KindTCP, Target: "127.0.0.1:1", Enabled: true}
		if m, token, err = e.s.Update(ctx, admin, e.m.ID, tcp); err != nil || token != "" || m.PushTokenHash != nil || m.PushDueAt != nil || m.LastPushAt != nil {
			t.Fatalf("made a tcp monitor: %+v %q %v", m, token, err)
		}
		e.at(4 * time.Second)
		if _, err := e.push(""); !errors.Is(err, ErrNotFound) {
			t.Errorf("a push to a tcp monitor: %v", err)
		}
		if _, _, err := e.s.NewPushToken(ctx, admin, e.m.ID); !errors.Is(err, ErrNotPush) {
			t.Errorf("a push token for a tcp monitor: %v", err)
		}
		if _, _, err := e.s.NewPushToken(ctx, admin, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("a push token for no monitor: %v", err)
		}
		// Back to push: a new token, returned by the edit.
		in.Target = ""
		if m, token, err = e.s.Update(ctx, admin, e.m.ID, in); err != nil || token == "" || *m.PushTokenHash != HashToken(token) || m.CheckedAt != nil {
			t.Fatalf("made a push monitor again: %+v %v", m, err)
		}
		e.token = token
		if _, err := e.push(""); err != nil {
			t.Errorf("a push with the token of the edit: %v", err)
		}
	})
}

// The job read a push monitor whose deadline passed, then a push landed
// before the job wrote: the job's write is refused and judged again on the
// newer row, so no failed check is counted. The other way round, a push
// judged on a row read before the job's failed check still ends the outage
// that check opened.
func TestPushAndJobRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newPushEnv(t, db, Input{Name: "race", Kind: KindPush, Enabled: true})
		e.at(91 * time.Second)
		stale := e.get() // overdue
		if _, err := e.push(""); err != nil {
			t.Fatal(err)
		}
		m, err := e.s.overdue(ctx, stale)
		if err != nil || !m.Ok || m.FailedChecks != 0 {
			t.Fatalf("the job after the push: %+v %v", m, err)
		}
		if _, err := e.s.write(ctx, stale, outcome{Result: Result{At: e.clock}}); !errors.Is(err, errMoved) {
			t.Errorf("a write over a row that moved on: %v", err)
		}
		if up, down := e.counted(); up != 1 || down != 0 {
			t.Errorf("counted %d up, %d down; want the push alone", up, down)
		}

		// The push reads the row, the job records a missed deadline (down:
		// no retries) and opens an outage, then the push writes.
		e.at(91*time.Second + 91*time.Second)
		before := e.get()
		if m, err := e.s.overdue(ctx, before); err != nil || m.Ok {
			t.Fatalf("the missed deadline: %+v %v", m, err)
		}
		hash := HashToken(e.token)
		m, err = e.s.apply(ctx, before, func(m *ent.Monitor) (outcome, bool, error) {
			if *m.PushTokenHash != hash {
				return outcome{}, false, ErrNotFound
			}
			return outcome{Result: Result{At: e.clock, OK: true}, pushed: true, due: pushDeadline(e.clock, m.IntervalS)}, true, nil
		})
		if err != nil || !m.Ok || m.FailingSince != nil {
			t.Fatalf("the push after the job: %+v %v", m, err)
		}
		if o := e.outages(); len(o) != 1 || o[0].EndedAt == nil {
			t.Errorf("the outage the push ended: %+v", o)
		}
	})
}

// Pushes and job runs at once, over and over: whatever order they land in,
// every deadline is counted at most once, the monitor ends up, and each
// outage is ended by the push after it.
func TestPushAndJobConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		clock := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		cfg := Config{Now: now}
		pushes := New(db, cfg, hclog.NewNullLogger())
		jobs := []*Service{New(db, cfg, hclog.NewNullLogger()), New(db, cfg, hclog.NewNullLogger())}
		m, token, err := pushes.Create(ctx, audit.System("test"), Input{Name: "race", Kind: KindPush, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		const rounds = 15
		for range rounds {
			// Past the deadline: the jobs and a push all at this moment.
			mu.Lock()
			clock = clock.Add(2 * time.Minute)
			mu.Unlock()
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for _, j := range jobs {
				wg.Go(func() {
					if err := j.ProbeAll(ctx, func(string, ...any) {}); err != nil && !strings.Contains(err.Error(), "down") {
						errs <- err
					}
				})
			}
			wg.Go(func() {
				if _, err := pushes.Push(ctx, token, Report{}); err != nil {
					errs <- err
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got, err := pushes.Get(ctx, m.ID)
			if err != nil || !got.Ok || got.FailingSince != nil {
				t.Fatalf("after a round: %+v %v", got, err)
			}
		}
		up, down := 0, 0
		for _, h := range db.Client.MonitorHour.Query().AllX(ctx) {
			up, down = up+h.Up, down+h.Down
		}
		outages := db.Client.MonitorOutage.Query().AllX(ctx)
		if up != rounds || down > rounds || len(outages) != down {
			t.Errorf("%d up, %d down, %d outages over %d rounds", up, down, len(outages), rounds)
		}
		for _, o := range outages {
			if o.EndedAt == nil || o.Checks != 1 {
				t.Errorf("outage %+v", o)
			}
		}
	})
}
