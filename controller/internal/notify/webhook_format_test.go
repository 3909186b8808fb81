package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var formatTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// formatFixtures are the notifications every format is pinned on.
func formatFixtures() map[string]Notification {
	f := firing("inc-42",
		Field{Name: "Server", Value: "web-1"},
		Field{Name: "Owner", Value: "Smith & Sons <ops@example.com>"},
		Field{Name: "Log", Value: "line 1 **bold** @here\n# line 2 <!channel>\n1. [x](https://evil.example)"},
	)
	f.Time = formatTime
	return map[string]Notification{
		"firing": f,
		"resolved": {Key: "inc-42:resolved", IncidentID: "inc-42", Kind: KindResolved, Severity: SeverityWarning,
			Title: "Disk <ok> again", Fields: []Field{{Name: "Server", Value: "web-1"}}, Time: formatTime},
		"test": TestNotification("ops", formatTime),
	}
}

// TestWebhookBodyGolden pins the exact body of each format for a firing, a
// resolved and a test notification.
func TestWebhookBodyGolden(t *testing.T) {
	t.Parallel()
	for _, format := range []string{WebhookFormatGatehouse, WebhookFormatSlack, WebhookFormatDiscord} {
		for name, n := range formatFixtures() {
			body, err := WebhookBody("ops-hook", format, n, time.Now())
			if err != nil {
				t.Fatalf("%s %s: %v", format, name, err)
			}
			path := filepath.Join("testdata", "webhook-"+format+"-"+name+".golden")
			if *update {
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: %v (run go test -update)", path, err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, body, want)
			}
			checkShape(t, format, body)
		}
	}
	// The default format is the Gatehouse payload, byte for byte.
	for name, n := range formatFixtures() {
		def, _ := WebhookBody("ops-hook", "", n, time.Now())
		gh, _ := WebhookBody("ops-hook", WebhookFormatGatehouse, n, time.Now())
		if !bytes.Equal(def, gh) {
			t.Errorf("%s: the default format differs from gatehouse:\n%s\n%s", name, def, gh)
		}
	}
	if _, err := WebhookBody("ops-hook", "teams", formatFixtures()["test"], time.Now()); err == nil {
		t.Error("an unknown format was rendered")
	}
}

// slackBody and discordBody are what Slack and Discord accept; checkShape
// decodes strictly into them.
type slackBody struct {
	Text string `json:"text"`
}

type discordBody struct {
	Content         string `json:"content"`
	AllowedMentions *struct {
		Parse *[]string `json:"parse"`
	} `json:"allowed_mentions"`
}

// checkShape fails unless body is exactly the shape format promises, with a
// text inside the service's limit, and returns the text.
func checkShape(t *testing.T, format string, body []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	switch format {
	case WebhookFormatSlack:
		var b slackBody
		if err := dec.Decode(&b); err != nil || b.Text == "" {
			t.Fatalf("slack body %s: %v", body, err)
		}
		if n := utf16Len(b.Text); n > 4000 {
			t.Errorf("slack text is %d units long", n)
		}
		return b.Text
	case WebhookFormatDiscord:
		var b discordBody
		if err := dec.Decode(&b); err != nil || b.Content == "" {
			t.Fatalf("discord body %s: %v", body, err)
		}
		if b.AllowedMentions == nil || b.AllowedMentions.Parse == nil || len(*b.AllowedMentions.Parse) != 0 {
			t.Errorf("discord body lets mentions ping: %s", body)
		}
		if n := utf16Len(b.Content); n > 2000 {
			t.Errorf("discord content is %d units long, over Discord's 2000", n)
		}
		return b.Content
	default:
		var p WebhookPayload
		if err := dec.Decode(&p); err != nil || p.Version != WebhookPayloadVersion || p.Key == "" {
			t.Fatalf("gatehouse body %s: %v", body, err)
		}
		return p.Title
	}
}

// slackShown is what Slack shows for text: entities decoded, word joiners
// invisible.
func slackShown(text string) string {
	return strings.NewReplacer(wordJoiner, "", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}

// discordShown is what Discord shows for content: a backslash before ASCII
// punctuation shows the punctuation alone; word joiners are invisible.
func discordShown(content string) string {
	content = strings.ReplaceAll(content, wordJoiner, "")
	var b strings.Builder
	for i := 0; i < len(content); i++ {
		if content[i] == '\\' && i+1 < len(content) && strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", content[i+1]) >= 0 {
			i++
		}
		b.WriteByte(content[i])
	}
	return b.String()
}

var (
	// mentionRE finds what Slack-compatible and Discord chats read as a
	// mention: @word at the start of a word.
	mentionRE = regexp.MustCompile(`(^|[^\pL\pN])@[\pL\pN]`)
	// entityRE is one of the three entities Slack text may contain.
	entityRE = regexp.MustCompile(`&(amp|lt|gt);`)
)

// unescapedDiscord reports the first Markdown control character in content
// that is not escaped by a backslash.
func unescapedDiscord(content string) (string, bool) {
	for i := 0; i < len(content); i++ {
		c := content[i]
		if c == '\\' {
			i++ // the escaped character
			continue
		}
		if strings.IndexByte("*_~`|<>[]()", c) >= 0 {
			return content[max(0, i-10):min(len(content), i+10)], true
		}
	}
	// Line starts that make headings, quotes and lists.
	for _, line := range strings.Split(content, "\n") {
		l := strings.TrimLeft(line, " \t")
		if l == "" {
			continue
		}
		if strings.IndexByte("#->+", l[0]) >= 0 || regexp.MustCompile(`^[0-9]+\.`).MatchString(l) {
			return line, true
		}
	}
	return "", false
}

var hostileTexts = []string{
	"<!channel>", "<!here|here>", "<!everyone>", "<http://x|y>", "<https://evil.example|click here>", "<@U012AB3CD>",
	"Tom & Jerry &amp; &lt;co&gt;", "@channel @here @all @everyone", "<@1>", "<@!1>", "<@&123>", "<#123>", "<t:1700000000:R>",
	"**bold** __under__ *it* _it_ ~~strike~~", "||spoiler||", "`code` ```block``` ``", "[click](https://evil.example)",
	"![img](http://x.example/y.png)", "[ref][1]", "[1]: https://evil.example", "# heading", "-# subtext", "> quote", ">>> quote all",
	"1. item", "- item", "+ item", `\*not escaped\*`, `trailing backslash \`, "mail ops@example.com", "🔥 emoji ✅",
}

// TestChatTextNeutralisesHostileText renders hostile titles, field names
// and values and proves they can neither ping, link nor format, and still
// show as typed.
func TestChatTextNeutralisesHostileText(t *testing.T) {
	t.Parallel()
	for _, h := range hostileTexts {
		n := firing("inc-7", Field{Name: h, Value: h}, Field{Name: "Log", Value: "ok\n" + h + "\n  " + h})
		n.Title = h
		n.Time = formatTime

		body, err := WebhookBody("c", WebhookFormatSlack, n, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		text := checkShape(t, WebhookFormatSlack, body)
		if strings.ContainsAny(text, "<>") {
			t.Errorf("slack %q: text keeps < or >: %q", h, text)
		}
		if rest := entityRE.ReplaceAllString(text, ""); strings.Contains(rest, "&") {
			t.Errorf("slack %q: a bare & in %q", h, text)
		}
		if m := mentionRE.FindString(text); m != "" {
			t.Errorf("slack %q: mention %q left in %q", h, m, text)
		}
		if strings.Contains(text, "](") || strings.Contains(text, "]:") || strings.Contains(text, "][") {
			t.Errorf("slack %q: a Markdown link survives in %q", h, text)
		}
		if shown := slackShown(text); !strings.Contains(shown, "FIRING critical: "+h+"\n") || !strings.Contains(shown, "\n"+h+": "+h+"\n") ||
			!strings.Contains(shown, "\n  "+h+"\n") {
			t.Errorf("slack %q is not shown as typed:\n%s", h, shown)
		}

		body, err = WebhookBody("c", WebhookFormatDiscord, n, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		content := checkShape(t, WebhookFormatDiscord, body)
		if at, bad := unescapedDiscord(content); bad {
			t.Errorf("discord %q: unescaped Markdown near %q in:\n%s", h, at, content)
		}
		if m := mentionRE.FindString(content); m != "" {
			t.Errorf("discord %q: mention %q left in %q", h, m, content)
		}
		if shown := discordShown(content); !strings.Contains(shown, "FIRING critical: "+h+"\n") || !strings.Contains(shown, "\n"+h+": "+h+"\n") ||
			!strings.Contains(shown, "\n  "+h+"\n") {
			t.Errorf("discord %q is not shown as typed:\n%s", h, shown)
		}
	}
}

// TestChatTextLimits fills a notification to the brim and checks both chat
// formats stay within their services' limits, cut at rune boundaries with an
// ellipsis, with the time still at the end.
func TestChatTextLimits(t *testing.T) {
	t.Parallel()
	big := firing("inc-big")
	big.Time = formatTime
	big.Title = strings.Repeat("🔥&", MaxTitleRunes) // over the title limit
	for i := 0; i < MaxFields; i++ {
		big.Fields = append(big.Fields, Field{Name: fmt.Sprintf("Field %d *", i), Value: strings.Repeat("ä<*🔥", MaxFieldRunes)})
	}
	for _, tc := range []struct {
		format string
		limit  int
		shown  func(string) string
	}{
		{WebhookFormatSlack, 4000, slackShown},
		{WebhookFormatDiscord, 2000, discordShown},
	} {
		body, err := WebhookBody("c", tc.format, big, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		text := checkShape(t, tc.format, body)
		if n := utf16Len(text); n > tc.limit || n < tc.limit-200 {
			t.Errorf("%s: %d units, want close to but within %d", tc.format, n, tc.limit)
		}
		if !utf8.ValidString(text) || strings.ContainsRune(text, utf8.RuneError) {
			t.Errorf("%s: a rune was cut:\n%q", tc.format, text)
		}
		if !strings.HasSuffix(text, "\n\nTime: 2025-01-02T03:04:05Z\nIncident: inc-big") {
			t.Errorf("%s: the time and incident are not at the end:\n%s", tc.format, text[max(0, len(text)-200):])
		}
		shown := tc.shown(text)
		head, _, _ := strings.Cut(shown, "\n")
		if want := "🔴 FIRING critical: " + strings.Repeat("🔥&", (MaxTitleRunes-1)/2) + "🔥…"; head != want {
			t.Errorf("%s: heading %q, want %q", tc.format, head, want)
		}
		if !strings.Contains(shown, "\nField 0 *: ä<*🔥") || !regexp.MustCompile(`…\n… \d+ more fields not shown\n\nTime:`).MatchString(shown) {
			t.Errorf("%s: fields not cut as expected:\n%s", tc.format, shown)
		}
		if tc.format == WebhookFormatDiscord && regexp.MustCompile(`(^|[^\\])(\\\\)*\\…`).MatchString(text) {
			t.Errorf("discord: a cut left an escape without its character")
		}
	}
	// A notification that fits is not cut.
	small := formatFixtures()["firing"]
	for _, format := range []string{WebhookFormatSlack, WebhookFormatDiscord} {
		body, _ := WebhookBody("c", format, small, time.Now())
		if text := checkShape(t, format, body); strings.Contains(text, "…") || strings.Count(text, "\n") != 8 {
			t.Errorf("%s: a small notification was changed:\n%s", format, text)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header, body string
		want         time.Duration
	}{
		{header: "2", want: 2 * time.Second},
		{header: " 0.5 ", want: 500 * time.Millisecond},
		{header: "0.0001", want: time.Millisecond}, // rounded up
		{header: "1.2345", want: 1235 * time.Millisecond},
		{header: "0", want: 0},
		{header: "-3", want: 0},
		{header: "NaN", want: 0},
		{header: "soon", want: 0},
		{header: "1e9", want: maxRetryAfter},
		{header: "+Inf", want: maxRetryAfter},
		{header: now.Add(3 * time.Second).Format(http.TimeFormat), want: 3 * time.Second},
		{header: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{header: now.Add(24 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter},
		{body: `{"message": "You are being rate limited.", "retry_after": 0.25, "global": false}`, want: 250 * time.Millisecond},
		{body: `{"retry_after": 64.57}`, want: 64570 * time.Millisecond},
		{body: `{"retry_after": "x"}`, want: 0},
		{body: `not json`, want: 0},
		{header: "1", body: `{"retry_after": 9}`, want: time.Second}, // the header wins
	}
	for _, tc := range tests {
		if got := retryAfter(tc.header, []byte(tc.body), now); got != tc.want {
			t.Errorf("retryAfter(%q, %q) = %v, want %v", tc.header, tc.body, got, tc.want)
		}
	}
}

// chatService plays Slack or Discord on loopback: it checks every request
// the way the service would and answers with scripted responses.
type chatService struct {
	t      *testing.T
	format string
	secret string
	mu     sync.Mutex
	script []chatAnswer // then success
	bodies [][]byte
	srv    *httptest.Server
}

type chatAnswer struct {
	status int
	header http.Header
	body   string
}

func newChatService(t *testing.T, format, secret string, script ...chatAnswer) *chatService {
	s := &chatService{t: t, format: format, secret: secret, script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *chatService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var problems []string
	if r.Method != http.MethodPost || r.URL.Path != "/api/webhooks/123/token-secret" {
		problems = append(problems, fmt.Sprintf("request %s %s", r.Method, r.URL.Path))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "content type "+ct)
	}
	if r.Header.Get(DeliveryHeader) == "" || r.Header.Get(EventHeader) == "" || r.Header.Get("User-Agent") != "Gatehouse-Notify/1" {
		problems = append(problems, fmt.Sprintf("headers %v", r.Header))
	}
	if sig := r.Header.Get(SignatureHeader); (s.secret == "") != (sig == "") || s.secret != "" && !VerifySignature(s.secret, body, sig) {
		problems = append(problems, "signature "+sig)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	switch s.format {
	case WebhookFormatSlack:
		var b slackBody
		if err := dec.Decode(&b); err != nil || b.Text == "" || utf16Len(b.Text) > 4000 {
			problems = append(problems, fmt.Sprintf("slack body %s (%v)", body, err))
		}
	case WebhookFormatDiscord:
		var b discordBody
		if err := dec.Decode(&b); err != nil || b.Content == "" || utf16Len(b.Content) > 2000 ||
			b.AllowedMentions == nil || b.AllowedMentions.Parse == nil || len(*b.AllowedMentions.Parse) != 0 {
			problems = append(problems, fmt.Sprintf("discord body %s (%v)", body, err))
		}
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	var answer *chatAnswer
	if len(s.script) > 0 {
		answer, s.script = &s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	if len(problems) > 0 {
		s.t.Errorf("%s received a bad request: %s", s.format, strings.Join(problems, "; "))
		http.Error(w, `{"message": "Invalid Form Body", "code": 50035}`, http.StatusBadRequest)
		return
	}
	if answer != nil {
		for k, v := range answer.header {
			w.Header()[k] = v
		}
		w.WriteHeader(answer.status)
		io.WriteString(w, answer.body)
		return
	}
	if s.format == WebhookFormatDiscord {
		w.WriteHeader(http.StatusNoContent) // Discord without ?wait=true
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok") // Slack
}

func (s *chatService) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// TestChatWebhookDelivery delivers through Slack and Discord formatted
// webhooks to services on loopback, through Discord's rate limit with a
// fractional Retry-After or a JSON retry_after, signed when a secret is set.
func TestChatWebhookDelivery(t *testing.T) {
	t.Parallel()
	limited := func(h, v, body string) chatAnswer {
		hdr := http.Header{"Content-Type": {"application/json"}}
		if h != "" {
			hdr.Set(h, v)
		}
		return chatAnswer{status: http.StatusTooManyRequests, header: hdr, body: body}
	}
	tests := []struct {
		name, format, secret string
		script               []chatAnswer
		retryIn              []time.Duration // of the retrying attempts
	}{
		{name: "slack", format: WebhookFormatSlack},
		{name: "slack signed after a 500", format: WebhookFormatSlack, secret: hookSecret,
			script: []chatAnswer{{status: 500, body: "rollup_error"}}, retryIn: []time.Duration{10 * time.Millisecond}},
		{name: "discord fractional Retry-After", format: WebhookFormatDiscord,
			script:  []chatAnswer{limited("Retry-After", "0.05", `{"message": "You are being rate limited.", "retry_after": 9, "global": false}`)},
			retryIn: []time.Duration{50 * time.Millisecond}},
		{name: "discord JSON retry_after", format: WebhookFormatDiscord, secret: hookSecret,
			script:  []chatAnswer{limited("", "", `{"message": "You are being rate limited.", "retry_after": 0.037, "global": false}`), limited("Retry-After", "0.02", "")},
			retryIn: []time.Duration{37 * time.Millisecond, 20 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc := newChatService(t, tc.format, tc.secret, tc.script...)
			rec := newRecorder()
			w, err := NewWebhook(WebhookConfig{Name: "chat", URL: svc.srv.URL + "/api/webhooks/123/token-secret", Secret: tc.secret, Format: tc.format},
				Options{Recorder: rec, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			n := formatFixtures()["firing"]
			if err := w.Send(context.Background(), n); err != nil {
				t.Fatalf("Send: %v", err)
			}
			bodies := svc.received()
			if len(bodies) != len(tc.script)+1 {
				t.Fatalf("%d requests, want %d", len(bodies), len(tc.script)+1)
			}
			want, _ := WebhookBody("chat", tc.format, n, time.Now())
			for i, b := range bodies {
				if !bytes.Equal(b, want) {
					t.Errorf("request %d body\n%s\nwant\n%s", i, b, want)
				}
			}
			ds := rec.all()
			if len(ds) != len(tc.retryIn)+1 || ds[len(ds)-1].Outcome != OutcomeDelivered {
				t.Fatalf("deliveries %+v", ds)
			}
			for i, d := range tc.retryIn {
				if ds[i].Outcome != OutcomeRetrying || ds[i].RetryIn != d {
					t.Errorf("attempt %d: %+v, want retrying in %v", i+1, ds[i], d)
				}
			}
		})
	}
}
