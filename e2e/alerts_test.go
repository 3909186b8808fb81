package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

const (
	botToken     = "123456789:AAHk3bR9xZ-abcdefghijklmnopqrstuvw"
	opsChat      = int64(-1001234567890)
	opsTopic     = 7
	hostileHost  = "<b>edge</b>&{{ .Host }}"
	hostileLabel = "team:<b>&{{x}}"
)

func countKind(msgs []telegramtest.Message, heading string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m.Plain, heading) {
			n++
		}
	}
	return n
}

// TestAlertsNotifyThroughTelegram drives a real agent's CPU across a rule and
// follows the incident through Telegram: one firing message with escaped
// values and buttons, a reminder, an Ack button press (an unknown chat's is
// ignored), a rate-limited recovery, an outage of the Bot API, a silence, and
// /status.
func TestAlertsNotifyThroughTelegram(t *testing.T) {
	t.Parallel()
	tg := telegramtest.New(t, botToken)
	tg.AddChat(opsChat, "supergroup", opsTopic)
	g := startGlancesStandIn(t, 10)
	c := startController(t, "--metrics-interval", "1s", "--alert-interval", "1s", "--telegram-api-url", tg.URL())
	token, pin := c.addServer("edge-1")
	id := c.serverID("edge-1")
	startAgentAs(t, c, token, pin, g.URL, "edge-host", t.TempDir())
	eventually(t, 30*time.Second, "the agent reporting", func() bool { l, ok := c.latest(id); return ok && l.Source == "glances" })
	setHostileFacts(t, c, id, hostileHost, []string{hostileLabel})

	var ch struct{ ID int }
	c.mustAPI("POST", "/api/v1/alerts/channels", map[string]any{"name": "ops", "kind": "telegram", "enabled": true,
		"chat_id": opsChat, "topic_id": opsTopic, "secret": botToken}, &ch, 201)
	var listed struct {
		Channels []map[string]any `json:"channels"`
	}
	c.mustAPI("GET", "/api/v1/alerts/channels", nil, &listed, 200)
	if fmt.Sprint(listed) == "" || strings.Contains(fmt.Sprint(listed), botToken) || listed.Channels[0]["has_secret"] != true {
		t.Fatalf("channel listing leaks or lacks the token: %v", listed)
	}
	c.mustAPI("POST", fmt.Sprintf("/api/v1/alerts/channels/%d/test", ch.ID), nil, nil, 200)
	tg.Wait(t, "the test message", func() bool { return countKind(tg.Messages(), "TEST") == 1 })

	var rule struct {
		ID          int
		Explanation string
	}
	c.mustAPI("POST", "/api/v1/alerts/rules", map[string]any{"name": "CPU high", "kind": "metric", "enabled": true,
		"metric": "cpu", "op": ">", "critical": 90, "window": "3s", "repeat": "5s"}, &rule, 201)
	if !strings.Contains(rule.Explanation, "averaged over 3 seconds is above 90% (critical)") {
		t.Fatalf("explanation: %q", rule.Explanation)
	}
	var bad struct {
		Error struct{ Fields map[string]string }
	}
	if code := c.api("POST", "/api/v1/alerts/rules", map[string]any{"name": "<b>", "kind": "metric", "metric": "cpu", "op": ">", "critical": 900}, &bad); code != 422 || bad.Error.Fields["name"] == "" || bad.Error.Fields["critical"] == "" {
		t.Fatalf("hostile rule: %d %+v", code, bad)
	}

	// 1. The CPU crosses the rule; after the window, exactly one firing message.
	g.setCPU(99)
	tg.Wait(t, "the firing message", func() bool { return countKind(tg.Messages(), "FIRING") >= 1 })
	msgs := tg.Messages()
	if n := countKind(msgs, "🔥 FIRING"); n != 1 {
		t.Fatalf("%d firing messages, want 1", n)
	}
	var firing telegramtest.Message
	for _, m := range msgs {
		if strings.Contains(m.Plain, "🔥 FIRING") {
			firing = m
		}
	}
	if firing.ChatID != opsChat || firing.ThreadID != opsTopic {
		t.Fatalf("firing message went to chat %d topic %d", firing.ChatID, firing.ThreadID)
	}
	// 6. Hostile hostname and label arrive as literal text.
	for _, want := range []string{"CPU high on edge-1", "Hostname: " + hostileHost, "Labels: " + hostileLabel, "CPU usage averaged"} {
		if !strings.Contains(firing.Plain, want) {
			t.Fatalf("firing message lacks %q:\n%s", want, firing.Plain)
		}
	}
	if !strings.Contains(firing.HTML, "&lt;b&gt;edge&lt;/b&gt;&amp;{{ .Host }}") || strings.Contains(firing.HTML, "<b>edge</b>") {
		t.Fatalf("hostname not escaped in the HTML:\n%s", firing.HTML)
	}
	if len(firing.Keyboard) != 1 || len(firing.Keyboard[0]) != 2 || firing.Keyboard[0][0].Text != "Ack" || firing.Keyboard[0][1].Text != "Silence 1 h" {
		t.Fatalf("firing message buttons: %+v", firing.Keyboard)
	}
	incs := c.incidents()
	if len(incs) != 1 || incs[0].State != "firing" || incs[0].Severity != "critical" {
		t.Fatalf("incidents: %+v", incs)
	}
	inc := incs[0]

	// A reminder follows while it fires unacknowledged.
	tg.Wait(t, "a reminder", func() bool { return countKind(tg.Messages(), "STILL FIRING") >= 1 })

	// 2. A button press from an unknown chat is ignored; from the ops chat it acknowledges.
	alice := telegramtest.User{ID: 42, Username: "alice"}
	tg.PushCallback(-5555, "group", telegramtest.User{ID: 66, Username: "mallory"}, firing.Keyboard[0][0].CallbackData)
	tg.PushCallback(opsChat, "supergroup", alice, firing.Keyboard[0][0].CallbackData)
	tg.Wait(t, "the ack answered", func() bool {
		for _, a := range tg.Answers() {
			if strings.Contains(a.Text, "acknowledged") {
				return true
			}
		}
		return false
	})
	if got := c.incidents()[0]; got.AckedBy != "telegram:@alice" {
		t.Fatalf("incident acked by %q, want telegram:@alice (mallory's press must be ignored)", got.AckedBy)
	}
	var auditPage struct {
		Events []struct{ Actor, Action, Target string } `json:"events"`
	}
	c.mustAPI("GET", "/api/v1/audit?action=incident.ack", nil, &auditPage, 200)
	found := false
	for _, e := range auditPage.Events {
		if e.Action == "incident.ack" && e.Actor == "telegram:@alice" && e.Target == fmt.Sprintf("incident:%d", inc.ID) {
			found = true
		}
		if strings.Contains(e.Actor, "mallory") {
			t.Fatalf("an update from an unknown chat was obeyed: %+v", e)
		}
	}
	if !found {
		t.Fatalf("acknowledgment not in the audit log: %+v", auditPage.Events)
	}
	page := c.page("/alerts")
	if !strings.Contains(page, "telegram:@alice") {
		t.Fatal("the alerts page does not show who acknowledged")
	}
	// No reminders after the ack: wait more than two repeat intervals.
	reminders := countKind(tg.Messages(), "STILL FIRING")
	time.Sleep(11 * time.Second)
	if n := countKind(tg.Messages(), "STILL FIRING"); n != reminders {
		t.Fatalf("%d reminders after the ack, want none", n-reminders)
	}

	// 3. The recovery hits a 429: the notifier waits retry_after and delivers once.
	tg.RateLimit(2)
	g.setCPU(10)
	tg.Wait(t, "the recovery message", func() bool { return countKind(tg.Messages(), "RESOLVED") >= 1 })
	limited := 0
	for _, r := range tg.RequestsFor("sendMessage") {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the rate limit was never hit")
	}
	if n := countKind(tg.Messages(), "RESOLVED"); n != 1 {
		t.Fatalf("%d recovery messages, want 1", n)
	}

	// With the Bot API down, ingest and the UI keep working; delivery follows its return.
	tg.Stop()
	g.setCPU(98)
	eventually(t, 30*time.Second, "a new firing incident while Telegram is down", func() bool {
		for _, i := range c.incidents() {
			if i.State == "firing" && i.ID != inc.ID {
				return true
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "the new value stored while Telegram is down", func() bool {
		l, ok := c.latest(id)
		return ok && l.CPUPercent == 98
	})
	if !strings.Contains(c.page("/alerts"), "CPU high") {
		t.Fatal("the alerts page does not render while Telegram is down")
	}
	tg.Start()
	tg.Wait(t, "the second firing message after the outage", func() bool { return countKind(tg.Messages(), "🔥 FIRING") == 2 })

	// 5. A silence for this rule on this server holds notifications back, for its time only.
	var sil struct{ ID int }
	c.mustAPI("POST", "/api/v1/alerts/silences", map[string]any{"rule_id": rule.ID, "server_id": id, "duration": "1h", "comment": "maintenance"}, &sil, 201)
	before := len(tg.Messages())
	g.setCPU(10)
	eventually(t, 30*time.Second, "the incident resolved under the silence", func() bool {
		for _, i := range c.incidents() {
			if i.State != "resolved" {
				return false
			}
		}
		return true
	})
	g.setCPU(97)
	eventually(t, 30*time.Second, "a silenced firing incident", func() bool {
		for _, i := range c.incidents() {
			if i.State == "firing" {
				return true
			}
		}
		return false
	})
	if got := tg.Messages()[before:]; len(got) != 0 {
		t.Fatalf("silenced incidents sent %d messages: %+v", len(got), got)
	}
	c.mustAPI("DELETE", fmt.Sprintf("/api/v1/alerts/silences/%d", sil.ID), nil, nil, 204)
	tg.Wait(t, "the firing notice once the silence ended", func() bool { return countKind(tg.Messages(), "🔥 FIRING") == 3 })

	// /status lists the firing incident.
	tg.PushMessage(opsChat, "supergroup", opsTopic, alice, "/status")
	tg.Wait(t, "the status reply", func() bool {
		for _, m := range tg.Messages() {
			if strings.Contains(m.Plain, "Gatehouse status") && strings.Contains(m.Plain, "CPU high on edge-1") {
				return true
			}
		}
		return false
	})

	// Every attempt was recorded.
	var deliveries struct {
		Deliveries []struct{ Outcome, Kind string } `json:"deliveries"`
	}
	c.mustAPI("GET", "/api/v1/alerts/deliveries?limit=500", nil, &deliveries, 200)
	outcomes := map[string]int{}
	for _, d := range deliveries.Deliveries {
		outcomes[d.Outcome]++
	}
	if outcomes["delivered"] < 6 || outcomes["retrying"] == 0 {
		t.Fatalf("delivery log: %v", outcomes)
	}
	var jobs struct {
		Jobs []struct {
			Name       string `json:"name"`
			LastResult string `json:"last_outcome"`
		} `json:"jobs"`
	}
	c.mustAPI("GET", "/api/v1/jobs", nil, &jobs, 200)
	ok := false
	for _, j := range jobs.Jobs {
		if j.Name == "alerts.evaluate" && j.LastResult != "" {
			ok = true
		}
	}
	if !ok {
		t.Fatalf("jobs: %+v", jobs)
	}
	for path, want := range map[string]string{
		"/jobs":            "Evaluate alert rules",
		"/alerts/rules":    "averaged over 3 seconds",
		"/alerts/silences": "maintenance",
		"/alerts/channels": "chat " + fmt.Sprint(opsChat),
	} {
		body := c.page(path)
		if !strings.Contains(body, want) {
			t.Errorf("%s does not show %q", path, want)
		}
		if strings.Contains(body, botToken) || strings.Contains(body, "<b>edge</b>") {
			t.Errorf("%s leaks the bot token or unescaped markup", path)
		}
	}
}

// TestOfflineRuleFiresAndResolves stops the agent until an offline rule
// fires, then starts it again and sees the incident resolve.
func TestOfflineRuleFiresAndResolves(t *testing.T) {
	t.Parallel()
	tg := telegramtest.New(t, botToken)
	tg.AddChat(opsChat, "supergroup", 0)
	g := startGlancesStandIn(t, 10)
	c := startController(t, "--metrics-interval", "1s", "--alert-interval", "1s", "--telegram-api-url", tg.URL())
	token, pin := c.addServer("node-off")
	id := c.serverID("node-off")
	state := t.TempDir()
	agent := startAgentAs(t, c, token, pin, g.URL, "node-off", state)
	eventually(t, 30*time.Second, "the agent reporting", func() bool { _, ok := c.latest(id); return ok })
	c.mustAPI("POST", "/api/v1/alerts/channels", map[string]any{"name": "ops", "kind": "telegram", "enabled": true, "chat_id": opsChat, "secret": botToken}, nil, 201)
	c.mustAPI("POST", "/api/v1/alerts/rules", map[string]any{"name": "Offline", "kind": "offline", "enabled": true, "severity": "critical", "window": "10s"}, nil, 201)

	agent.stop()
	tg.Wait(t, "the offline firing message", func() bool { return countKind(tg.Messages(), "🔥 FIRING") == 1 })
	if m := tg.Messages()[0]; !strings.Contains(m.Plain, "Offline on node-off") || !strings.Contains(m.Plain, "No report from the agent") {
		t.Fatalf("offline message:\n%s", m.Plain)
	}
	startAgentAs(t, c, token, pin, g.URL, "node-off", state)
	tg.Wait(t, "the recovery message", func() bool { return countKind(tg.Messages(), "RESOLVED") == 1 })
	if incs := c.incidents(); len(incs) != 1 || incs[0].State != "resolved" {
		t.Fatalf("incidents: %+v", incs)
	}
}

// page fetches a UI page signed in as the admin.
func (c *controllerProc) page(path string) string {
	c.t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm("http://"+c.httpAddr+"/login", url.Values{"username": {"admin"}, "password": {c.password}})
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = browser.Get("http://" + c.httpAddr + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s = %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}
