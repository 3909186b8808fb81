package telegramtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testToken = "123456789:AAtesttesttesttesttesttesttesttest01"

func post(t *testing.T, s *Server, token, method string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL()+"/bot"+token+"/"+method, form)
	if err != nil {
		t.Fatalf("post %s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, body
}

func TestSendMessageChecks(t *testing.T) {
	t.Parallel()
	good := func() url.Values {
		return url.Values{"chat_id": {"-100"}, "text": {"<b>hi</b> &lt;x&gt; &amp; &#39;"}, "parse_mode": {"HTML"}}
	}
	tests := []struct {
		name      string
		token     string
		method    string
		edit      func(v url.Values)
		status    int
		violation bool
	}{
		{name: "valid", edit: func(url.Values) {}, status: 200},
		{name: "wrong token", token: "123456789:AAwrongwrongwrongwrongwrongwrongwr", edit: func(url.Values) {}, status: 401, violation: true},
		{name: "unknown method", method: "sendPhoto", edit: func(url.Values) {}, status: 404, violation: true},
		{name: "missing chat", edit: func(v url.Values) { v.Del("chat_id") }, status: 400, violation: true},
		{name: "malformed chat", edit: func(v url.Values) { v.Set("chat_id", "12a") }, status: 400, violation: true},
		{name: "unknown chat", edit: func(v url.Values) { v.Set("chat_id", "-200") }, status: 400},
		{name: "no parse mode", edit: func(v url.Values) { v.Del("parse_mode") }, status: 400, violation: true},
		{name: "raw angle bracket", edit: func(v url.Values) { v.Set("text", "host <b> down") }, status: 400, violation: true},
		{name: "raw ampersand", edit: func(v url.Values) { v.Set("text", "a & b") }, status: 400, violation: true},
		{name: "unclosed tag", edit: func(v url.Values) { v.Set("text", "<b>x") }, status: 400, violation: true},
		{name: "thread on plain chat", edit: func(v url.Values) { v.Set("message_thread_id", "7") }, status: 400, violation: true},
		{name: "bad keyboard json", edit: func(v url.Values) { v.Set("reply_markup", "{") }, status: 400, violation: true},
		{name: "button without action", edit: func(v url.Values) {
			v.Set("reply_markup", `{"inline_keyboard":[[{"text":"Ack"}]]}`)
		}, status: 400, violation: true},
		{name: "callback data too long", edit: func(v url.Values) {
			v.Set("reply_markup", `{"inline_keyboard":[[{"text":"Ack","callback_data":"`+strings.Repeat("x", 65)+`"}]]}`)
		}, status: 400, violation: true},
		{name: "valid keyboard", edit: func(v url.Values) {
			v.Set("reply_markup", `{"inline_keyboard":[[{"text":"Ack","callback_data":"ack:1"}]]}`)
		}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(t, testToken)
			s.AllowViolations()
			s.AddChat(-100, "supergroup", 0)
			token, method := testToken, "sendMessage"
			if tc.token != "" {
				token = tc.token
			}
			if tc.method != "" {
				method = tc.method
			}
			v := good()
			tc.edit(v)
			status, body := post(t, s, token, method, v)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, body)
			}
			if got := len(s.Violations()) > 0; got != tc.violation {
				t.Fatalf("violation = %v, want %v (%v)", got, tc.violation, s.Violations())
			}
			if strings.Contains(s.URL(), token) {
				t.Fatal("URL must not contain the token")
			}
			if tc.status == 200 {
				msgs := s.Messages()
				if len(msgs) != 1 || msgs[0].Plain != "hi <x> & '" {
					t.Fatalf("messages = %+v", msgs)
				}
			} else if len(s.Messages()) != 0 {
				t.Fatalf("refused message was recorded: %+v", s.Messages())
			}
		})
	}
}

func TestTopicRequired(t *testing.T) {
	t.Parallel()
	s := New(t, testToken)
	s.AllowViolations()
	s.AddChat(-100, "supergroup", 7)
	base := url.Values{"chat_id": {"-100"}, "text": {"x"}, "parse_mode": {"HTML"}}
	if status, _ := post(t, s, testToken, "sendMessage", base); status != 400 {
		t.Fatalf("without topic: status %d, want 400", status)
	}
	base.Set("message_thread_id", "7")
	if status, body := post(t, s, testToken, "sendMessage", base); status != 200 {
		t.Fatalf("with topic: status %d %v", status, body)
	}
	if got := s.Messages(); len(got) != 1 || got[0].ThreadID != 7 {
		t.Fatalf("messages = %+v", got)
	}
}

func TestRateLimitHoldsUntilRetryAfter(t *testing.T) {
	t.Parallel()
	s := New(t, testToken)
	s.AddChat(5, "private", 0)
	s.RateLimit(30)
	v := url.Values{"chat_id": {"5"}, "text": {"x"}, "parse_mode": {"HTML"}}
	for i := 0; i < 2; i++ {
		status, body := post(t, s, testToken, "sendMessage", v)
		if status != 429 {
			t.Fatalf("call %d: status %d, want 429", i, status)
		}
		params, _ := body["parameters"].(map[string]any)
		if ra, _ := params["retry_after"].(float64); ra < 1 || ra > 30 {
			t.Fatalf("call %d: retry_after = %v", i, params["retry_after"])
		}
	}
	if len(s.Messages()) != 0 {
		t.Fatal("rate-limited message was recorded as sent")
	}
}

func TestGetUpdatesLongPollAndConfirm(t *testing.T) {
	t.Parallel()
	s := New(t, testToken)
	s.AddChat(5, "private", 0)
	done := make(chan []any, 1)
	go func() {
		_, body := post(t, s, testToken, "getUpdates", url.Values{"timeout": {"30"}, "offset": {"1"}})
		res, _ := body["result"].([]any)
		done <- res
	}()
	s.Wait(t, "the long poll to start", func() bool { return s.Polling() == 1 })
	s.PushMessage(5, "private", 0, User{ID: 9, Username: "alice"}, "/status")
	select {
	case res := <-done:
		if len(res) != 1 {
			t.Fatalf("updates = %v", res)
		}
	case <-time.After(WaitTimeout):
		t.Fatal("long poll did not return the pushed update")
	}
	// Offset 2 confirms update 1.
	_, body := post(t, s, testToken, "getUpdates", url.Values{"timeout": {"0"}, "offset": {"2"}})
	if res, _ := body["result"].([]any); len(res) != 0 || s.PendingUpdates() != 0 {
		t.Fatalf("confirmed update was delivered again: %v", res)
	}
}

func TestCallbackAnsweredOnce(t *testing.T) {
	t.Parallel()
	s := New(t, testToken)
	s.AllowViolations()
	id := s.PushCallback(5, "private", User{ID: 9}, "ack:1")
	if status, body := post(t, s, testToken, "answerCallbackQuery", url.Values{"callback_query_id": {id}, "text": {"ok"}}); status != 200 {
		t.Fatalf("first answer: %d %v", status, body)
	}
	if status, _ := post(t, s, testToken, "answerCallbackQuery", url.Values{"callback_query_id": {id}}); status != 400 {
		t.Fatalf("second answer: status %d, want 400", status)
	}
	if got := s.Answers(); len(got) != 1 || got[0].Text != "ok" {
		t.Fatalf("answers = %+v", got)
	}
}

func TestOutages(t *testing.T) {
	t.Parallel()
	s := New(t, testToken)
	s.SetBadGateway(true)
	if status, _ := post(t, s, testToken, "getMe", nil); status != http.StatusBadGateway {
		t.Fatalf("bad gateway: status %d", status)
	}
	s.SetBadGateway(false)
	s.Stop()
	if _, err := http.PostForm(s.URL()+"/bot"+testToken+"/getMe", nil); err == nil {
		t.Fatal("stopped server accepted a connection")
	}
	s.Start()
	if status, body := post(t, s, testToken, "getMe", nil); status != 200 {
		t.Fatalf("after restart: %d %v", status, body)
	}
}

func TestParseHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, plain string
		ok        bool
	}{
		{in: "<b>a</b> <i>b</i>", plain: "a b", ok: true},
		{in: `<a href="https://x">x</a>`, plain: "x", ok: true},
		{in: "&lt;b&gt;&amp;{{ }}", plain: "<b>&{{ }}", ok: true},
		{in: "&#34;&#x41;", plain: `"A`, ok: true},
		{in: "<script>x</script>"},
		{in: "<b>x</i>"},
		{in: "a > b"},
		{in: "&nbsp;"},
		{in: "<a>x</a>"},
		{in: `<b onclick="x">y</b>`},
	}
	for _, tc := range tests {
		got, err := ParseHTML(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseHTML(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && got != tc.plain {
			t.Errorf("ParseHTML(%q) = %q, want %q", tc.in, got, tc.plain)
		}
	}
}
