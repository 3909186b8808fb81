package alerts

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/internal/testutil/smtptest"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// TestEmailChannelDeliversAndRecords stores an email channel for a relay on
// loopback that wants a sign-in, checks the password is sealed at rest and
// kept across an edit, and delivers through it with the attempts recorded.
func TestEmailChannelDeliversAndRecords(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const password = "relay password 42"
		srv := smtptest.New(t, smtptest.Options{User: "gatehouse", Pass: password, ClearAuth: true})
		var logs syncbuf.Buffer
		chs := startChannels(t, db, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace}))
		by := audit.System("t")

		good := ChannelInput{Name: "ops-mail", Kind: "email", Enabled: true, SMTPHost: "127.0.0.1", SMTPPort: srv.Port(),
			SMTPSecurity: "none", SMTPUsername: "gatehouse", Secret: password, MailFrom: "Gatehouse <alerts@example.test>",
			MailTo: []string{"ops@example.test", "oncall@example.test"}}

		// Hostile or wrong values are refused with the field they belong to,
		// and nothing is stored.
		for field, edit := range map[string]func(*ChannelInput){
			"smtp_host":     func(in *ChannelInput) { in.SMTPHost = "smtp://mail.example.test" },
			"smtp_port":     func(in *ChannelInput) { in.SMTPPort = 70000 },
			"smtp_security": func(in *ChannelInput) { in.SMTPSecurity = "ssl;rm" },
			"mail_from":     func(in *ChannelInput) { in.MailFrom = "alerts@example.test\r\nBcc: x@evil.test" },
			"mail_to":       func(in *ChannelInput) { in.MailTo = []string{"ops@example.test", "a b@c"} },
			"secret":        func(in *ChannelInput) { in.Secret = "" }, // a user needs a password
			"url":           func(in *ChannelInput) { in.URL = "https://example.test/hook" },
			"chat_id":       func(in *ChannelInput) { in.ChatID = 42 },
		} {
			in := good
			edit(&in)
			var fe FieldErrors
			if _, err := chs.SaveChannel(ctx, in, by); !errors.As(err, &fe) || fe[field] == "" {
				t.Errorf("%s: %v", field, err)
			}
		}
		// Plain SMTP goes only to this host.
		in := good
		in.SMTPHost = "192.0.2.25"
		var fe FieldErrors
		if _, err := chs.SaveChannel(ctx, in, by); !errors.As(err, &fe) || fe["smtp_security"] == "" && fe["smtp_host"] == "" {
			t.Errorf("plain SMTP to another host: %v", err)
		}
		// SMTP settings on another kind are refused.
		if _, err := chs.SaveChannel(ctx, ChannelInput{Name: "hook", Kind: "webhook", Enabled: true, URL: "https://example.test/h", SMTPHost: "127.0.0.1"}, by); !errors.As(err, &fe) || fe["smtp_host"] == "" {
			t.Errorf("SMTP host on a webhook: %v", err)
		}
		if n, _ := db.Client.NotificationChannel.Query().Count(ctx); n != 0 {
			t.Fatalf("%d channels stored from refused input", n)
		}

		ch, err := chs.SaveChannel(ctx, good, by)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := db.Client.NotificationChannel.Get(ctx, ch.ID)
		if len(stored.Secret) == 0 || bytes.Contains(stored.Secret, []byte(password)) {
			t.Fatal("the SMTP password is not sealed at rest")
		}
		// An edit with a blank password keeps the stored one.
		edit := good
		edit.ID, edit.Secret, edit.MailTo = ch.ID, "", []string{"ops@example.test"}
		if _, err := chs.SaveChannel(ctx, edit, by); err != nil {
			t.Fatal(err)
		}
		if err := chs.SendTest(ctx, ch.ID); err != nil {
			t.Fatalf("test mail: %v", err)
		}
		chs.Notify(notify.Notification{Key: "9:firing", IncidentID: "9", Kind: notify.KindFiring, Severity: notify.SeverityCritical,
			Title: "Disk on web-1\r\nBcc: x@evil.test", Fields: []notify.Field{{Name: "Server", Value: "web-1"}}}, []int{ch.ID})
		deadline := time.Now().Add(10 * time.Second)
		var msgs []smtptest.Message
		for len(msgs) < 2 && time.Now().Before(deadline) {
			_, msgs = srv.Received()
			time.Sleep(10 * time.Millisecond)
		}
		if len(msgs) != 2 {
			t.Fatalf("%d messages received, want 2; log:\n%s", len(msgs), logs.String())
		}
		for _, m := range msgs {
			if m.User != "gatehouse" || m.From != "alerts@example.test" || len(m.To) != 1 || m.To[0] != "ops@example.test" {
				t.Errorf("envelope %+v", m)
			}
			if bytes.Contains(m.Data, []byte("\r\nBcc:")) {
				t.Errorf("a title added a header:\n%s", m.Data)
			}
		}
		if !bytes.Contains(msgs[1].Data, []byte("FIRING")) {
			t.Errorf("the incident mail:\n%s", msgs[1].Data)
		}
		if strings.Contains(logs.String(), password) {
			t.Error("the password was logged")
		}
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
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d delivery records, want 2", len(list))
			}
			time.Sleep(10 * time.Millisecond)
		}

		// Without a user, no password is kept.
		edit.SMTPUsername = ""
		if _, err := chs.SaveChannel(ctx, edit, by); err != nil {
			t.Fatal(err)
		}
		if stored, _ := db.Client.NotificationChannel.Get(ctx, ch.ID); len(stored.Secret) != 0 {
			t.Error("the password was kept for a channel without a user")
		}
	})
}
