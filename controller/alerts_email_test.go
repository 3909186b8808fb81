package controller

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/smtptest"
)

// TestEmailChannelFromTheForm adds an email channel through the page, sends
// its test mail to a relay on loopback, and reads it back through the API
// with the password withheld.
func TestEmailChannelFromTheForm(t *testing.T) {
	e := newEditEnv(t)
	const password = "relay secret 7"
	srv := smtptest.New(t, smtptest.Options{User: "gh", Pass: password, ClearAuth: true})
	admin, user := e.browser(e.adminLogin), e.browser(e.userLogin)
	form := url.Values{"name": {"ops-mail"}, "kind": {"email"}, "enabled": {"on"}, "secret": {password},
		"smtp_host": {"127.0.0.1"}, "smtp_port": {strconv.Itoa(srv.Port())}, "smtp_security": {"none"}, "smtp_username": {"gh"},
		"mail_from": {"Gatehouse <alerts@example.test>"}, "mail_to": {"ops@example.test,\r\noncall@example.test"}}

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("smtp_port", "25x")
	// A refused form comes back as typed, with the message at the field,
	// and without the password.
	if code, _, body := send(t, admin, "POST", e.base+"/alerts/channels", bad); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "must be a port number") || !strings.Contains(body, `value="25x"`) ||
		!strings.Contains(body, `<option value="email" selected>`) || !strings.Contains(body, "oncall@example.test</textarea>") || strings.Contains(body, password) {
		t.Fatalf("bad port: %d\n%s", code, body)
	}
	bad.Set("smtp_port", strconv.Itoa(srv.Port()))
	bad.Set("mail_from", "<script>alert(1)</script>")
	if code, _, body := send(t, admin, "POST", e.base+"/alerts/channels", bad); code != http.StatusUnprocessableEntity ||
		strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("hostile sender: %d\n%s", code, body)
	}
	if code, _, _ := send(t, user, "POST", e.base+"/alerts/channels", form); code != http.StatusForbidden {
		t.Fatalf("a user added a channel: %d", code)
	}
	if code, loc, _ := send(t, admin, "POST", e.base+"/alerts/channels", form); code != http.StatusSeeOther || loc != "/alerts/channels" {
		t.Fatalf("add: %d %q", code, loc)
	}
	var list struct {
		Channels []map[string]any `json:"channels"`
	}
	e.api("GET", "/api/v1/alerts/channels", e.admin, nil, &list)
	if len(list.Channels) != 1 {
		t.Fatalf("channels %+v", list)
	}
	ch := list.Channels[0]
	if ch["kind"] != "email" || ch["smtp_host"] != "127.0.0.1" || ch["smtp_security"] != "none" || ch["has_secret"] != true ||
		ch["mail_from"] != "Gatehouse <alerts@example.test>" || len(ch["mail_to"].([]any)) != 2 || ch["secret"] != nil {
		t.Fatalf("channel as the API shows it: %+v", ch)
	}
	_, _, page := send(t, admin, "GET", e.base+"/alerts/channels", nil)
	if !strings.Contains(page, "ops@example.test, oncall@example.test") || strings.Contains(page, password) {
		t.Fatalf("the channel list:\n%s", page)
	}
	id := strconv.Itoa(int(ch["id"].(float64)))
	if code, _, _ := send(t, admin, "POST", e.base+"/alerts/channels/"+id+"/test", nil); code != http.StatusSeeOther {
		t.Fatalf("send test: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, msgs := srv.Received(); len(msgs) == 1 {
			if m := msgs[0]; m.User != "gh" || len(m.To) != 2 || !strings.Contains(string(m.Data), "Test notification from Gatehouse") {
				t.Fatalf("test mail %+v\n%s", m, m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no test mail arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
