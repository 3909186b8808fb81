package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hook is a webhook receiver on loopback that answers with scripted statuses.
type hook struct {
	mu      sync.Mutex
	script  []int // statuses to answer, then 204
	hangs   int   // the first hangs requests block until the client gives up
	bodies  [][]byte
	headers []http.Header
	srv     *httptest.Server
}

func newHook(t *testing.T, script ...int) *hook {
	h := &hook{script: script}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.headers = append(h.headers, r.Header.Clone())
		hang := h.hangs > 0
		if hang {
			h.hangs--
		}
		status := http.StatusNoContent
		if len(h.script) > 0 {
			status, h.script = h.script[0], h.script[1:]
		}
		h.mu.Unlock()
		if hang {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) received() ([][]byte, []http.Header) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...), append([]http.Header(nil), h.headers...)
}

func newTestWebhook(t *testing.T, url, secret string, opts Options) (*Webhook, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.Recorder = rec
	if opts.RetryBase == 0 {
		opts.RetryBase = 10 * time.Millisecond
		opts.RetryMax = 50 * time.Millisecond
	}
	w, err := NewWebhook(WebhookConfig{Name: "ops-hook", URL: url, Secret: secret}, opts)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w, rec
}

const hookSecret = "0123456789abcdef-hook-secret"

func TestWebhookPayloadAndSignature(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	w, _ := newTestWebhook(t, h.srv.URL+"/hooks/gatehouse", hookSecret, Options{})
	n := firing("inc-1", Field{Name: "Server", Value: "<b>web-1</b> & {{ x }}"})
	n.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := w.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	bodies, headers := h.received()
	if len(bodies) != 1 {
		t.Fatalf("requests = %d, want 1", len(bodies))
	}
	body, hdr := bodies[0], headers[0]
	if !VerifySignature(hookSecret, body, hdr.Get(SignatureHeader)) {
		t.Fatalf("signature %q does not verify", hdr.Get(SignatureHeader))
	}
	if VerifySignature("another-secret-of-16+", body, hdr.Get(SignatureHeader)) {
		t.Fatal("signature verifies under the wrong secret")
	}
	tampered := []byte(strings.Replace(string(body), "critical", "info", 1))
	if VerifySignature(hookSecret, tampered, hdr.Get(SignatureHeader)) {
		t.Fatal("signature verifies a tampered body")
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get(DeliveryHeader) != "inc-1:firing" || hdr.Get(EventHeader) != "firing" {
		t.Errorf("headers = %v", hdr)
	}
	want := `{"version":1,"channel":"ops-hook","key":"inc-1:firing","incident_id":"inc-1","kind":"firing",` +
		`"severity":"critical","title":"Disk almost full","fields":[{"name":"Server","value":"\u003cb\u003eweb-1\u003c/b\u003e \u0026 {{ x }}"}],` +
		`"occurred_at":"2025-01-02T03:04:05Z"}`
	if string(body) != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Fields[0].Value != "<b>web-1</b> & {{ x }}" {
		t.Errorf("decoded value = %q (%v), want it verbatim", p.Fields[0].Value, err)
	}
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	w, _ := newTestWebhook(t, h.srv.URL, "", Options{})
	if err := SendTest(context.Background(), w); err != nil {
		t.Fatalf("SendTest: %v", err)
	}
	bodies, headers := h.received()
	if len(bodies) != 1 || headers[0].Get(SignatureHeader) != "" {
		t.Fatalf("got %d requests, signature %q; want one unsigned", len(bodies), headers[0].Get(SignatureHeader))
	}
	var p WebhookPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil || p.Kind != KindTest || p.IncidentID != "" {
		t.Fatalf("payload = %+v (%v)", p, err)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   []int
		hangs    int
		wantReqs int
		wantErr  string // "" when delivered
		outcomes []Outcome
	}{
		{name: "5xx then success", script: []int{500, 503}, wantReqs: 3,
			outcomes: []Outcome{OutcomeRetrying, OutcomeRetrying, OutcomeDelivered}},
		{name: "timeout then success", hangs: 1, wantReqs: 2,
			outcomes: []Outcome{OutcomeRetrying, OutcomeDelivered}},
		{name: "client error is final", script: []int{400}, wantReqs: 1, wantErr: "400 Bad Request",
			outcomes: []Outcome{OutcomeFailed}},
		{name: "redirect is not followed", script: []int{302}, wantReqs: 1, wantErr: "302 Found",
			outcomes: []Outcome{OutcomeFailed}},
		{name: "attempts are bounded", script: []int{500, 500, 500, 500}, wantReqs: 3, wantErr: "500 Internal Server Error",
			outcomes: []Outcome{OutcomeRetrying, OutcomeRetrying, OutcomeFailed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHook(t, tc.script...)
			h.hangs = tc.hangs
			w, rec := newTestWebhook(t, h.srv.URL+"/secret-path-token", hookSecret, Options{MaxAttempts: 3, Timeout: 200 * time.Millisecond})
			err := w.Send(context.Background(), firing("inc-2"))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			if bodies, _ := h.received(); len(bodies) != tc.wantReqs {
				t.Errorf("requests = %d, want %d", len(bodies), tc.wantReqs)
			}
			ds := rec.all()
			if len(ds) != len(tc.outcomes) {
				t.Fatalf("deliveries = %+v, want outcomes %v", ds, tc.outcomes)
			}
			for i, d := range ds {
				if d.Outcome != tc.outcomes[i] || d.Attempt != i+1 || d.Channel != "ops-hook" {
					t.Errorf("delivery %d = %+v, want %s attempt %d", i, d, tc.outcomes[i], i+1)
				}
				if strings.Contains(d.Error, "secret-path-token") {
					t.Errorf("delivery error repeats the webhook URL: %q", d.Error)
				}
			}
		})
	}
}

func TestWebhookEnqueueNeverBlocks(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	h.hangs = 1000
	w, rec := newTestWebhook(t, h.srv.URL, "", Options{QueueSize: 1, MaxAttempts: 1, Timeout: 100 * time.Millisecond})
	full := 0
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		if err := w.Enqueue(firing(id)); errors.Is(err, ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full == 0 || w.Dropped() != uint64(full) || rec.count(OutcomeDropped) != full {
		t.Fatalf("full = %d, Dropped() = %d, dropped records = %d", full, w.Dropped(), rec.count(OutcomeDropped))
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	dest := []TelegramDestination{{Channel: "ops", ChatID: -100}}
	tests := []struct {
		name    string
		err     error
		wantErr string // "" for valid
	}{
		{name: "telegram ok", err: TelegramConfig{Token: testToken, Destinations: dest}.Validate()},
		{name: "telegram bad token", err: TelegramConfig{Token: "abc", Destinations: dest}.Validate(), wantErr: "token:"},
		{name: "telegram no chats", err: TelegramConfig{Token: testToken}.Validate(), wantErr: "destinations:"},
		{name: "telegram zero chat", err: TelegramConfig{Token: testToken, Destinations: []TelegramDestination{{Channel: "x"}}}.Validate(), wantErr: "chat_id"},
		{name: "telegram duplicate name", err: TelegramConfig{Token: testToken, Destinations: append(dest, dest[0])}.Validate(), wantErr: "used twice"},
		{name: "telegram bad name", err: TelegramConfig{Token: testToken, Destinations: []TelegramDestination{{Channel: "<x>", ChatID: 1}}}.Validate(), wantErr: "channel:"},
		{name: "telegram bad topic", err: TelegramConfig{Token: testToken, Destinations: []TelegramDestination{{Channel: "x", ChatID: 1, TopicID: -1}}}.Validate(), wantErr: "topic_id"},
		{name: "telegram api url", err: TelegramConfig{Token: testToken, APIURL: "ftp://x", Destinations: dest}.Validate(), wantErr: "api_url"},
		{name: "webhook ok", err: WebhookConfig{Name: "h", URL: "https://example.test/x"}.Validate()},
		{name: "webhook scheme", err: WebhookConfig{Name: "h", URL: "file:///etc/passwd"}.Validate(), wantErr: "url: scheme"},
		{name: "webhook credentials", err: WebhookConfig{Name: "h", URL: "https://u:p@example.test/"}.Validate(), wantErr: "credentials"},
		{name: "webhook short secret", err: WebhookConfig{Name: "h", URL: "https://example.test/", Secret: "short"}.Validate(), wantErr: "secret:"},
		{name: "webhook gatehouse format", err: WebhookConfig{Name: "h", URL: "https://example.test/", Format: WebhookFormatGatehouse}.Validate()},
		{name: "webhook slack format", err: WebhookConfig{Name: "h", URL: "https://example.test/", Format: WebhookFormatSlack}.Validate()},
		{name: "webhook discord format", err: WebhookConfig{Name: "h", URL: "https://example.test/", Format: WebhookFormatDiscord}.Validate()},
		{name: "webhook unknown format", err: WebhookConfig{Name: "h", URL: "https://example.test/", Format: "Slack"}.Validate(), wantErr: "format:"},
		{name: "webhook hostile format", err: WebhookConfig{Name: "h", URL: "https://example.test/", Format: "slack\nurl: x"}.Validate(), wantErr: `format: "slack\nurl: x"`},
	}
	for _, tc := range tests {
		if tc.wantErr == "" && tc.err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, tc.err)
		}
		if tc.wantErr != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.wantErr)
		}
		if tc.err != nil && strings.Contains(tc.err.Error(), testSecret) {
			t.Errorf("%s: error repeats the token", tc.name)
		}
	}
}
