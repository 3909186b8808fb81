package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// Handler is the alerting core as seen from chat: what buttons and commands
// do. by names the Telegram user ("@username" or "id:123") for the audit log.
// Status lists the firing incidents a chat may see: those routed to one of
// the named channels (the chat's destinations).
type Handler interface {
	Ack(ctx context.Context, incidentID, by string) error
	Silence(ctx context.Context, incidentID string, d time.Duration, by string) error
	Status(ctx context.Context, channels []string) ([]StatusLine, error)
}

// Listen long-polls Telegram for button presses and commands and dispatches
// them to h until ctx ends. Only updates from the configured chats are
// obeyed; anyone in such a chat may press the buttons. Other updates are
// ignored and logged with their chat id and type only.
func (t *Telegram) Listen(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("telegram listen: handler is required")
	}
	t.listenMu.Lock()
	if t.listening {
		t.listenMu.Unlock()
		return errors.New("telegram listen: already listening (Telegram allows one poller per bot)")
	}
	t.listening = true
	t.listenMu.Unlock()
	defer func() {
		t.listenMu.Lock()
		t.listening = false
		t.listenMu.Unlock()
	}()

	me, err := t.getMe(ctx)
	if err != nil {
		return err
	}
	t.handler.mu.Lock()
	t.handler.h = h
	t.username = me.Username
	t.handler.mu.Unlock()
	t.log.Info("listening for telegram commands", "bot", me.Username, "chats", len(t.byChat))
	t.bot.Start(ctx)
	return nil
}

// getMe learns the bot's username (to recognise "/status@name" in groups),
// retrying transient failures until ctx ends.
func (t *Telegram) getMe(ctx context.Context) (*models.User, error) {
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
		me, err := t.bot.GetMe(rctx)
		cancel()
		if err == nil {
			return me, nil
		}
		res := t.classify(err)
		if res.permanent {
			return nil, fmt.Errorf("telegram listen: bot refused: %w", res.err)
		}
		wait := res.retryAfter
		if wait <= 0 {
			wait = backoff(t.opts.RetryBase, t.opts.RetryMax, attempt)
		}
		t.log.Warn("telegram getMe failed, retrying", "retry_in", wait, "error", res.err)
		if !sleep(ctx, wait) {
			return nil, fmt.Errorf("telegram listen: %w", ctx.Err())
		}
	}
}

func (t *Telegram) currentHandler() (Handler, string) {
	t.handler.mu.RLock()
	defer t.handler.mu.RUnlock()
	return t.handler.h, t.username
}

func (t *Telegram) onUpdate(ctx context.Context, _ *bot.Bot, u *models.Update) {
	h, username := t.currentHandler()
	if h == nil {
		return
	}
	switch {
	case u.CallbackQuery != nil:
		t.onCallback(ctx, h, u.CallbackQuery)
	case u.Message != nil:
		t.onMessage(ctx, h, username, u.Message)
	default:
		t.log.Debug("ignoring telegram update of unhandled type", "update_id", u.ID)
	}
}

func (t *Telegram) allowed(chatID int64, kind string) bool {
	if _, ok := t.byChat[chatID]; ok {
		return true
	}
	t.log.Warn("ignoring telegram update from unconfigured chat", "chat_id", chatID, "type", kind)
	return false
}

func (t *Telegram) onCallback(ctx context.Context, h Handler, q *models.CallbackQuery) {
	var chatID int64
	switch {
	case q.Message.Message != nil:
		chatID = q.Message.Message.Chat.ID
	case q.Message.InaccessibleMessage != nil:
		chatID = q.Message.InaccessibleMessage.Chat.ID
	default:
		t.log.Warn("ignoring telegram callback query without a chat", "type", "callback_query")
		return
	}
	if !t.allowed(chatID, "callback_query") {
		return
	}
	by := actor(q.From)
	action, id, err := ParseCallbackData(q.Data)
	if err == nil && !notifies(q.Message.Message, id) {
		err = errors.New("callback data: names another incident than the message it came with")
	}
	var answer string
	switch {
	case err != nil && q.Message.Message == nil:
		// Telegram no longer shows the bot the message, so its incident cannot be checked.
		t.log.Warn("refusing telegram button on a message too old to check", "chat_id", chatID, "by", by)
		answer = "This notification is too old for its buttons; use a newer one or the web UI."
	case err != nil:
		t.log.Warn("refusing telegram button", "chat_id", chatID, "by", by, "error", err)
		answer = "This button is not valid."
	case action == ActionAck:
		if err := h.Ack(ctx, id, by); err != nil {
			t.log.Warn("acknowledging from telegram failed", "incident", id, "by", by, "error", err)
			answer = "Could not acknowledge incident " + id + "."
		} else {
			t.log.Info("incident acknowledged from telegram", "incident", id, "by", by)
			answer = "Incident " + id + " acknowledged."
		}
	case action == ActionSilence:
		if err := h.Silence(ctx, id, SilenceDuration, by); err != nil {
			t.log.Warn("silencing from telegram failed", "incident", id, "by", by, "error", err)
			answer = "Could not silence incident " + id + "."
		} else {
			t.log.Info("incident silenced from telegram", "incident", id, "by", by, "for", SilenceDuration)
			answer = "Incident " + id + " silenced for 1 h."
		}
	}
	rctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	if _, err := t.bot.AnswerCallbackQuery(rctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: q.ID, Text: answer}); err != nil {
		t.log.Warn("answering telegram button failed", "chat_id", chatID, "error", t.scrub(err.Error()))
	}
}

// notifies reports whether m is a notification about incident id, which
// RenderTelegram ends with "incident <id>". A client may send any callback
// data with any message of the bot, so data is obeyed only with the message
// its buttons were sent with; a message Telegram no longer shows the bot
// (deleted or too old) cannot be checked and is refused.
func notifies(m *models.Message, id string) bool {
	return m != nil && strings.HasSuffix(m.Text, "\nincident "+id)
}

// maxCommandLen bounds the text we look at for commands.
const maxCommandLen = 64

func (t *Telegram) onMessage(ctx context.Context, h Handler, username string, m *models.Message) {
	if !t.allowed(m.Chat.ID, "message") {
		return
	}
	if !isCommand(m.Text, "status", username) {
		return
	}
	lines, err := h.Status(ctx, t.chatChannels[m.Chat.ID])
	text := RenderStatus(lines)
	if err != nil {
		t.log.Warn("status for telegram failed", "chat_id", m.Chat.ID, "error", err)
		text = "⚠️ Status is not available right now."
	}
	dest := t.byChat[m.Chat.ID]
	thread := 0
	if m.IsTopicMessage {
		thread = m.MessageThreadID
	}
	it := &item{
		channel: dest.dest.Channel,
		key:     fmt.Sprintf("status:%d:%d", m.Chat.ID, m.ID),
		kind:    KindStatus,
		payload: telegramMessage{chatID: m.Chat.ID, threadID: thread, text: text},
	}
	if err := t.queues[m.Chat.ID].enqueue(it); err != nil {
		t.log.Warn("status reply not queued", "chat_id", m.Chat.ID, "error", err)
	}
}

// isCommand reports whether text is "/name" or "/name@username" (the form
// used in groups), optionally followed by arguments.
func isCommand(text, name, username string) bool {
	if len(text) > maxCommandLen {
		text = text[:maxCommandLen]
	}
	word, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	cmd, to, addressed := strings.Cut(word, "@")
	if cmd != "/"+name {
		return false
	}
	return !addressed || (username != "" && strings.EqualFold(to, username))
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// actor names a Telegram user safely: the username only when it is well
// formed, else the numeric id.
func actor(u models.User) string {
	if usernameRE.MatchString(u.Username) {
		return "@" + u.Username
	}
	return "id:" + strconv.FormatInt(u.ID, 10)
}
