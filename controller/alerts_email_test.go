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

// A stored channel opens in its own form, filled in except for the secret;
// saving with the secret empty keeps it, and a refused edit shows the form
// again as typed.
func TestEditChannelFromItsForm(t *testing.T) {
	e := newEditEnv(t)
	var ch struct {
		ID int `json:"id"`
	}
	if code, b := e.api("POST", "/api/v1/alerts/channels", e.admin, map[string]any{"name": "ops-mail", "kind": "email",
		"smtp_host": "smtp.example.test", "smtp_port": 587, "smtp_security": "starttls", "smtp_username": "alerts", "secret": "the password",
		"mail_from": "alerts@example.test", "mail_to": []string{"ops@example.test", "oncall@example.test"}}, &ch); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	admin, user := e.browser(e.adminLogin), e.browser(e.userLogin)
	path := e.base + "/alerts/channels/" + strconv.Itoa(ch.ID)
	if code, _, _ := send(t, user, "GET", path, nil); code != http.StatusForbidden {
		t.Fatalf("a user opened a channel: %d", code)
	}
	code, _, page := send(t, admin, "GET", path, nil)
	for _, want := range []string{`action="/alerts/channels/` + strconv.Itoa(ch.ID) + `"`, `<input type="hidden" name="kind" value="email">`,
		`data-rule-kind disabled`, `value="smtp.example.test"`, `value="587"`, `value="alerts"`, "ops@example.test\noncall@example.test</textarea>",
		"Leave it empty to keep the stored one."} {
		if !strings.Contains(page, want) {
			t.Errorf("the edit form lacks %q", want)
		}
	}
	if code != http.StatusOK || strings.Contains(page, "the password") {
		t.Fatalf("edit form: %d", code)
	}
	form := url.Values{"name": {"ops-mail"}, "kind": {"email"}, "enabled": {"on"}, "smtp_host": {"smtp2.example.test"}, "smtp_port": {"465"},
		"smtp_security": {"tls"}, "smtp_username": {"alerts"}, "mail_from": {"alerts@example.test"}, "mail_to": {"ops@example.test"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("smtp_host", "smtp://x")
	if code, _, body := send(t, admin, "POST", path, bad); code != http.StatusUnprocessableEntity || !strings.Contains(body, `value="smtp://x"`) ||
		!strings.Contains(body, `<option value="tls" selected>`) {
		t.Fatalf("refused edit: %d\n%s", code, body)
	}
	if code, loc, _ := send(t, admin, "POST", path, form); code != http.StatusSeeOther || loc != "/alerts/channels" {
		t.Fatalf("save: %d %q", code, loc)
	}
	var list struct {
		Channels []map[string]any `json:"channels"`
	}
	e.api("GET", "/api/v1/alerts/channels", e.admin, nil, &list)
	if c := list.Channels[0]; c["smtp_host"] != "smtp2.example.test" || c["smtp_security"] != "tls" || c["has_secret"] != true || len(c["mail_to"].([]any)) != 1 {
		t.Fatalf("after the edit: %+v", c)
	}
}
