package notify

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

const (
	testToken  = "987654321:AAsecretsecretsecretsecretsecret_-XY"
	testSecret = "AAsecretsecretsecretsecretsecret_-XY"
	groupChat  = int64(-1001234567890)
	groupTopic = 7
)

// recorder collects deliveries and lets tests wait for them.
type recorder struct {
	mu      sync.Mutex
	got     []Delivery
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) RecordDelivery(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) all() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

func (r *recorder) count(o Outcome) int {
	n := 0
	for _, d := range r.all() {
		if d.Outcome == o {
			n++
		}
	}
	return n
}

// wait blocks until cond holds for the deliveries so far.
func (r *recorder) wait(t *testing.T, what string, cond func([]Delivery) bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		got := append([]Delivery(nil), r.got...)
		r.mu.Unlock()
		if cond(got) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; deliveries: %+v", what, got)
		}
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	fake *telegramtest.Server
	tg   *Telegram
	rec  *recorder
	logs *logBuffer
}

// newFixture starts a fake Bot API with the group chat (a forum, topic 7) and
// a private chat, and a Telegram with one destination for each.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{fake: telegramtest.New(t, testToken), rec: newRecorder(), logs: &logBuffer{}}
	f.fake.AddChat(groupChat, "supergroup", groupTopic)
	f.fake.AddChat(4242, "private", 0)
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Trace})
	opts.Recorder = f.rec
	if opts.RetryBase == 0 {
		opts.RetryBase = 20 * time.Millisecond
		opts.RetryMax = 100 * time.Millisecond
	}
	tg, err := NewTelegram(TelegramConfig{
		Token:  testToken,
		APIURL: f.fake.URL(),
		Destinations: []TelegramDestination{
			{Channel: "ops", ChatID: groupChat, TopicID: groupTopic, Silent: true},
			{Channel: "oncall", ChatID: 4242},
		},
	}, opts)
	if err != nil {
		t.Fatalf("NewTelegram: %v", err)
	}
	f.tg = tg
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tg.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		f.assertNoSecrets(t)
	})
	return f
}

func (f *fixture) channel(t *testing.T, name string) Channel {
	t.Helper()
	ch, ok := f.tg.Channel(name)
	if !ok {
		t.Fatalf("no channel %q", name)
	}
	return ch
}

// assertNoSecrets fails if the token or its secret part shows up in any
// delivery record or log line.
func (f *fixture) assertNoSecrets(t *testing.T) {
	t.Helper()
	for _, d := range f.rec.all() {
		if strings.Contains(d.Error, testSecret) {
			t.Errorf("delivery record leaks the token: %q", d.Error)
		}
	}
	if strings.Contains(f.logs.String(), testSecret) {
		t.Errorf("log leaks the token:\n%s", f.logs.String())
	}
}

func firing(id string, fields ...Field) Notification {
	return Notification{
		Key: MakeKey(id, KindFiring, 0), IncidentID: id, Kind: KindFiring,
		Severity: SeverityCritical, Title: "Disk almost full", Fields: fields,
	}
}

func delivered(n int) func([]Delivery) bool {
	return func(ds []Delivery) bool {
		c := 0
		for _, d := range ds {
			if d.Outcome == OutcomeDelivered {
				c++
			}
		}
		return c >= n
	}
}
