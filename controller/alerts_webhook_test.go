package controller

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlackWebhookChannelFromTheForm adds a Slack-format webhook channel
// through the page (a refused form keeps the chosen format), sends its test
// message to a Slack stand-in on loopback that checks every request, and
// reads the format back through the API; the API creates, changes and
// refuses formats too.
func TestSlackWebhookChannelFromTheForm(t *testing.T) {
	e := newEditEnv(t)
	texts := make(chan string, 4)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var m struct {
			Text string `json:"text"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/services/T000/B000/XXXX" || r.Header.Get("Content-Type") != "application/json" ||
			dec.Decode(&m) != nil || m.Text == "" {
			t.Errorf("Slack received a bad request: %s %s %v %s", r.Method, r.URL.Path, r.Header, body)
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		texts <- m.Text
		io.WriteString(w, "ok")
	}))
	defer slack.Close()
	hook := slack.URL + "/services/T000/B000/XXXX"
	admin, user := e.browser(e.adminLogin), e.browser(e.userLogin)
	form := url.Values{"name": {"ops-slack"}, "kind": {"webhook"}, "enabled": {"on"}, "url": {hook}, "webhook_format": {"slack"},
		// Fields of the other types, hidden in the form, are ignored.
		"chat_id": {"42"}, "smtp_host": {"mail.example.test"}}

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("url", "ftp://example.test/hook")
	if code, _, body := send(t, admin, "POST", e.base+"/alerts/channels", bad); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "scheme must be https or http") || !strings.Contains(body, `value="ftp://example.test/hook"`) ||
		!strings.Contains(body, `<option value="webhook" selected>`) || !strings.Contains(body, `<option value="slack" selected>`) {
		t.Fatalf("bad url: %d\n%s", code, body)
	}
	bad.Set("url", hook)
	bad.Set("webhook_format", "<script>teams</script>")
	if code, _, body := send(t, admin, "POST", e.base+"/alerts/channels", bad); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "is not one of gatehouse, slack, discord") || strings.Contains(body, "<script>teams") {
		t.Fatalf("unknown format: %d\n%s", code, body)
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
	if ch["kind"] != "webhook" || ch["webhook_format"] != "slack" || ch["url"] != hook || ch["has_secret"] != false ||
		ch["chat_id"] != nil || ch["smtp_host"] != nil {
		t.Fatalf("channel as the API shows it: %+v", ch)
	}
	if _, _, page := send(t, admin, "GET", e.base+"/alerts/channels", nil); !strings.Contains(page, "(Slack-compatible message)") {
		t.Fatalf("the channel list does not show the format:\n%s", page)
	}
	id := strconv.Itoa(int(ch["id"].(float64)))
	if code, _, _ := send(t, admin, "POST", e.base+"/alerts/channels/"+id+"/test", nil); code != http.StatusSeeOther {
		t.Fatalf("send test: %d", code)
	}
	select {
	case text := <-texts:
		if !strings.HasPrefix(text, "🧪 TEST info: Test notification from Gatehouse\nChannel: ops-slack\n") {
			t.Fatalf("test message %q", text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Slack received no test message")
	}

	// The API: create with a format, change it, and refuse it elsewhere.
	var created map[string]any
	if code, body := e.api("POST", "/api/v1/alerts/channels", e.admin, map[string]any{"name": "ops-discord", "kind": "webhook",
		"url": "https://discord.example.test/api/webhooks/1/tok", "webhook_format": "discord"}, &created); code != http.StatusCreated ||
		created["webhook_format"] != "discord" {
		t.Fatalf("create: %d %s", code, body)
	}
	did := strconv.Itoa(int(created["id"].(float64)))
	var updated map[string]any
	if code, body := e.api("PUT", "/api/v1/alerts/channels/"+did, e.admin, map[string]any{"name": "ops-discord", "kind": "webhook",
		"url": "https://discord.example.test/api/webhooks/1/tok", "webhook_format": "gatehouse"}, &updated); code != http.StatusOK {
		t.Fatalf("update: %d %s", code, body)
	}
	if _, ok := updated["webhook_format"]; ok {
		t.Fatalf("the default format is not omitted: %+v", updated)
	}
	var fe apiFields
	if code, body := e.api("POST", "/api/v1/alerts/channels", e.admin, map[string]any{"name": "tg", "kind": "telegram",
		"secret": "123456:" + strings.Repeat("A", 35), "chat_id": 42, "webhook_format": "slack"}, &fe); code != http.StatusUnprocessableEntity ||
		!strings.Contains(fe.Error.Fields["webhook_format"], "applies only to webhooks") {
		t.Fatalf("format on telegram: %d %s", code, body)
	}
	if code, body := e.api("POST", "/api/v1/alerts/channels", e.admin, map[string]any{"name": "x", "kind": "webhook",
		"url": "https://example.test/h", "webhook_format": "teams"}, &fe); code != http.StatusUnprocessableEntity || fe.Error.Fields["webhook_format"] == "" {
		t.Fatalf("unknown format: %d %s", code, body)
	}
	e.api("GET", "/api/v1/alerts/channels", e.admin, nil, &list)
	if len(list.Channels) != 2 {
		t.Fatalf("channels after the API calls: %+v", list)
	}
}
