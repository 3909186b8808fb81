package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/auditevent"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/notificationchannel"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

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

// recorder keeps what the engine asked to send.
type recorder struct {
	mu  sync.Mutex
	got []notify.Notification
}

func (r *recorder) Notify(n notify.Notification, _ []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
}

// all returns a copy of what was sent.
func (r *recorder) all() []notify.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Notification(nil), r.got...)
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.got {
		out = append(out, string(n.Kind))
	}
	return out
}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}

// clock is a settable time for the engine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

type fixture struct {
	db     *store.DB
	e      *Engine
	rec    *recorder
	clk    *clock
	server *ent.Server
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	clk := &clock{t: time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	e := New(db, hclog.NewNullLogger(), Options{Audit: audit.New(db.Client, hclog.NewNullLogger()), Notifier: rec, Now: clk.now})
	s, err := db.Client.Server.Create().SetName("web-1").SetStatus(server.StatusOnline).SetLastSeenAt(clk.t).
		SetHostname("web-1.example").SetLabels([]string{"edge"}).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, e: e, rec: rec, clk: clk, server: s}
}

// observe buffers a CPU value at the current time, as Run would.
func (f *fixture) observe(cpu float64) {
	f.e.buffer(Observation{ServerID: f.server.ID, At: f.clk.t, Values: map[string]float64{"cpu": cpu}})
}

func (f *fixture) eval(t *testing.T) {
	t.Helper()
	if err := f.e.Evaluate(context.Background(), nopLog{}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) incidents(t *testing.T) []*ent.Incident {
	t.Helper()
	list, err := f.db.Client.Incident.Query().Order(ent.Asc(incident.FieldID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// step advances the clock by a second, observes cpu and evaluates.
func (f *fixture) step(t *testing.T, cpu float64) {
	t.Helper()
	f.clk.advance(time.Second)
	f.observe(cpu)
	f.eval(t)
}

func cpuRule(t *testing.T, e *Engine, repeat time.Duration) Rule {
	t.Helper()
	r, err := e.SaveRule(context.Background(), Rule{Name: "CPU", Kind: KindMetric, Enabled: true, Metric: MetricCPU, Op: OpAbove,
		Warning: f(80), Critical: f(95), Window: 3 * time.Second, Repeat: repeat}, audit.System("test"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIncidentLifecycle(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newFixture(t, db)
		cpuRule(t, fx.e, 10*time.Second)
		fx.step(t, 10)
		if len(fx.incidents(t)) != 0 {
			t.Fatal("an incident opened while calm")
		}
		fx.step(t, 90) // pending: the latest sample is past the warning level
		incs := fx.incidents(t)
		if len(incs) != 1 || incs[0].State != incident.StatePending || len(fx.rec.kinds()) != 0 {
			t.Fatalf("after the first high sample: %+v, sent %v", incs, fx.rec.kinds())
		}
		fx.step(t, 90)
		fx.step(t, 90)
		fx.step(t, 90) // held for the 3s window, average past 80
		incs = fx.incidents(t)
		if len(incs) != 1 || incs[0].State != incident.StateFiring || incs[0].Severity != "warning" {
			t.Fatalf("after the window: %+v", incs)
		}
		if got := fx.rec.kinds(); len(got) != 1 || got[0] != "firing" {
			t.Fatalf("sent %v, want one firing", got)
		}
		// Evaluating again sends nothing new and keeps one incident.
		fx.eval(t)
		fx.eval(t)
		if len(fx.incidents(t)) != 1 || len(fx.rec.kinds()) != 1 {
			t.Fatal("repeated evaluation duplicated the incident or the message")
		}
		// Escalation to critical re-notifies.
		fx.step(t, 99)
		fx.step(t, 99)
		fx.step(t, 99)
		if got := fx.incidents(t)[0]; got.Severity != "critical" {
			t.Fatalf("severity %q, want critical", got.Severity)
		}
		if got := fx.rec.kinds(); len(got) != 2 || got[1] != "repeat" {
			t.Fatalf("sent %v, want firing then an escalation", got)
		}
		// The reminder comes once the repeat interval has passed.
		fx.clk.advance(11 * time.Second)
		fx.observe(99)
		fx.eval(t)
		if got := fx.rec.kinds(); len(got) != 3 || got[2] != "repeat" {
			t.Fatalf("sent %v, want a reminder", got)
		}
		// Ack stops reminders.
		inc := fx.incidents(t)[0]
		if _, err := fx.e.AckIncident(context.Background(), inc.ID, audit.System("telegram:@bob")); err != nil {
			t.Fatal(err)
		}
		fx.clk.advance(30 * time.Second)
		fx.observe(99)
		fx.eval(t)
		if got := fx.rec.kinds(); len(got) != 3 {
			t.Fatalf("sent %v after the ack, want nothing more", got)
		}
		n, _ := db.Client.AuditEvent.Query().Where(auditevent.Action("incident.ack"), auditevent.Actor("telegram:@bob")).Count(context.Background())
		if n != 1 {
			t.Fatalf("%d audit entries for the ack", n)
		}
		// Recovery.
		for range 4 {
			fx.step(t, 10)
		}
		incs = fx.incidents(t)
		if len(incs) != 1 || incs[0].State != incident.StateResolved || incs[0].ResolvedAt == nil || incs[0].OpenKey != nil {
			t.Fatalf("after recovery: %+v", incs[0])
		}
		got := fx.rec.kinds()
		if len(got) != 4 || got[3] != "resolved" {
			t.Fatalf("sent %v, want a recovery last", got)
		}
		last := fx.rec.got[3]
		if last.Key != strconv.Itoa(incs[0].ID)+":resolved" {
			t.Errorf("recovery key %q", last.Key)
		}
		if _, err := fx.e.AckIncident(context.Background(), inc.ID, audit.System("x")); !errors.Is(err, ErrResolved) {
			t.Errorf("ack of a resolved incident: %v", err)
		}
		// A new breach opens a new incident.
		fx.step(t, 99)
		if incs := fx.incidents(t); len(incs) != 2 || incs[1].State != incident.StatePending {
			t.Fatalf("a new breach: %+v", incs)
		}
	})
}

func TestOneOpenIncidentPerRuleAndSubject(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		key := "1:server:1"
		mk := func() error {
			return db.Client.Incident.Create().SetRuleID(1).SetSubject("server:1").SetOpenKey(key).SetStartedAt(time.Now()).Exec(ctx)
		}
		if err := mk(); err != nil {
			t.Fatal(err)
		}
		if err := mk(); !ent.IsConstraintError(err) {
			t.Fatalf("a second open incident for the same rule and subject: %v", err)
		}
		// Once resolved, the key is free again.
		if _, err := db.Client.Incident.Update().Where(incident.OpenKey(key)).ClearOpenKey().SetState(incident.StateResolved).Save(ctx); err != nil {
			t.Fatal(err)
		}
		if err := mk(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPendingClearsSilently(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newFixture(t, db)
		cpuRule(t, fx.e, 0)
		fx.step(t, 99)
		fx.step(t, 10)
		fx.step(t, 10)
		fx.step(t, 10)
		if incs := fx.incidents(t); len(incs) != 0 || len(fx.rec.kinds()) != 0 {
			t.Fatalf("a spike shorter than the window left %+v and sent %v", incs, fx.rec.kinds())
		}
	})
}

func TestSilenceScopeAndTime(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newFixture(t, db)
		r := cpuRule(t, fx.e, 0)
		other, err := db.Client.Server.Create().SetName("web-2").SetStatus(server.StatusOnline).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.e.CreateSilence(ctx, SilenceInput{RuleID: r.ID, ServerID: other.ID, StartsAt: fx.clk.t, EndsAt: fx.clk.t.Add(time.Hour)}, audit.System("t")); err != nil {
			t.Fatal(err)
		}
		// A silence for another server does not hold this one's notices.
		for range 4 {
			fx.step(t, 99)
		}
		if got := fx.rec.kinds(); len(got) != 1 {
			t.Fatalf("sent %v, want the firing notice despite a silence for another server", got)
		}
		for range 4 {
			fx.step(t, 10)
		}
		// Now silence this server for 10 minutes: the next incident stays quiet...
		s, err := fx.e.CreateSilence(ctx, SilenceInput{RuleID: r.ID, ServerID: fx.server.ID, StartsAt: fx.clk.t, EndsAt: fx.clk.t.Add(10 * time.Minute), Comment: "maintenance"}, audit.System("t"))
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			fx.step(t, 99)
		}
		if got := fx.rec.kinds(); len(got) != 2 {
			t.Fatalf("sent %v, want only the earlier firing and resolved", got)
		}
		// ...until the silence ends, when the firing notice goes out.
		fx.clk.t = s.EndsAt.Add(time.Second)
		fx.observe(99)
		fx.eval(t)
		if got := fx.rec.kinds(); len(got) != 3 || got[2] != "firing" {
			t.Fatalf("sent %v, want the firing notice once the silence ended", got)
		}
	})
}

func TestSilenceValidation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in    SilenceInput
		field string
	}{
		{SilenceInput{StartsAt: now, EndsAt: now.Add(-time.Minute)}, "ends_at"},
		{SilenceInput{StartsAt: now.Add(-2 * time.Hour), EndsAt: now.Add(-time.Hour)}, "ends_at"},
		{SilenceInput{StartsAt: now, EndsAt: now.Add(100 * 24 * time.Hour)}, "ends_at"},
		{SilenceInput{StartsAt: now, EndsAt: now.Add(time.Hour), RuleID: -1}, "rule_id"},
		{SilenceInput{StartsAt: now, EndsAt: now.Add(time.Hour), Comment: strings.Repeat("x", 501)}, "comment"},
	} {
		err := tc.in.Validate(now)
		if fe, ok := err.(FieldErrors); !ok || fe[tc.field] == "" {
			t.Errorf("Validate(%+v) = %v, want a message for %s", tc.in, err, tc.field)
		}
	}
}

func TestOfflineAndRuleRemoval(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newFixture(t, db)
		r, err := fx.e.SaveRule(ctx, Rule{Name: "Offline", Kind: KindOffline, Enabled: true, Severity: SeverityCritical, Window: time.Minute}, audit.System("t"))
		if err != nil {
			t.Fatal(err)
		}
		fx.clk.advance(2 * time.Minute)
		fx.eval(t)
		incs := fx.incidents(t)
		if len(incs) != 1 || incs[0].State != incident.StateFiring || !strings.Contains(incs[0].Summary, "No report") {
			t.Fatalf("offline: %+v", incs)
		}
		// Deleting the rule resolves its incident.
		if err := fx.e.DeleteRule(ctx, r.ID, audit.System("t")); err != nil {
			t.Fatal(err)
		}
		fx.eval(t)
		if incs := fx.incidents(t); incs[0].State != incident.StateResolved {
			t.Fatalf("after deleting the rule: %+v", incs[0])
		}
		if got := fx.rec.kinds(); len(got) != 2 || got[1] != "resolved" {
			t.Fatalf("sent %v", got)
		}
	})
}

func TestSaveRuleRefusesDuplicatesAndHostileInput(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newFixture(t, db)
		cpuRule(t, fx.e, 0)
		_, err := fx.e.SaveRule(context.Background(), Rule{Name: "CPU", Kind: KindMetric, Metric: MetricCPU, Op: OpAbove, Critical: f(90)}, audit.System("t"))
		var fe FieldErrors
		if !errors.As(err, &fe) || fe["name"] == "" {
			t.Fatalf("duplicate name: %v", err)
		}
		_, err = fx.e.SaveRule(context.Background(), Rule{Name: "x", Kind: KindMetric, Metric: MetricFS, Mount: "/$(reboot)", Op: OpAbove, Critical: f(90)}, audit.System("t"))
		if !errors.As(err, &fe) || fe["mount"] == "" {
			t.Fatalf("hostile mount: %v", err)
		}
		if n, _ := db.Client.AlertRule.Query().Count(context.Background()); n != 1 {
			t.Fatalf("%d rules stored, want 1", n)
		}
	})
}

// startChannels builds Channels over db, with a fresh master key, and runs
// them until the test ends.
func startChannels(t *testing.T, db *store.DB, log hclog.Logger) *Channels {
	t.Helper()
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	chs := NewChannels(db, box, log, ChannelsOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { chs.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return chs
}

// TestWebhookChannelDeliversAndRecords stores a webhook channel with a
// signing secret, checks it is sealed at rest, and delivers through it to a
// receiver on loopback, with the attempt recorded.
func TestWebhookChannelDeliversAndRecords(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const secret = "a-signing-secret-of-some-length"
		got := make(chan notify.WebhookPayload, 4)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if !notify.VerifySignature(secret, body, r.Header.Get(notify.SignatureHeader)) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			var p notify.WebhookPayload
			json.Unmarshal(body, &p)
			got <- p
		}))
		defer recv.Close()

		chs := startChannels(t, db, hclog.NewNullLogger())

		_, err := chs.SaveChannel(ctx, ChannelInput{Name: "hook", Kind: "webhook", Enabled: true, URL: "ftp://x"}, audit.System("t"))
		var fe FieldErrors
		if !errors.As(err, &fe) || fe["url"] == "" {
			t.Fatalf("bad url: %v", err)
		}
		ch, err := chs.SaveChannel(ctx, ChannelInput{Name: "hook", Kind: "webhook", Enabled: true, URL: recv.URL, Secret: secret}, audit.System("t"))
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := db.Client.NotificationChannel.Get(ctx, ch.ID)
		if len(stored.Secret) == 0 || strings.Contains(string(stored.Secret), secret) {
			t.Fatal("the signing secret is not sealed at rest")
		}
		if err := chs.SendTest(ctx, ch.ID); err != nil {
			t.Fatal(err)
		}
		receive := func() notify.WebhookPayload {
			t.Helper()
			select {
			case p := <-got:
				return p
			case <-time.After(10 * time.Second):
				t.Fatal("the webhook received nothing")
				return notify.WebhookPayload{}
			}
		}
		if p := receive(); p.Kind != notify.KindTest || p.Channel != "hook" {
			t.Fatalf("payload %+v", p)
		}
		chs.Notify(notify.Notification{Key: "7:firing", IncidentID: "7", Kind: notify.KindFiring, Severity: notify.SeverityCritical,
			Title: "CPU on <b>web</b>", Fields: []notify.Field{{Name: "Server", Value: "web"}}}, nil)
		if p := receive(); p.Title != "CPU on <b>web</b>" || p.IncidentID != "7" {
			t.Fatalf("payload %+v", p)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			list, err := chs.Deliveries(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 2 {
				for _, d := range list {
					if d.Outcome != "delivered" || d.ChannelID != ch.ID {
						t.Fatalf("delivery record %+v", d)
					}
				}
				if list[0].IncidentID != 7 && list[1].IncidentID != 7 {
					t.Fatalf("records do not name the incident: %+v", list)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d delivery records, want 2", len(list))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := chs.DeleteChannel(ctx, ch.ID, audit.System("t")); err != nil {
			t.Fatal(err)
		}
		if err := chs.SendTest(ctx, ch.ID); err == nil {
			t.Fatal("a deleted channel still sends")
		}
	})
}

func TestObserveNeverBlocksAndBuffersAreBounded(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		fx := newFixture(t, db)
		e := New(db, hclog.NewNullLogger(), Options{Notifier: fx.rec, Now: fx.clk.now, ObserveQueue: 1})
		// Nothing drains the queue yet: the second observation is dropped, not waited for.
		e.Observe(Observation{ServerID: fx.server.ID, At: fx.clk.t, Values: map[string]float64{"cpu": 1}})
		e.Observe(Observation{ServerID: fx.server.ID, At: fx.clk.t, Values: map[string]float64{"cpu": 2}})
		if e.dropped.Load() != 1 {
			t.Fatalf("dropped %d, want 1", e.dropped.Load())
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		observe := func(from, to int) {
			t.Helper()
			for i := from; i < to; i++ {
				at := fx.clk.t.Add(time.Duration(i) * time.Minute)
				e.Observe(Observation{ServerID: fx.server.ID, At: at, Values: map[string]float64{"cpu": 3, "mem": 40}})
				deadline := time.Now().Add(5 * time.Second)
				for e.lastObserved(fx.server.ID) != at {
					if time.Now().After(deadline) {
						t.Fatal("observation not buffered")
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
		// With no metric rule, an evaluation learns that no value is needed:
		// only the time of the newest observation is kept.
		if err := e.Evaluate(context.Background(), nopLog{}); err != nil {
			t.Fatal(err)
		}
		observe(0, 3)
		if n, m := len(e.snapshot(fx.server.ID, "cpu")), len(e.snapshot(fx.server.ID, "mem")); n+m != 0 {
			t.Fatalf("%d cpu and %d memory values kept with no rule reading them", n, m)
		}
		// A CPU rule makes the engine keep CPU values, and only those, over the
		// longest window (at least a minute) plus a minute.
		cpuRule(t, e, 0)
		if err := e.Evaluate(context.Background(), nopLog{}); err != nil {
			t.Fatal(err)
		}
		observe(3, 9)
		if n := len(e.snapshot(fx.server.ID, "cpu")); n < 1 || n > 3 {
			t.Fatalf("%d CPU values kept over 6 minutes, want 1 to 3", n)
		}
		if n := len(e.snapshot(fx.server.ID, "mem")); n != 0 {
			t.Fatalf("%d memory values kept that no rule reads", n)
		}
		// A server that is gone loses its buffer at the next evaluation.
		e.mu.Lock()
		e.buffers[9999] = &serverBuf{last: fx.clk.t, series: map[string][]point{"cpu": {{at: fx.clk.t.UnixNano(), v: 1}}}}
		e.mu.Unlock()
		if err := e.Evaluate(context.Background(), nopLog{}); err != nil {
			t.Fatal(err)
		}
		if e.lastObserved(9999) != (time.Time{}) || len(e.snapshot(9999, "cpu")) != 0 {
			t.Fatal("the buffer of a deleted server was kept")
		}
	})
}

func TestTelegramHandler(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newFixture(t, db)
		r := cpuRule(t, fx.e, 0)
		for range 4 {
			fx.step(t, 99)
		}
		inc := fx.incidents(t)[0]
		h := fx.e.Handler()
		lines, err := h.Status(ctx, nil)
		if err != nil || len(lines) != 1 || !strings.Contains(lines[0].Name, "CPU on web-1") || lines[0].State != "critical" {
			t.Fatalf("status = %+v, %v", lines, err)
		}
		if err := h.Ack(ctx, "not-a-number", "@eve"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ack of a malformed id: %v", err)
		}
		if err := h.Silence(ctx, strconv.Itoa(inc.ID), time.Hour, "@bob"); err != nil {
			t.Fatal(err)
		}
		sils, err := fx.e.Silences(ctx)
		if err != nil || len(sils) != 1 {
			t.Fatalf("silences %v %v", sils, err)
		}
		s := sils[0]
		if s.RuleID != r.ID || s.ServerID != fx.server.ID || s.EndsAt.Sub(s.StartsAt) != time.Hour || s.CreatedBy != "telegram:@bob" {
			t.Fatalf("silence from the button: %+v", s)
		}
		if err := h.Ack(ctx, strconv.Itoa(inc.ID), "@bob"); err != nil {
			t.Fatal(err)
		}
		lines, _ = h.Status(ctx, nil)
		if !strings.Contains(lines[0].State, "acked by telegram:@bob") {
			t.Fatalf("status after ack: %+v", lines)
		}
	})
}

// A chat's /status lists only the incidents routed to its channels, and
// those of rules that notify every channel.
func TestStatusIsScopedToTheChatsChannels(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newFixture(t, db)
		channel := func(name string, chat int64) int {
			ch, err := db.Client.NotificationChannel.Create().SetName(name).SetKind(notificationchannel.KindTelegram).
				SetChatID(chat).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ch.ID
		}
		ops, dbas := channel("ops", -100), channel("dba", -200)
		for _, r := range []Rule{
			{Name: "CPU ops", ChannelIDs: []int{ops}},
			{Name: "CPU dba", ChannelIDs: []int{dbas}},
			{Name: "CPU all"},
		} {
			r.Kind, r.Enabled, r.Metric, r.Op, r.Warning, r.Critical, r.Window = KindMetric, true, MetricCPU, OpAbove, f(80), f(95), 3*time.Second
			if _, err := fx.e.SaveRule(ctx, r, audit.System("test")); err != nil {
				t.Fatal(err)
			}
		}
		for range 4 {
			fx.step(t, 99)
		}
		names := func(channels ...string) []string {
			lines, err := fx.e.Handler().Status(ctx, channels)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, l := range lines {
				_, name, _ := strings.Cut(l.Name, " ")
				out = append(out, name)
			}
			slices.Sort(out)
			return out
		}
		for _, tc := range []struct {
			channels []string
			want     []string
		}{
			{[]string{"ops"}, []string{"CPU all on web-1", "CPU ops on web-1"}},
			{[]string{"dba"}, []string{"CPU all on web-1", "CPU dba on web-1"}},
			{[]string{"dba", "ops"}, []string{"CPU all on web-1", "CPU dba on web-1", "CPU ops on web-1"}},
			{[]string{"gone"}, []string{"CPU all on web-1"}},
			{nil, []string{"CPU all on web-1"}},
		} {
			if got := names(tc.channels...); !slices.Equal(got, tc.want) {
				t.Errorf("status for %v = %v, want %v", tc.channels, got, tc.want)
			}
		}
	})
}

// An nginx rule fires while the server's newest revision failed to apply,
// with nginx's first line, and resolves once a newer revision is applied;
// an older failed revision does not count.
func TestNginxFailedRuleFollowsTheNewestRevision(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fx := newFixture(t, db)
		if _, err := fx.e.SaveRule(ctx, Rule{Name: "nginx", Kind: KindNginxFailed, Enabled: true, Severity: SeverityCritical}, audit.System("test")); err != nil {
			t.Fatal(err)
		}
		rev := func(n int64, status configrevision.Status, outcome, output string) {
			db.Client.ConfigRevision.Create().SetServerID(fx.server.ID).SetNumber(n).SetHash(fmt.Sprint(n)).SetFiles([]byte("[]")).
				SetStatus(status).SetOutcome(outcome).SetOutput(output).ExecX(ctx)
			db.Client.Server.UpdateOneID(fx.server.ID).SetDesiredRevision(n).ExecX(ctx)
		}
		rev(1, configrevision.StatusFailed, "reload_failed", "old failure")
		rev(2, configrevision.StatusApplied, "applied", "")
		fx.eval(t)
		if n := len(fx.incidents(t)); n != 0 {
			t.Fatalf("%d incidents while the newest revision is applied", n)
		}
		rev(3, configrevision.StatusFailed, "test_failed", "nginx: [emerg] unknown directive \"bogus\"\nnginx: configuration file test failed")
		fx.eval(t)
		list := fx.incidents(t)
		if len(list) != 1 || list[0].State != incident.StateFiring ||
			list[0].Summary != `The newest nginx configuration failed to apply: revision 3: test_failed: nginx: [emerg] unknown directive "bogus"` {
			t.Fatalf("incidents after a failed apply: %+v", list)
		}
		rev(4, configrevision.StatusApplied, "applied", "")
		fx.eval(t)
		if list := fx.incidents(t); len(list) != 1 || list[0].State != incident.StateResolved {
			t.Fatalf("incidents after a good apply: %+v", list)
		}
	})
}
