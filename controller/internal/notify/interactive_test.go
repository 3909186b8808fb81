package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

// fakeHandler records what chat asked the alerting core to do.
type fakeHandler struct {
	mu       sync.Mutex
	calls    []string
	status   []StatusLine
	fail     bool
	statusFn func() error
}

func (h *fakeHandler) Ack(_ context.Context, id, by string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf("ack %s by %s", id, by))
	if h.fail {
		return errors.New("no such incident")
	}
	return nil
}

func (h *fakeHandler) Silence(_ context.Context, id string, d time.Duration, by string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf("silence %s for %s by %s", id, d, by))
	if h.fail {
		return errors.New("no such incident")
	}
	return nil
}

func (h *fakeHandler) Status(_ context.Context, channels []string) ([]StatusLine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf("status %v", channels))
	return h.status, nil
}

func (h *fakeHandler) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// listen runs Listen until the test ends and waits until the bot polls.
func listen(t *testing.T, f *fixture, h Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tg.Listen(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	f.fake.Wait(t, "the bot to long-poll", func() bool { return f.fake.Polling() > 0 })
}

func TestTelegramButtons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		under      string // incident of the notification the button is under
		data       string
		from       telegramtest.User
		fail       bool
		old        bool   // under a message Telegram no longer shows the bot
		wantCall   string // "" for none
		wantAnswer string
	}{
		{name: "ack", under: "inc-7", data: "ack:inc-7", from: telegramtest.User{ID: 42, Username: "alice"},
			wantCall: "ack inc-7 by @alice", wantAnswer: "Incident inc-7 acknowledged."},
		{name: "silence", under: "inc-7", data: "sil1h:inc-7", from: telegramtest.User{ID: 43},
			wantCall: "silence inc-7 for 1h0m0s by id:43", wantAnswer: "Incident inc-7 silenced for 1 h."},
		{name: "handler fails", under: "inc-8", data: "ack:inc-8", from: telegramtest.User{ID: 42, Username: "alice"}, fail: true,
			wantCall: "ack inc-8 by @alice", wantAnswer: "Could not acknowledge incident inc-8."},
		{name: "unknown action", under: "inc-7", data: "delete:inc-7", from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "malformed incident", under: "inc-7", data: "ack:../../etc", from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "overlong incident", under: "inc-7", data: "ack:" + strings.Repeat("9", 60), from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "odd username", under: "inc-9", data: "ack:inc-9", from: telegramtest.User{ID: 44, Username: "<b>x</b>"},
			wantCall: "ack inc-9 by id:44", wantAnswer: "Incident inc-9 acknowledged."},
		// Clients can send any callback data with any message: data naming
		// another incident than the message's is forged.
		{name: "forged incident", under: "inc-7", data: "ack:inc-99", from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "forged suffix", under: "inc-7", data: "ack:7", from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "no notification", data: "ack:inc-7", from: telegramtest.User{ID: 42}, wantAnswer: "This button is not valid."},
		{name: "too old to check", under: "inc-7", old: true, data: "ack:inc-7", from: telegramtest.User{ID: 42},
			wantAnswer: "This notification is too old for its buttons; use a newer one or the web UI."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			h := &fakeHandler{fail: tc.fail}
			listen(t, f, h)
			if tc.under != "" {
				if err := f.channel(t, "ops").Send(context.Background(), firing(tc.under)); err != nil {
					t.Fatal(err)
				}
			}
			push := f.fake.PushCallback
			if tc.old {
				push = f.fake.PushOldCallback
			}
			id := push(groupChat, "supergroup", tc.from, tc.data)
			f.fake.Wait(t, "the callback answer", func() bool { return len(f.fake.Answers()) > 0 })

			answers := f.fake.Answers()
			if len(answers) != 1 || answers[0].QueryID != id || answers[0].Text != tc.wantAnswer {
				t.Errorf("answers = %+v, want one answer to %s saying %q", answers, id, tc.wantAnswer)
			}
			calls := h.got()
			if tc.wantCall == "" && len(calls) != 0 {
				t.Errorf("handler called: %v", calls)
			}
			if tc.wantCall != "" && (len(calls) != 1 || calls[0] != tc.wantCall) {
				t.Errorf("handler calls = %v, want [%s]", calls, tc.wantCall)
			}
		})
	}
}

func TestTelegramIgnoresUnknownChats(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{ChatInterval: 10 * time.Millisecond})
	h := &fakeHandler{status: []StatusLine{{Name: "web-<1>", State: "firing", Detail: "disk & more"}}}
	listen(t, f, h)

	const stranger = int64(-999)
	f.fake.PushCallback(stranger, "group", telegramtest.User{ID: 66, Username: "mallory"}, "ack:inc-secret-data")
	f.fake.PushMessage(stranger, "group", 0, telegramtest.User{ID: 66}, "/status")
	f.fake.PushMessage(4242, "private", 0, telegramtest.User{ID: 42}, "/status@some_other_bot")
	f.fake.PushMessage(4242, "private", 0, telegramtest.User{ID: 42}, "hello")
	// Updates are handled in order, so once this one is answered the
	// others have been seen.
	f.fake.PushMessage(groupChat, "supergroup", groupTopic, telegramtest.User{ID: 42}, "/status@"+telegramtest.BotUsername)
	f.rec.wait(t, "the status reply", delivered(1))

	if calls := h.got(); len(calls) != 1 || calls[0] != "status [ops]" {
		t.Errorf("handler calls = %v, want only the allowed /status, for the group's channel", calls)
	}
	if a := f.fake.Answers(); len(a) != 0 {
		t.Errorf("callback from an unknown chat was answered: %+v", a)
	}
	msgs := f.fake.Messages()
	if len(msgs) != 1 || msgs[0].ChatID != groupChat || msgs[0].ThreadID != groupTopic || !strings.Contains(msgs[0].Plain, "web-<1>: firing — disk & more") {
		t.Fatalf("messages = %+v, want one status reply in the group", msgs)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "unconfigured chat") || !strings.Contains(logs, "chat_id=-999") {
		t.Errorf("ignored updates not logged:\n%s", logs)
	}
	if strings.Contains(logs, "inc-secret-data") || strings.Contains(logs, "mallory") {
		t.Errorf("log repeats the contents of an ignored update:\n%s", logs)
	}
}

func TestTelegramListenStopsOnRejectedToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.fake.AllowViolations()
	tg, err := NewTelegram(TelegramConfig{Token: "987654321:AAsecretsecretsecretsecretsecret_-ZZ", APIURL: f.fake.URL(),
		Destinations: []TelegramDestination{{Channel: "x", ChatID: 4242}}}, Options{Logger: f.tg.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close(context.Background()) })
	err = tg.Listen(context.Background(), &fakeHandler{})
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || strings.Contains(err.Error(), "secret_-ZZ") {
		t.Fatalf("Listen = %v, want an unauthorized error without the token", err)
	}
}

func TestTelegramListenRetriesThroughOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.fake.SetBadGateway(true)
	h := &fakeHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tg.Listen(ctx, h) }()
	f.fake.Wait(t, "failed getMe attempts", func() bool { return len(f.fake.RequestsFor("getMe")) >= 2 })
	if err := f.tg.Listen(ctx, h); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second Listen = %v, want refusal", err)
	}
	f.fake.SetBadGateway(false)
	f.fake.Wait(t, "the bot to long-poll", func() bool { return f.fake.Polling() > 0 })
	if err := f.channel(t, "ops").Send(context.Background(), firing("inc-1")); err != nil {
		t.Fatal(err)
	}
	f.fake.PushCallback(groupChat, "supergroup", telegramtest.User{ID: 1, Username: "bob"}, "ack:inc-1")
	f.fake.Wait(t, "the answer", func() bool { return len(f.fake.Answers()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if !strings.Contains(f.logs.String(), "getMe failed") {
		t.Errorf("outage not logged:\n%s", f.logs.String())
	}
	// assertNoSecrets at cleanup: the 502 pages carried the token.
}

func TestIsCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want bool
	}{
		{"/status", true},
		{"/status now", true},
		{"/status@gatehouse_bot", true},
		{"/status@GATEHOUSE_BOT", true},
		{"/status@other_bot", false},
		{"/statusx", false},
		{"status", false},
		{" /status", true},
		{"/ack", false},
	}
	for _, tc := range tests {
		if got := isCommand(tc.text, "status", "gatehouse_bot"); got != tc.want {
			t.Errorf("isCommand(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
