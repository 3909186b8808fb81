package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

func TestTelegramSendsOneMessageToChatAndTopic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	n := firing("inc-1", Field{Name: "Server", Value: "web-1"}, Field{Name: "Usage", Value: "97%"})
	if err := f.channel(t, "ops").Enqueue(n); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	f.rec.wait(t, "delivery", delivered(1))

	reqs := f.fake.RequestsFor("sendMessage")
	if len(reqs) != 1 {
		t.Fatalf("sendMessage requests = %d, want exactly 1: %+v", len(reqs), reqs)
	}
	msgs := f.fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("messages = %d, want 1", len(msgs))
	}
	m := msgs[0]
	if m.ChatID != groupChat || m.ThreadID != groupTopic || !m.Silent {
		t.Errorf("message went to chat %d topic %d silent %v; want chat %d topic %d silent", m.ChatID, m.ThreadID, m.Silent, groupChat, groupTopic)
	}
	for _, want := range []string{"FIRING", "Disk almost full", "Server: web-1", "Usage: 97%", "incident inc-1"} {
		if !strings.Contains(m.Plain, want) {
			t.Errorf("message text lacks %q:\n%s", want, m.Plain)
		}
	}
	if len(m.Keyboard) != 1 || len(m.Keyboard[0]) != 2 ||
		m.Keyboard[0][0].Text != "Ack" || m.Keyboard[0][0].CallbackData != "ack:inc-1" ||
		m.Keyboard[0][1].Text != "Silence 1 h" || m.Keyboard[0][1].CallbackData != "sil1h:inc-1" {
		t.Errorf("keyboard = %+v", m.Keyboard)
	}
	if reqs[0].Params["link_preview_options"] == "" {
		t.Error("link previews are not disabled")
	}
	ds := f.rec.all()
	if len(ds) != 1 || ds[0].Channel != "ops" || ds[0].Key != "inc-1:firing" || ds[0].Attempt != 1 || ds[0].Error != "" {
		t.Errorf("deliveries = %+v", ds)
	}
}

func TestTelegramResolvedHasNoButtons(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	n := Notification{Key: MakeKey("inc-2", KindResolved, 0), IncidentID: "inc-2", Kind: KindResolved, Severity: SeverityWarning, Title: "Disk fine again"}
	if err := f.channel(t, "oncall").Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := f.fake.Messages()
	if len(msgs) != 1 || msgs[0].Keyboard != nil || msgs[0].ChatID != 4242 || msgs[0].ThreadID != 0 || msgs[0].Silent {
		t.Fatalf("messages = %+v", msgs)
	}
	if !strings.Contains(msgs[0].Plain, "RESOLVED") {
		t.Errorf("text = %q", msgs[0].Plain)
	}
}

func TestTelegramHostileValuesRenderLiterally(t *testing.T) {
	t.Parallel()
	hostile := []string{"<b>", "&", "{{ }}", "web-1</b><i>", "&amp;", `"><script>x</script>`, "a\x00b"}
	f := newFixture(t, Options{ChatInterval: 10 * time.Millisecond})
	fields := make([]Field, 0, len(hostile))
	for _, h := range hostile {
		fields = append(fields, Field{Name: "Host " + h, Value: h})
	}
	n := firing("inc-3", fields...)
	n.Title = "<b>{{ .Title }}</b> & co"
	if err := f.channel(t, "oncall").Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := f.fake.Messages()[0]
	for _, h := range hostile[:6] {
		if !strings.Contains(m.Plain, "Host "+h+": "+h) {
			t.Errorf("value %q not shown literally:\n%s", h, m.Plain)
		}
	}
	if !strings.Contains(m.Plain, "<b>{{ .Title }}</b> & co") {
		t.Errorf("title not shown literally:\n%s", m.Plain)
	}
	if strings.Contains(m.Plain, "\x00") || !strings.Contains(m.Plain, "a\uFFFDb") {
		t.Errorf("control character not replaced:\n%q", m.Plain)
	}
}

func TestTelegramPacesOneChat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ch := f.channel(t, "oncall")
	for i, id := range []string{"inc-a", "inc-b"} {
		if err := ch.Enqueue(firing(id)); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	f.rec.wait(t, "two deliveries", delivered(2))
	msgs := f.fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("messages = %d, want 2", len(msgs))
	}
	if !strings.Contains(msgs[0].Plain, "inc-a") || !strings.Contains(msgs[1].Plain, "inc-b") {
		t.Errorf("messages out of order: %q, %q", msgs[0].Plain, msgs[1].Plain)
	}
	if gap := msgs[1].Time.Sub(msgs[0].Time); gap < 900*time.Millisecond {
		t.Errorf("second message arrived %v after the first; want at least 1s", gap)
	}
}

func TestTelegramHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.fake.RateLimit(2)
	if err := f.channel(t, "oncall").Enqueue(firing("inc-4")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	f.rec.wait(t, "delivery after the rate limit", delivered(1))

	reqs := f.fake.RequestsFor("sendMessage")
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
		// The fake answers 429 again to any retry before retry_after has
		// passed, so exactly two requests proves the wait was honoured.
		t.Fatalf("sendMessage statuses = %v, want [429 200]", statuses(reqs))
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 1900*time.Millisecond {
		t.Errorf("retried %v after the 429; want at least retry_after=2s", gap)
	}
	if n := len(f.fake.Messages()); n != 1 {
		t.Errorf("messages = %d, want exactly 1", n)
	}
	ds := f.rec.all()
	if len(ds) != 2 || ds[0].Outcome != OutcomeRetrying || ds[0].RetryIn != 2*time.Second ||
		ds[1].Outcome != OutcomeDelivered || ds[1].Attempt != 2 {
		t.Errorf("deliveries = %+v", ds)
	}
}

func statuses(reqs []telegramtest.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

func TestTelegramOutageThenRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		down, up   func(*telegramtest.Server)
		wantStatus int // status recorded by the fake for failed attempts; 0 when it never saw them
	}{
		{name: "connection refused", down: (*telegramtest.Server).Stop, up: (*telegramtest.Server).Start},
		{name: "bad gateway",
			down:       func(s *telegramtest.Server) { s.SetBadGateway(true) },
			up:         func(s *telegramtest.Server) { s.SetBadGateway(false) },
			wantStatus: 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{QueueSize: 2, MaxAttempts: 1000, ChatInterval: 10 * time.Millisecond})
			ch := f.channel(t, "oncall")
			tc.down(f.fake)
			var accepted []string
			full := 0
			// Far more than the queue holds: Enqueue must refuse, not block.
			for i := 0; i < 20; i++ {
				id := "inc-o" + string(rune('a'+i))
				switch err := ch.Enqueue(firing(id)); {
				case err == nil:
					accepted = append(accepted, id)
				case errors.Is(err, ErrQueueFull):
					full++
				default:
					t.Fatalf("Enqueue: %v", err)
				}
			}
			if full == 0 || f.tg.Dropped() != uint64(full) {
				t.Fatalf("queue full %d times, Dropped() = %d; want overflow to be counted", full, f.tg.Dropped())
			}
			if got := f.rec.count(OutcomeDropped); got != full {
				t.Errorf("dropped records = %d, want %d", got, full)
			}
			f.rec.wait(t, "failed attempts during the outage", func(ds []Delivery) bool {
				n := 0
				for _, d := range ds {
					if d.Outcome == OutcomeRetrying {
						n++
					}
				}
				return n >= 3
			})
			tc.up(f.fake)
			f.rec.wait(t, "deliveries after recovery", delivered(len(accepted)))

			msgs := f.fake.Messages()
			if len(msgs) != len(accepted) {
				t.Fatalf("messages = %d, want %d (each accepted notification once)", len(msgs), len(accepted))
			}
			for i, id := range accepted {
				if !strings.Contains(msgs[i].Plain, "incident "+id) {
					t.Errorf("message %d = %q, want incident %s", i, msgs[i].Plain, id)
				}
			}
			for _, r := range f.fake.RequestsFor("sendMessage") {
				if r.Status != 200 && r.Status != tc.wantStatus {
					t.Errorf("unexpected status %d: %s", r.Status, r.Problem)
				}
			}
		})
	}
}

func TestTelegramPermanentFailuresAndSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		token   string
		chat    int64
		setup   func(*telegramtest.Server)
		wantErr string
	}{
		{name: "chat not found", chat: 777, wantErr: "chat not found"},
		{name: "wrong token", token: "987654321:AAsecretsecretsecretsecretsecret_-ZZ", wantErr: "unauthorized",
			setup: (*telegramtest.Server).AllowViolations},
		{name: "bad gateway", wantErr: "502", setup: func(s *telegramtest.Server) { s.SetBadGateway(true) }},
		{name: "connection refused", wantErr: "connection refused", setup: (*telegramtest.Server).Stop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			if tc.setup != nil {
				tc.setup(f.fake)
			}
			token, chat := testToken, int64(4242)
			if tc.token != "" {
				token = tc.token
			}
			if tc.chat != 0 {
				chat = tc.chat
			}
			tg, err := NewTelegram(TelegramConfig{Token: token, APIURL: f.fake.URL(),
				Destinations: []TelegramDestination{{Channel: "x", ChatID: chat}}},
				Options{Logger: f.tg.log, Recorder: f.rec, MaxAttempts: 2, RetryBase: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tg.Close(context.Background()) })
			err = SendTest(context.Background(), mustChannel(tg, "x"))
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
				t.Fatalf("SendTest error = %v, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "secret_-ZZ") {
				t.Fatalf("error leaks the token: %v", err)
			}
			ds := f.rec.all()
			if len(ds) == 0 || ds[len(ds)-1].Outcome != OutcomeFailed || ds[len(ds)-1].Error == "" {
				t.Fatalf("deliveries = %+v, want a final failure with its reason", ds)
			}
			for _, d := range ds {
				if strings.Contains(d.Error, "secret_-ZZ") {
					t.Errorf("record leaks the token: %q", d.Error)
				}
			}
			// assertNoSecrets checks records and logs for the main token at cleanup.
		})
	}
}

func mustChannel(tg *Telegram, name string) Channel {
	ch, ok := tg.Channel(name)
	if !ok {
		panic("no channel " + name)
	}
	return ch
}

func TestTelegramDuplicateKeyDeliveredOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ch := f.channel(t, "oncall")
	if err := ch.Enqueue(firing("inc-5")); err != nil {
		t.Fatalf("first Enqueue: %v", err)
	}
	if err := ch.Enqueue(firing("inc-5")); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Enqueue = %v, want ErrDuplicate", err)
	}
	// The same key on another destination is a different delivery.
	if err := f.channel(t, "ops").Enqueue(firing("inc-5")); err != nil {
		t.Fatalf("Enqueue on other channel: %v", err)
	}
	f.rec.wait(t, "deliveries", delivered(2))
	if n := len(f.fake.Messages()); n != 2 {
		t.Fatalf("messages = %d, want 2", n)
	}
}

func TestTelegramCloseDrainsQueue(t *testing.T) {
	t.Parallel()
	fake := telegramtest.New(t, testToken)
	fake.AddChat(4242, "private", 0)
	rec := newRecorder()
	tg, err := NewTelegram(TelegramConfig{Token: testToken, APIURL: fake.URL(),
		Destinations: []TelegramDestination{{Channel: "x", ChatID: 4242}}},
		Options{Recorder: rec, ChatInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := mustChannel(tg, "x")
	for _, id := range []string{"d1", "d2", "d3"} {
		if err := ch.Enqueue(firing(id)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tg.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(fake.Messages()); n != 3 {
		t.Fatalf("messages after Close = %d, want 3", n)
	}
	if err := ch.Enqueue(firing("d4")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close = %v, want ErrClosed", err)
	}
}

func TestTelegramCloseGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	fake := telegramtest.New(t, testToken)
	fake.AddChat(4242, "private", 0)
	fake.Stop()
	rec := newRecorder()
	tg, err := NewTelegram(TelegramConfig{Token: testToken, APIURL: fake.URL(),
		Destinations: []TelegramDestination{{Channel: "x", ChatID: 4242}}},
		Options{Recorder: rec, MaxAttempts: 1000, RetryBase: 10 * time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := mustChannel(tg, "x")
	for _, id := range []string{"e1", "e2"} {
		if err := ch.Enqueue(firing(id)); err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, "a failed attempt", func(ds []Delivery) bool { return len(ds) > 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	final := map[string]Outcome{}
	for _, d := range rec.all() {
		final[d.Key] = d.Outcome
	}
	for _, key := range []string{"e1:firing", "e2:firing"} {
		if o := final[key]; o != OutcomeDropped && o != OutcomeFailed {
			t.Errorf("%s ended as %q, want dropped or failed", key, o)
		}
	}
}

func TestSendTestTelegram(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	if err := SendTest(context.Background(), f.channel(t, "ops")); err != nil {
		t.Fatalf("SendTest: %v", err)
	}
	msgs := f.fake.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Plain, "TEST") || !strings.Contains(msgs[0].Plain, "Channel: ops") || msgs[0].Keyboard != nil {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestEnqueueRejectsInvalidNotification(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	n := firing("inc 1; rm -rf /")
	err := f.channel(t, "ops").Enqueue(n)
	if err == nil || !strings.Contains(err.Error(), "incident_id") {
		t.Fatalf("Enqueue = %v, want an incident_id error", err)
	}
	if len(f.fake.Requests()) != 0 {
		t.Fatal("invalid notification reached Telegram")
	}
}
