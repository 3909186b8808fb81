package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// chatRequest is one request a chat service on loopback accepted.
type chatRequest struct {
	body    []byte
	content string // Discord's content or Slack's text
	format  string // which shape the body had
}

// TestWebhookFormatChannelDeliversAndRecords stores a webhook channel with
// the discord format, delivers a test and an incident notification through
// it to a Discord stand-in on loopback that checks every request, then
// switches it to slack; formats are refused on other kinds and unknown ones
// are refused with the field named.
func TestWebhookFormatChannelDeliversAndRecords(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const secret = "a-signing-secret-of-some-length"
		got := make(chan chatRequest, 8)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPost || r.URL.Path != "/api/webhooks/1/tok" || r.Header.Get("Content-Type") != "application/json" ||
				!notify.VerifySignature(secret, body, r.Header.Get(notify.SignatureHeader)) || r.Header.Get(notify.DeliveryHeader) == "" {
				t.Errorf("bad request %s %s %v", r.Method, r.URL.Path, r.Header)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			var m struct {
				Content         *string `json:"content"`
				Text            *string `json:"text"`
				AllowedMentions *struct {
					Parse []string `json:"parse"`
				} `json:"allowed_mentions"`
			}
			if err := dec.Decode(&m); err != nil {
				t.Errorf("body %s: %v", body, err)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			switch {
			case m.Content != nil && m.Text == nil && m.AllowedMentions != nil && m.AllowedMentions.Parse != nil && len(m.AllowedMentions.Parse) == 0:
				got <- chatRequest{body: body, content: *m.Content, format: "discord"}
				w.WriteHeader(http.StatusNoContent)
			case m.Text != nil && m.Content == nil && m.AllowedMentions == nil:
				got <- chatRequest{body: body, content: *m.Text, format: "slack"}
				io.WriteString(w, "ok")
			default:
				t.Errorf("neither a Discord nor a Slack body: %s", body)
				w.WriteHeader(http.StatusBadRequest)
			}
		}))
		defer recv.Close()
		receive := func() chatRequest {
			t.Helper()
			select {
			case r := <-got:
				return r
			case <-time.After(10 * time.Second):
				t.Fatal("the chat service received nothing")
				return chatRequest{}
			}
		}

		chs := startChannels(t, db, hclog.NewNullLogger())
		by := audit.System("t")

		good := ChannelInput{Name: "discord", Kind: "webhook", Enabled: true, URL: recv.URL + "/api/webhooks/1/tok", Secret: secret, WebhookFormat: "discord"}
		for name, in := range map[string]ChannelInput{
			"unknown format":     func() ChannelInput { in := good; in.WebhookFormat = "teams"; return in }(),
			"format on telegram": {Name: "tg", Kind: "telegram", Enabled: true, Secret: "123456:" + strings.Repeat("A", 35), ChatID: 42, WebhookFormat: "slack"},
			"format on email": {Name: "mail", Kind: "email", Enabled: true, SMTPHost: "127.0.0.1", SMTPPort: 25, SMTPSecurity: "none",
				MailFrom: "alerts@example.test", MailTo: []string{"ops@example.test"}, WebhookFormat: "gatehouse"},
		} {
			var fe FieldErrors
			if _, err := chs.SaveChannel(ctx, in, by); !errors.As(err, &fe) || fe["webhook_format"] == "" || len(fe) != 1 {
				t.Errorf("%s: %v", name, err)
			} else if name != "unknown format" && !strings.Contains(fe["webhook_format"], "applies only to webhooks") {
				t.Errorf("%s: message %q", name, fe["webhook_format"])
			}
		}
		if n, _ := db.Client.NotificationChannel.Query().Count(ctx); n != 0 {
			t.Fatalf("%d channels stored from refused input", n)
		}

		ch, err := chs.SaveChannel(ctx, good, by)
		if err != nil {
			t.Fatal(err)
		}
		if stored, _ := db.Client.NotificationChannel.Get(ctx, ch.ID); stored.WebhookFormat != "discord" {
			t.Fatalf("stored format %q", stored.WebhookFormat)
		}
		if err := chs.SendTest(ctx, ch.ID); err != nil {
			t.Fatal(err)
		}
		if r := receive(); r.format != "discord" || !strings.HasPrefix(r.content, "🧪 TEST info: Test notification from Gatehouse\nChannel: discord\n") {
			t.Fatalf("test message %s", r.body)
		}
		chs.Notify(notify.Notification{Key: "7:firing", IncidentID: "7", Kind: notify.KindFiring, Severity: notify.SeverityCritical,
			Title: "@everyone **CPU** on <@1>", Fields: []notify.Field{{Name: "Server", Value: "web ||x||"}}}, nil)
		r := receive()
		if r.format != "discord" || !strings.HasPrefix(r.content, "🔴 FIRING critical: @\u2060everyone \\*\\*CPU\\*\\* on \\<@\u20601\\>\nServer: web \\|\\|x\\|\\|\n") {
			t.Fatalf("incident message %s", r.body)
		}

		// The same channel as a Slack-compatible webhook; "gatehouse" is
		// stored as the default.
		edit := good
		edit.ID, edit.Secret, edit.WebhookFormat = ch.ID, "", "slack"
		if _, err := chs.SaveChannel(ctx, edit, by); err != nil {
			t.Fatal(err)
		}
		chs.Notify(notify.Notification{Key: "8:firing", IncidentID: "8", Kind: notify.KindFiring, Severity: notify.SeverityWarning,
			Title: "<!channel> & <https://evil.example|login>"}, []int{ch.ID})
		if r := receive(); r.format != "slack" || !strings.HasPrefix(r.content, "🟠 FIRING warning: &lt;!channel&gt; &amp; &lt;https://evil.example|login&gt;\n\nTime: ") {
			t.Fatalf("slack message %s", r.body)
		}
		edit.WebhookFormat = "gatehouse"
		if _, err := chs.SaveChannel(ctx, edit, by); err != nil {
			t.Fatal(err)
		}
		if stored, _ := db.Client.NotificationChannel.Get(ctx, ch.ID); stored.WebhookFormat != "" {
			t.Fatalf("the default format is stored as %q", stored.WebhookFormat)
		}

		deadline := time.Now().Add(10 * time.Second)
		for {
			list, err := chs.Deliveries(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) == 3 {
				for _, d := range list {
					if d.Outcome != "delivered" || d.ChannelID != ch.ID {
						t.Fatalf("delivery record %+v", d)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d delivery records, want 3", len(list))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
