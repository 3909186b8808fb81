package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the raw body>" keyed
	// with the channel secret; absent when no secret is configured.
	SignatureHeader = "X-Gatehouse-Signature"
	// DeliveryHeader carries the notification key, the same on every retry,
	// so receivers can drop duplicates.
	DeliveryHeader = "X-Gatehouse-Delivery"
	// EventHeader carries the notification kind.
	EventHeader = "X-Gatehouse-Event"
)

// WebhookPayloadVersion is the version of WebhookPayload. Fields are only
// ever added within a version.
const WebhookPayloadVersion = 1

// WebhookPayload is the JSON body POSTed to webhooks:
//
//	{
//	  "version": 1,
//	  "channel": "ops-webhook",
//	  "key": "inc-42:firing",
//	  "incident_id": "inc-42",
//	  "kind": "firing",
//	  "severity": "critical",
//	  "title": "Disk almost full",
//	  "fields": [{"name": "Server", "value": "web-1"}],
//	  "occurred_at": "2025-01-02T03:04:05Z"
//	}
//
// incident_id is omitted for test notifications. Text is sent as given
// (JSON-escaped only); receivers that render HTML must escape it themselves.
type WebhookPayload struct {
	Version    int      `json:"version"`
	Channel    string   `json:"channel"`
	Key        string   `json:"key"`
	IncidentID string   `json:"incident_id,omitempty"`
	Kind       Kind     `json:"kind"`
	Severity   Severity `json:"severity"`
	Title      string   `json:"title"`
	Fields     []Field  `json:"fields"`
	OccurredAt string   `json:"occurred_at"`
}

// Webhook body formats.
const (
	// WebhookFormatGatehouse posts WebhookPayload; "" means this format too.
	WebhookFormatGatehouse = "gatehouse"
	// WebhookFormatSlack posts {"text": "..."} for Slack-compatible incoming
	// webhooks (Slack, Mattermost, Rocket.Chat).
	WebhookFormatSlack = "slack"
	// WebhookFormatDiscord posts {"content": "...", "allowed_mentions":
	// {"parse": []}} for Discord webhooks.
	WebhookFormatDiscord = "discord"
)

// WebhookConfig configures a JSON webhook channel.
type WebhookConfig struct {
	Name   string // channel name
	URL    string // http(s) endpoint; may embed a secret path, so it is never logged
	Secret string // optional HMAC-SHA256 key for SignatureHeader
	Format string // WebhookFormatGatehouse (also ""), WebhookFormatSlack or WebhookFormatDiscord
}

// Validate checks the configuration; messages name the field.
func (c WebhookConfig) Validate() error {
	var errs []error
	if !channelNameRE.MatchString(c.Name) {
		errs = append(errs, errors.New("name: must be 1-64 characters of letters, digits, space and . _ -"))
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || c.URL == "":
		errs = append(errs, errors.New("url: must be an http or https URL"))
	case u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, errors.New("url: scheme must be https or http"))
	case u.Host == "":
		errs = append(errs, errors.New("url: host is required"))
	case u.User != nil:
		errs = append(errs, errors.New("url: credentials in the URL are not allowed; use the secret for signing"))
	case u.Fragment != "":
		errs = append(errs, errors.New("url: fragment is not allowed"))
	}
	if c.Secret != "" && len(c.Secret) < 16 {
		errs = append(errs, errors.New("secret: must be at least 16 characters, or empty for unsigned deliveries"))
	}
	switch c.Format {
	case "", WebhookFormatGatehouse, WebhookFormatSlack, WebhookFormatDiscord:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of gatehouse, slack, discord", truncate(c.Format, 32)))
	}
	return errors.Join(errs...)
}

// Webhook posts notifications as JSON.
type Webhook struct {
	queued
	cfg    WebhookConfig
	opts   Options
	client *http.Client
}

// NewWebhook builds a webhook channel with its queue.
func NewWebhook(cfg WebhookConfig, opts Options) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook channel: %w", err)
	}
	opts = opts.withDefaults()
	w := &Webhook{
		cfg:  cfg,
		opts: opts,
		client: &http.Client{
			Timeout: opts.Timeout,
			// A redirect could send the signed body somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	w.queued = queued{name: cfg.Name, q: newQueue(w.post, 0, opts, opts.Logger.Named("webhook").With("channel", cfg.Name)),
		// Every retry sends (and signs) the same body.
		render: func(n Notification) (any, error) { return WebhookBody(cfg.Name, cfg.Format, n, time.Now()) }}
	return w, nil
}

// Close stops accepting and delivers what is queued until ctx ends.
func (w *Webhook) Close(ctx context.Context) error { return w.q.close(ctx) }

// WebhookBody renders the JSON body a webhook of the given format receives
// for n, sent by the named channel, dated n.Time or now:
//
//   - gatehouse (or ""): WebhookPayload, text as given;
//   - slack: {"text": ...}, with & < > escaped as Slack requires and
//     mentions and Markdown links broken for Mattermost and Rocket.Chat;
//   - discord: {"content": ..., "allowed_mentions": {"parse": []}}, with
//     Markdown control characters escaped.
//
// The chat texts read "🔴 FIRING critical: <title>", one "Name: value" line
// per field, then the time; they stay within the service's length limit.
func WebhookBody(channel, format string, n Notification, now time.Time) ([]byte, error) {
	at := n.Time
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	var body []byte
	var err error
	switch format {
	case "", WebhookFormatGatehouse:
		fields := n.Fields
		if fields == nil {
			fields = []Field{}
		}
		body, err = json.Marshal(WebhookPayload{
			Version: WebhookPayloadVersion, Channel: channel, Key: n.Key, IncidentID: n.IncidentID,
			Kind: n.Kind, Severity: n.Severity, Title: n.Title, Fields: fields,
			OccurredAt: at.Format(time.RFC3339),
		})
	case WebhookFormatSlack:
		body, err = marshalChat(slackMessage{Text: chatText(n, at, slackStyle)})
	case WebhookFormatDiscord:
		body, err = marshalChat(discordMessage{Content: chatText(n, at, discordStyle),
			AllowedMentions: discordMentions{Parse: []string{}}})
	default:
		return nil, fmt.Errorf("webhook format %q is not one of gatehouse, slack, discord", truncate(format, 32))
	}
	if err != nil {
		return nil, fmt.Errorf("encoding webhook payload: %w", err)
	}
	return body, nil
}

// slackMessage is the body of a Slack-compatible incoming webhook.
type slackMessage struct {
	Text string `json:"text"`
}

// discordMessage is the body of a Discord webhook execution.
type discordMessage struct {
	Content         string          `json:"content"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

// discordMentions with an empty Parse list lets the message ping nobody,
// whatever its text says.
type discordMentions struct {
	Parse []string `json:"parse"`
}

// marshalChat encodes a chat body without HTML escaping: the receivers are
// chat services, not pages, and the text is escaped for them already. Word
// joiners are written as the escape \u2060, the same text to a JSON reader
// but visible to a person reading the body.
func marshalChat(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte(wordJoiner), []byte(`\u2060`)), nil
}

// chatStyle is how one chat service wants text.
type chatStyle struct {
	// escape makes one piece of caller text (already cleaned, one line)
	// show literally; it may assume the piece starts a line.
	escape func(string) string
	// budget is the longest text, in UTF-16 code units (what the services
	// count; never fewer than the runes).
	budget int
}

var (
	// Slack keeps 40,000 characters but folds long texts; Mattermost
	// installations before 5.0 and many proxies stop at 4,000.
	slackStyle = chatStyle{escape: slackEscape, budget: 4000}
	// Discord refuses content over 2,000 characters.
	discordStyle = chatStyle{escape: discordEscape, budget: 2000}
)

var chatHeadings = map[Kind]string{
	KindResolved: "✅ RESOLVED",
	KindRepeat:   "🔁 REMINDER",
	KindTest:     "🧪 TEST",
}

var firingMarks = map[Severity]string{
	SeverityCritical: "🔴",
	SeverityWarning:  "🟠",
	SeverityInfo:     "🔵",
}

// wordJoiner is an invisible character that keeps "@" from starting a
// mention and "]" from starting a link target in Markdown chats.
const wordJoiner = "\u2060"

// guardMentions puts a word joiner after every "@" that could start a
// mention (one not preceded by a letter or digit, so addresses stay intact)
// and after every "]", which breaks Markdown links, images and link
// definitions ("](", "][", "]:").
func guardMentions(s string) string {
	if !strings.ContainsAny(s, "@]") {
		return s
	}
	var b strings.Builder
	prev := ' '
	for _, r := range s {
		b.WriteRune(r)
		if r == ']' || (r == '@' && !unicode.IsLetter(prev) && !unicode.IsDigit(prev)) {
			b.WriteString(wordJoiner)
		}
		prev = r
	}
	return b.String()
}

var slackReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackEscape escapes the three characters Slack reserves for its control
// sequences (<!channel>, <@U123>, <https://x|label>), then guards mentions
// and Markdown links for the Slack-compatible services that read Markdown.
func slackEscape(s string) string { return guardMentions(slackReplacer.Replace(s)) }

// discordEscape puts a backslash before every character that Discord's
// Markdown reads as formatting anywhere (bold, italics, underline, strike,
// code, spoilers, masked links, <@mentions> and <t:...> tags) and before the
// ones that format at the start of a line (headings, quotes, lists), then
// guards mentions. A backslash before punctuation shows the punctuation
// alone, so the text reads as typed.
func discordEscape(s string) string {
	var b strings.Builder
	atStart := true // only white space so far
	digits := false // atStart, then only digits
	for _, r := range s {
		switch {
		case strings.ContainsRune("\\*_~`|<>[]()", r):
			b.WriteByte('\\')
		case atStart && strings.ContainsRune("#-+", r):
			b.WriteByte('\\')
		case digits && r == '.':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		switch {
		case atStart && (r == ' ' || r == '\t'):
		case (atStart || digits) && r >= '0' && r <= '9':
			digits = true
			atStart = false
			continue
		default:
			atStart = false
		}
		digits = false
	}
	return guardMentions(b.String())
}

// utf16Len counts s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// chatNoteRoom is kept free for the line that says how many fields did not fit.
const chatNoteRoom = 40

// chatText renders n as the plain text of a chat message in style: a heading
// with the kind, severity and title, one "Name: value" line per field (lines
// of a multi-line value follow, indented), a blank line, then the time and
// the incident. Fields that do not fit the budget are cut with an ellipsis or
// counted in a last line.
func chatText(n Notification, at time.Time, st chatStyle) string {
	heading, ok := chatHeadings[n.Kind]
	if n.Kind == KindFiring {
		heading, ok = firingMarks[n.Severity]+" FIRING", firingMarks[n.Severity] != ""
	}
	if !ok {
		heading = strings.ToUpper(oneLine(truncate(string(n.Kind), 16)))
	}
	head := heading + " " + st.escape(oneLine(truncate(string(n.Severity), 16))) + ": " +
		st.escape(oneLine(truncate(n.Title, MaxTitleRunes)))
	foot := "Time: " + at.Format(time.RFC3339)
	if n.IncidentID != "" {
		foot += "\nIncident: " + st.escape(oneLine(n.IncidentID))
	}
	// The heading and the footer always fit: at most 5 units per rune of a
	// 256-rune title.
	room := st.budget - utf16Len(head) - utf16Len(foot) - len("\n\n") - chatNoteRoom
	var b strings.Builder
	b.WriteString(head)
	for i, f := range n.Fields {
		name := oneLine(truncate(f.Name, MaxFieldNameRunes))
		value := clean(truncate(f.Value, MaxFieldRunes))
		block := chatField(st, name, value)
		if cost := 1 + utf16Len(block); cost <= room {
			b.WriteString("\n" + block)
			room -= cost
			continue
		}
		// Cut the value to what is left; a field whose name alone does not
		// fit is left out.
		left := len(n.Fields) - i
		if block, ok := fitChatField(st, name, value, room-1); ok {
			b.WriteString("\n" + block)
			left--
		}
		if left > 0 {
			fmt.Fprintf(&b, "\n… %d more fields not shown", left)
		}
		break
	}
	b.WriteString("\n\n" + foot)
	return b.String()
}

// chatField renders one field: "Name: first line" and the further lines of
// the value indented by two spaces, each escaped.
func chatField(st chatStyle, name, value string) string {
	lines := strings.Split(strings.TrimRight(value, "\n"), "\n")
	var b strings.Builder
	b.WriteString(strings.TrimRight(st.escape(name)+": "+st.escape(strings.TrimRight(lines[0], " \t")), " "))
	for _, l := range lines[1:] {
		b.WriteString("\n  " + st.escape(strings.TrimRight(l, " \t")))
	}
	return b.String()
}

// fitChatField renders the field with its value cut (with an ellipsis, at a
// rune boundary, before escaping, so no escape is split) to the longest
// prefix that fits max UTF-16 units. It reports false when not even the
// name fits.
func fitChatField(st chatStyle, name, value string, max int) (string, bool) {
	runes := []rune(value)
	render := func(k int) string {
		if k >= len(runes) {
			return chatField(st, name, value)
		}
		return chatField(st, name, string(runes[:k])+"…")
	}
	if utf16Len(render(0)) > max {
		return "", false
	}
	lo, hi := 0, len(runes) // render(lo) fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if utf16Len(render(mid)) <= max {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return render(lo), true
}

// maxRetryAfter bounds the wait an endpoint can ask for: a longer one would
// hold every later notification of the channel back.
const maxRetryAfter = 5 * time.Minute

// retryAfter is the wait a 429 answer asks for: the Retry-After header in
// seconds (fractional as Discord sends it) or as an HTTP date, else Discord's
// JSON {"retry_after": seconds}; rounded up to the millisecond and at most
// maxRetryAfter. Zero means none was given (the queue backs off).
func retryAfter(header string, body []byte, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if d, ok := retrySeconds(header); ok {
		return d
	}
	if t, err := http.ParseTime(header); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	var answer struct {
		RetryAfter json.Number `json:"retry_after"`
	}
	if json.Unmarshal(body, &answer) == nil {
		if d, ok := retrySeconds(answer.RetryAfter.String()); ok {
			return d
		}
	}
	return 0
}

// retrySeconds parses a positive number of seconds.
func retrySeconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 {
		return 0, false
	}
	if f >= maxRetryAfter.Seconds() {
		return maxRetryAfter, true
	}
	return time.Duration(math.Ceil(f*1000)) * time.Millisecond, true
}

// Sign returns the SignatureHeader value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header is the valid signature of body under
// secret, in constant time. Receivers use it on the raw request body.
func VerifySignature(secret string, body []byte, header string) bool {
	want := Sign(secret, body)
	return hmac.Equal([]byte(want), []byte(header))
}

func (w *Webhook) post(ctx context.Context, it *item) result {
	body := it.payload.([]byte)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: errors.New("building request failed"), permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Notify/1")
	req.Header.Set(DeliveryHeader, it.key)
	req.Header.Set(EventHeader, string(it.kind))
	if w.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.cfg.Secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may hold a secret path: keep the
		// cause only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
			return result{err: errors.New("request timed out")}
		}
		return result{err: fmt.Errorf("request failed: %s", truncate(err.Error(), maxErrorText))}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return result{}
	case resp.StatusCode == http.StatusTooManyRequests:
		return result{err: errors.New("endpoint answered 429 Too Many Requests"),
			retryAfter: retryAfter(resp.Header.Get("Retry-After"), answer, time.Now())}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return result{err: fmt.Errorf("endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	default:
		return result{err: fmt.Errorf("endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)), permanent: true}
	}
}
