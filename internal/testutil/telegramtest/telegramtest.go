// Package telegramtest plays the Telegram Bot API on loopback for tests.
//
// The server implements the methods Gatehouse uses (getMe, sendMessage, getUpdates,
// answerCallbackQuery, deleteWebhook) and checks every request the way Telegram
// would: the token in the path, the method name, the presence and shape of each
// parameter, the HTML of message texts and the inline keyboards. Requests that
// break the protocol are answered with the error Telegram would give and are kept
// as violations; unless AllowViolations is called, every violation fails the test
// when it ends. Tests can script rate limiting (429 with retry_after), outages
// (502 or connection refused) and incoming updates for long polling.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BotUsername is the username getMe reports for the fake bot.
const BotUsername = "gatehouse_test_bot"

// WaitTimeout bounds how long Wait blocks before failing the test.
const WaitTimeout = 20 * time.Second

var tokenRE = regexp.MustCompile(`^([0-9]{1,20}):[A-Za-z0-9_-]{30,80}$`)

// Request is one HTTP request as the server saw it.
type Request struct {
	Method  string            // Bot API method as written in the path, "" if the path was unusable
	Time    time.Time         // arrival
	Params  map[string]string // all parameters, whatever the encoding
	Status  int               // HTTP status answered
	Problem string            // why the request was refused; "" when it was accepted
}

// Button is one inline keyboard button of a sent message.
type Button struct {
	Text         string
	CallbackData string
	URL          string
}

// Message is a message the server accepted through sendMessage.
type Message struct {
	ID       int
	ChatID   int64
	ThreadID int
	HTML     string // text as sent
	Plain    string // text as a Telegram client would show it (tags removed, entities decoded)
	Silent   bool
	Keyboard [][]Button
	Time     time.Time
}

// Answer is an accepted answerCallbackQuery.
type Answer struct {
	QueryID   string
	Text      string
	ShowAlert bool
	Time      time.Time
}

// User is the sender of a scripted update.
type User struct {
	ID        int64
	Username  string
	FirstName string
}

type chatConf struct {
	kind  string
	topic int
}

type update struct {
	id      int64
	payload map[string]any
}

type queryState struct {
	chatID   int64
	answered bool
}

// Server is a fake Bot API endpoint bound to 127.0.0.1.
type Server struct {
	tb    testing.TB
	token string
	botID int64

	mu              sync.Mutex
	addr            string
	srv             *http.Server
	allowViolations bool
	badGateway      bool
	chats           map[int64]chatConf
	limits          []int               // retry_after values for the next sendMessage calls
	limitedUntil    map[int64]time.Time // per chat, while a 429 is in force
	requests        []Request
	messages        []Message
	answers         []Answer
	violations      []string
	updates         []update
	nextUpdate      int64
	nextMessage     int
	nextQuery       int
	queries         map[string]*queryState
	changed         chan struct{}
	closed          bool
	polling         int // getUpdates calls waiting for updates
}

// New starts a fake Bot API for the given token and stops it when the test ends.
// The token must look like a real one ("<digits>:<secret>").
func New(tb testing.TB, token string) *Server {
	tb.Helper()
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		tb.Fatalf("telegramtest: token %q does not look like a bot token", token)
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		tb.Fatalf("telegramtest: bot id: %v", err)
	}
	s := &Server{
		tb:           tb,
		token:        token,
		botID:        id,
		chats:        map[int64]chatConf{},
		limitedUntil: map[int64]time.Time{},
		queries:      map[string]*queryState{},
		changed:      make(chan struct{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("telegramtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	tb.Cleanup(s.close)
	return s
}

// URL is the base URL to give the bot library (bot.WithServerURL).
func (s *Server) URL() string { return "http://" + s.addr }

// Token is the only token the server accepts.
func (s *Server) Token() string { return s.token }

// AddChat makes a chat known. Sending to an unknown chat is answered "chat not
// found". kind is "private", "group", "supergroup" or "channel". A non-zero
// topic makes the chat a forum: every sendMessage to it must then carry exactly
// that message_thread_id, and a message without one is a violation.
func (s *Server) AddChat(id int64, kind string, topic int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chats[id] = chatConf{kind: kind, topic: topic}
}

// AllowViolations keeps protocol violations from failing the test, for tests
// that provoke them on purpose. Violations remain readable via Violations.
func (s *Server) AllowViolations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowViolations = true
}

// RateLimit answers the next sendMessage with 429 and retry_after seconds. Until
// that time has passed, further sendMessage calls to the same chat get 429 too
// (with the remaining seconds), as Telegram does; those are recorded requests
// with status 429, so a test can prove the client waited.
func (s *Server) RateLimit(retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, retryAfter)
}

// SetBadGateway makes every request fail with 502 and an HTML body that
// repeats the request path, token included (as when a proxy in front of the
// API is up but the API is not), until called with false.
func (s *Server) SetBadGateway(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badGateway = on
	s.notifyLocked()
}

// Stop closes the listener and every connection: clients get "connection
// refused" until Start is called.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.notifyLocked()
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start listens again on the same address after Stop.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.tb.Fatalf("telegramtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.srv = nil
	s.notifyLocked()
	violations := append([]string(nil), s.violations...)
	allow := s.allowViolations
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	if !allow {
		for _, v := range violations {
			s.tb.Errorf("telegramtest: protocol violation: %s", v)
		}
	}
}

// PushMessage queues a text message update from the given chat for getUpdates;
// a non-zero topic marks it as written in that forum topic.
func (s *Server) PushMessage(chatID int64, chatType string, topic int, from User, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextMessage++
	msg := map[string]any{
		"message_id": s.nextMessage,
		"date":       time.Now().Unix(),
		"chat":       map[string]any{"id": chatID, "type": chatType},
		"from":       userJSON(from),
		"text":       text,
	}
	if topic != 0 {
		msg["message_thread_id"] = topic
		msg["is_topic_message"] = true
		msg["chat"].(map[string]any)["is_forum"] = true
	}
	s.pushLocked(map[string]any{"message": msg})
}

// PushCallback queues a callback query, as if from pressed a button with the
// given callback data under the most recent message sent to chatID. It returns
// the query id the client must answer.
func (s *Server) PushCallback(chatID int64, chatType string, from User, data string) string {
	return s.pushCallback(chatID, chatType, from, data, false)
}

// PushOldCallback is PushCallback under a message Telegram no longer shows
// the bot: it arrives as an inaccessible message (date 0, no text).
func (s *Server) PushOldCallback(chatID int64, chatType string, from User, data string) string {
	return s.pushCallback(chatID, chatType, from, data, true)
}

func (s *Server) pushCallback(chatID int64, chatType string, from User, data string, old bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := map[string]any{
		"message_id": 1,
		"date":       time.Now().Unix(),
		"chat":       map[string]any{"id": chatID, "type": chatType},
		"text":       "",
	}
	for i := len(s.messages) - 1; i >= 0; i-- {
		if m := s.messages[i]; m.ChatID == chatID {
			msg["message_id"] = m.ID
			msg["text"] = m.Plain
			if m.ThreadID != 0 {
				msg["message_thread_id"] = m.ThreadID
				msg["is_topic_message"] = true
			}
			break
		}
	}
	if old {
		msg = map[string]any{"message_id": msg["message_id"], "date": 0, "chat": msg["chat"]}
	}
	s.nextQuery++
	id := fmt.Sprintf("q%d", s.nextQuery)
	s.queries[id] = &queryState{chatID: chatID}
	s.pushLocked(map[string]any{"callback_query": map[string]any{
		"id":            id,
		"from":          userJSON(from),
		"message":       msg,
		"chat_instance": fmt.Sprintf("ci%d", chatID),
		"data":          data,
	}})
	return id
}

func userJSON(u User) map[string]any {
	m := map[string]any{"id": u.ID, "is_bot": false, "first_name": u.FirstName}
	if u.FirstName == "" {
		m["first_name"] = "user"
	}
	if u.Username != "" {
		m["username"] = u.Username
	}
	return m
}

func (s *Server) pushLocked(payload map[string]any) {
	s.nextUpdate++
	payload["update_id"] = s.nextUpdate
	s.updates = append(s.updates, update{id: s.nextUpdate, payload: payload})
	s.notifyLocked()
}

// PendingUpdates is how many pushed updates no getUpdates offset has confirmed.
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// Requests returns a copy of every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// RequestsFor returns the requests for one method.
func (s *Server) RequestsFor(method string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if strings.EqualFold(r.Method, method) {
			out = append(out, r)
		}
	}
	return out
}

// Messages returns the accepted sendMessage calls in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Answers returns the accepted answerCallbackQuery calls in order.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Violations returns the protocol violations seen so far.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Wait blocks until cond returns true, re-checking after every request and
// state change, and fails the test after WaitTimeout.
func (s *Server) Wait(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("telegramtest: timed out after %s waiting for %s", WaitTimeout, what)
			return
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is a refusal in Telegram's shape.
type apiError struct {
	status     int
	desc       string
	retryAfter int
	violation  bool
}

func violation(status int, format string, args ...any) *apiError {
	return &apiError{status: status, desc: fmt.Sprintf(format, args...), violation: true}
}

func refusal(status int, format string, args ...any) *apiError {
	return &apiError{status: status, desc: fmt.Sprintf(format, args...)}
}

var pathRE = regexp.MustCompile(`^/bot([^/]*)/([A-Za-z]+)$`)

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: time.Now(), Params: map[string]string{}}
	result, aerr := s.process(r, &rec)

	s.mu.Lock()
	switch {
	case aerr != nil && aerr.status == http.StatusBadGateway:
		rec.Status = http.StatusBadGateway
		rec.Problem = "bad gateway (scripted)"
	case aerr != nil:
		rec.Status = aerr.status
		rec.Problem = aerr.desc
		if aerr.violation {
			s.violations = append(s.violations, fmt.Sprintf("%s: %s", rec.Method, aerr.desc))
		}
	default:
		rec.Status = http.StatusOK
	}
	s.requests = append(s.requests, rec)
	s.notifyLocked()
	s.mu.Unlock()

	switch {
	case aerr != nil && aerr.status == http.StatusBadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		// Like many proxies, the error page repeats the request line, which
		// carries the token: clients must not pass such bodies on verbatim.
		_, _ = fmt.Fprintf(w, "<html><body><h1>502 Bad Gateway</h1><p>%s %s</p></body></html>\n", r.Method, html.EscapeString(r.URL.Path))
	case aerr != nil:
		body := map[string]any{"ok": false, "error_code": aerr.status, "description": aerr.desc}
		if aerr.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": aerr.retryAfter}
		}
		writeJSON(w, aerr.status, body)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
	}
}

func (s *Server) isBadGateway() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badGateway
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) process(r *http.Request, rec *Request) (any, *apiError) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m != nil {
		rec.Method = m[2]
	}
	if s.isBadGateway() {
		return nil, &apiError{status: http.StatusBadGateway}
	}
	if m == nil {
		return nil, violation(http.StatusNotFound, "Not Found: path %q is not /bot<token>/<method>", r.URL.Path)
	}
	if m[1] != s.token {
		return nil, violation(http.StatusUnauthorized, "Unauthorized")
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, violation(http.StatusMethodNotAllowed, "Method Not Allowed: %s", r.Method)
	}
	params, err := readParams(r)
	if errors.Is(err, errAborted) {
		// The client gave up mid-request (its context ended): not a protocol error.
		return nil, refusal(http.StatusBadRequest, "Bad Request: %v", err)
	}
	if err != nil {
		return nil, violation(http.StatusBadRequest, "Bad Request: %v", err)
	}
	rec.Params = params
	switch strings.ToLower(rec.Method) {
	case "getme":
		return s.getMe(params)
	case "sendmessage":
		return s.sendMessage(params)
	case "getupdates":
		return s.getUpdates(r.Context(), params)
	case "answercallbackquery":
		return s.answerCallbackQuery(params)
	case "deletewebhook":
		if err := checkKnown(params, "drop_pending_updates"); err != nil {
			return nil, err
		}
		if err := checkBool(params, "drop_pending_updates"); err != nil {
			return nil, err
		}
		return true, nil
	default:
		return nil, violation(http.StatusNotFound, "Not Found: method %q is not implemented by this server", rec.Method)
	}
}

// errAborted marks a body that ended early because the client hung up.
var errAborted = errors.New("request body cut short")

// readParams collects parameters from the query string and from a
// multipart, urlencoded or JSON body, as the Bot API accepts all of them.
func readParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		if len(body) != 0 {
			return nil, errors.New("body without Content-Type")
		}
		return out, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("content type %q: %w", ct, err)
	}
	switch mt {
	case "multipart/form-data":
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errAborted, err)
		}
		if len(body) == 0 {
			// Clients send methods without parameters as an empty body.
			return out, nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, fmt.Errorf("multipart body: %w", err)
		}
		if len(r.MultipartForm.File) != 0 {
			return nil, errors.New("unexpected file upload")
		}
		for k, v := range r.MultipartForm.Value {
			if len(v) != 1 {
				return nil, fmt.Errorf("parameter %s given %d times", k, len(v))
			}
			out[k] = v[0]
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		for k, v := range r.PostForm {
			out[k] = v[0]
		}
	case "application/json":
		var obj map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&obj); err != nil {
			return nil, fmt.Errorf("json body: %w", err)
		}
		for k, raw := range obj {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				out[k] = str
			} else {
				out[k] = string(raw)
			}
		}
	default:
		return nil, fmt.Errorf("unsupported content type %q", mt)
	}
	return out, nil
}

func checkKnown(p map[string]string, known ...string) *apiError {
	for k := range p {
		ok := false
		for _, n := range known {
			if k == n {
				ok = true
				break
			}
		}
		if !ok {
			return violation(http.StatusBadRequest, "Bad Request: unknown parameter %q", k)
		}
	}
	return nil
}

func checkBool(p map[string]string, name string) *apiError {
	if v, ok := p[name]; ok && v != "true" && v != "false" {
		return violation(http.StatusBadRequest, "Bad Request: %s must be true or false, got %q", name, v)
	}
	return nil
}

func checkInt(p map[string]string, name string, lo, hi int64) (int64, *apiError) {
	v, ok := p[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, violation(http.StatusBadRequest, "Bad Request: %s must be an integer in [%d, %d], got %q", name, lo, hi, v)
	}
	return n, nil
}

func (s *Server) getMe(p map[string]string) (any, *apiError) {
	if len(p) != 0 {
		return nil, violation(http.StatusBadRequest, "Bad Request: getMe takes no parameters")
	}
	return map[string]any{
		"id": s.botID, "is_bot": true, "first_name": "Gatehouse Test", "username": BotUsername,
		"can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
	}, nil
}

var usernameChatRE = regexp.MustCompile(`^@[A-Za-z][A-Za-z0-9_]{4,31}$`)

func (s *Server) sendMessage(p map[string]string) (any, *apiError) {
	if err := checkKnown(p, "chat_id", "message_thread_id", "text", "parse_mode", "link_preview_options",
		"disable_notification", "protect_content", "reply_markup", "reply_parameters"); err != nil {
		return nil, err
	}
	rawChat, ok := p["chat_id"]
	if !ok || rawChat == "" {
		return nil, violation(http.StatusBadRequest, "Bad Request: chat_id is empty")
	}
	chatID, err := strconv.ParseInt(rawChat, 10, 64)
	if err != nil {
		if usernameChatRE.MatchString(rawChat) {
			return nil, refusal(http.StatusBadRequest, "Bad Request: chat not found")
		}
		return nil, violation(http.StatusBadRequest, "Bad Request: chat_id %q is neither an integer nor @username", rawChat)
	}
	text, ok := p["text"]
	if !ok {
		return nil, violation(http.StatusBadRequest, "Bad Request: text is missing")
	}
	if p["parse_mode"] != "HTML" {
		return nil, violation(http.StatusBadRequest, "Bad Request: parse_mode must be HTML, got %q", p["parse_mode"])
	}
	plain, perr := ParseHTML(text)
	if perr != nil {
		return nil, violation(http.StatusBadRequest, "Bad Request: can't parse entities: %v", perr)
	}
	if strings.TrimSpace(plain) == "" {
		return nil, violation(http.StatusBadRequest, "Bad Request: message text is empty")
	}
	if n := utf16Len(plain); n > 4096 {
		return nil, violation(http.StatusBadRequest, "Bad Request: message is too long (%d UTF-16 units)", n)
	}
	thread, aerr := checkInt(p, "message_thread_id", 1, 1<<31-1)
	if aerr != nil {
		return nil, aerr
	}
	for _, b := range []string{"disable_notification", "protect_content"} {
		if aerr := checkBool(p, b); aerr != nil {
			return nil, aerr
		}
	}
	if v, ok := p["link_preview_options"]; ok {
		var lp map[string]any
		if err := json.Unmarshal([]byte(v), &lp); err != nil {
			return nil, violation(http.StatusBadRequest, "Bad Request: link_preview_options is not a JSON object: %v", err)
		}
	}
	var keyboard [][]Button
	if v, ok := p["reply_markup"]; ok {
		kb, err := parseInlineKeyboard(v)
		if err != nil {
			return nil, violation(http.StatusBadRequest, "Bad Request: reply_markup: %v", err)
		}
		keyboard = kb
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	chat, known := s.chats[chatID]
	if !known {
		return nil, refusal(http.StatusBadRequest, "Bad Request: chat not found")
	}
	if chat.topic != 0 && int(thread) != chat.topic {
		return nil, violation(http.StatusBadRequest, "Bad Request: chat %d is configured for message_thread_id %d, got %q", chatID, chat.topic, p["message_thread_id"])
	}
	if chat.topic == 0 && thread != 0 {
		return nil, violation(http.StatusBadRequest, "Bad Request: message thread not found (chat %d has no topics)", chatID)
	}
	now := time.Now()
	if until, ok := s.limitedUntil[chatID]; ok && now.Before(until) {
		left := int(until.Sub(now)/time.Second) + 1
		return nil, &apiError{status: http.StatusTooManyRequests, desc: fmt.Sprintf("Too Many Requests: retry after %d", left), retryAfter: left}
	}
	if len(s.limits) > 0 {
		ra := s.limits[0]
		s.limits = s.limits[1:]
		s.limitedUntil[chatID] = now.Add(time.Duration(ra) * time.Second)
		return nil, &apiError{status: http.StatusTooManyRequests, desc: fmt.Sprintf("Too Many Requests: retry after %d", ra), retryAfter: ra}
	}
	s.nextMessage++
	msg := Message{
		ID: s.nextMessage, ChatID: chatID, ThreadID: int(thread), HTML: text, Plain: plain,
		Silent: p["disable_notification"] == "true", Keyboard: keyboard, Time: now,
	}
	s.messages = append(s.messages, msg)
	out := map[string]any{
		"message_id": msg.ID,
		"date":       now.Unix(),
		"from":       map[string]any{"id": s.botID, "is_bot": true, "first_name": "Gatehouse Test", "username": BotUsername},
		"chat":       map[string]any{"id": chatID, "type": chat.kind},
		"text":       plain,
	}
	if thread != 0 {
		out["message_thread_id"] = thread
		out["is_topic_message"] = true
	}
	return out, nil
}

var buttonActions = []string{"url", "callback_data", "web_app", "login_url", "switch_inline_query",
	"switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay"}

func parseInlineKeyboard(raw string) ([][]Button, error) {
	var markup struct {
		InlineKeyboard [][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&markup); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if markup.InlineKeyboard == nil {
		return nil, errors.New("only inline_keyboard markup is expected")
	}
	var out [][]Button
	for i, row := range markup.InlineKeyboard {
		if len(row) == 0 {
			return nil, fmt.Errorf("row %d is empty", i)
		}
		var brow []Button
		for j, fields := range row {
			var b Button
			if err := json.Unmarshal(fields["text"], &b.Text); err != nil || strings.TrimSpace(b.Text) == "" {
				return nil, fmt.Errorf("button [%d][%d]: text must be a non-empty string", i, j)
			}
			actions := 0
			for _, a := range buttonActions {
				if _, ok := fields[a]; ok {
					actions++
				}
			}
			if actions != 1 {
				return nil, fmt.Errorf("button [%d][%d]: exactly one action field is required, got %d", i, j, actions)
			}
			if v, ok := fields["callback_data"]; ok {
				if err := json.Unmarshal(v, &b.CallbackData); err != nil || len(b.CallbackData) < 1 || len(b.CallbackData) > 64 {
					return nil, fmt.Errorf("button [%d][%d]: callback_data must be a string of 1-64 bytes", i, j)
				}
			}
			if v, ok := fields["url"]; ok {
				if err := json.Unmarshal(v, &b.URL); err != nil {
					return nil, fmt.Errorf("button [%d][%d]: url must be a string", i, j)
				}
				if u, err := url.Parse(b.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "tg") {
					return nil, fmt.Errorf("button [%d][%d]: unsupported url %q", i, j, b.URL)
				}
			}
			brow = append(brow, b)
		}
		out = append(out, brow)
	}
	return out, nil
}

func (s *Server) getUpdates(ctx context.Context, p map[string]string) (any, *apiError) {
	if err := checkKnown(p, "offset", "limit", "timeout", "allowed_updates"); err != nil {
		return nil, err
	}
	offset, aerr := checkInt(p, "offset", -1<<62, 1<<62)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := checkInt(p, "limit", 1, 100)
	if aerr != nil {
		return nil, aerr
	}
	if limit == 0 {
		limit = 100
	}
	timeout, aerr := checkInt(p, "timeout", 0, 3600)
	if aerr != nil {
		return nil, aerr
	}
	if v, ok := p["allowed_updates"]; ok {
		var kinds []string
		if err := json.Unmarshal([]byte(v), &kinds); err != nil {
			return nil, violation(http.StatusBadRequest, "Bad Request: allowed_updates must be a JSON array of strings: %v", err)
		}
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	waiting := false
	for {
		s.mu.Lock()
		// Confirming: updates below offset are forgotten.
		kept := s.updates[:0]
		for _, u := range s.updates {
			if u.id >= offset {
				kept = append(kept, u)
			}
		}
		s.updates = kept
		var batch []map[string]any
		for _, u := range s.updates {
			if int64(len(batch)) == limit {
				break
			}
			batch = append(batch, u.payload)
		}
		if len(batch) > 0 {
			s.mu.Unlock()
			return batch, nil
		}
		if s.closed || s.srv == nil {
			s.mu.Unlock()
			return []map[string]any{}, nil
		}
		if !waiting {
			// Announce the waiting poll once; Polling() sees it.
			waiting = true
			s.polling++
			s.notifyLocked()
			defer func() {
				s.mu.Lock()
				s.polling--
				s.mu.Unlock()
			}()
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return []map[string]any{}, nil
		case <-ctx.Done():
			return []map[string]any{}, nil
		}
	}
}

// Polling is how many getUpdates long polls are waiting right now.
func (s *Server) Polling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

func (s *Server) answerCallbackQuery(p map[string]string) (any, *apiError) {
	if err := checkKnown(p, "callback_query_id", "text", "show_alert", "url", "cache_time"); err != nil {
		return nil, err
	}
	id := p["callback_query_id"]
	if id == "" {
		return nil, violation(http.StatusBadRequest, "Bad Request: callback_query_id is empty")
	}
	if aerr := checkBool(p, "show_alert"); aerr != nil {
		return nil, aerr
	}
	if _, aerr := checkInt(p, "cache_time", 0, 1<<31-1); aerr != nil {
		return nil, aerr
	}
	if n := utf16Len(p["text"]); n > 200 {
		return nil, violation(http.StatusBadRequest, "Bad Request: callback answer text is %d units long, at most 200 allowed", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queries[id]
	if !ok || q.answered {
		return nil, violation(http.StatusBadRequest, "Bad Request: query is too old and response timeout expired or query ID is invalid")
	}
	q.answered = true
	s.answers = append(s.answers, Answer{QueryID: id, Text: p["text"], ShowAlert: p["show_alert"] == "true", Time: time.Now()})
	return true, nil
}
