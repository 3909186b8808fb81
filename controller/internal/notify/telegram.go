package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/hashicorp/go-hclog"
)

// DefaultTelegramAPI is the public Bot API endpoint.
const DefaultTelegramAPI = "https://api.telegram.org"

// TelegramConfig configures one bot. All destinations share the bot, its
// per-chat pacing and its single long-polling loop (Telegram allows only one
// getUpdates consumer per token).
type TelegramConfig struct {
	Token        string // bot token, "<bot id>:<secret>"; never logged or returned
	APIURL       string // Bot API base URL (DefaultTelegramAPI)
	Destinations []TelegramDestination
}

// TelegramDestination is one notification channel on a bot: a chat, and
// optionally a forum topic inside it.
type TelegramDestination struct {
	Channel string // channel name, unique within the bot
	ChatID  int64  // numeric chat id (negative for groups and channels)
	TopicID int    // forum topic (message_thread_id); 0 for none
	Silent  bool   // deliver without sound (disable_notification)
}

var (
	tokenRE       = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{30,80}$`)
	channelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)
)

// Validate checks the configuration; messages name the field and never
// include the token.
func (c TelegramConfig) Validate() error {
	var errs []error
	if !tokenRE.MatchString(c.Token) {
		errs = append(errs, errors.New("token: must look like 123456789:AA... as issued by @BotFather"))
	}
	if c.APIURL != "" {
		if err := validateBaseURL(c.APIURL); err != nil {
			errs = append(errs, fmt.Errorf("api_url: %w", err))
		}
	}
	if len(c.Destinations) == 0 {
		errs = append(errs, errors.New("destinations: at least one chat is required"))
	}
	names := map[string]bool{}
	for i, d := range c.Destinations {
		if !channelNameRE.MatchString(d.Channel) {
			errs = append(errs, fmt.Errorf("destinations[%d].channel: must be 1-64 characters of letters, digits, space and . _ -", i))
		} else if names[d.Channel] {
			errs = append(errs, fmt.Errorf("destinations[%d].channel: %q is used twice", i, d.Channel))
		}
		names[d.Channel] = true
		if d.ChatID == 0 {
			errs = append(errs, fmt.Errorf("destinations[%d].chat_id: required (a numeric chat id such as -1001234567890)", i))
		}
		if d.TopicID < 0 {
			errs = append(errs, fmt.Errorf("destinations[%d].topic_id: must be a positive topic id or 0 for none", i))
		}
	}
	return errors.Join(errs...)
}

func validateBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("scheme must be https or http")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be scheme://host[:port][/path] without credentials, query or fragment")
	}
	return nil
}

// Telegram sends notifications through one bot and, once Listen runs, obeys
// its buttons and commands.
type Telegram struct {
	token  string
	bot    *bot.Bot
	log    hclog.Logger
	opts   Options
	dests  map[string]*telegramChannel
	queues map[int64]*queue // one per chat
	byChat map[int64]*telegramChannel
	// chatChannels names every destination in a chat, sorted: a /status
	// there lists only the incidents routed to one of them.
	chatChannels map[int64][]string
	handler      *handlerBox

	listenMu  sync.Mutex
	listening bool
	username  string
}

type handlerBox struct {
	mu sync.RWMutex
	h  Handler
}

// NewTelegram builds the bot client and one paced queue per chat. It does not
// contact Telegram; the first request is the first delivery (or Listen).
func NewTelegram(cfg TelegramConfig, opts Options) (*Telegram, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("telegram channel: %w", err)
	}
	opts = opts.withDefaults()
	apiURL := strings.TrimRight(cfg.APIURL, "/")
	if apiURL == "" {
		apiURL = DefaultTelegramAPI
	}
	t := &Telegram{
		token:        cfg.Token,
		log:          opts.Logger.Named("telegram"),
		opts:         opts,
		dests:        map[string]*telegramChannel{},
		queues:       map[int64]*queue{},
		byChat:       map[int64]*telegramChannel{},
		chatChannels: map[int64][]string{},
		handler:      &handlerBox{},
	}
	// The client timeout must outlast a long poll; sends carry their own,
	// shorter deadline.
	client := &http.Client{Timeout: opts.PollTimeout + opts.Timeout}
	b, err := bot.New(cfg.Token,
		bot.WithServerURL(apiURL),
		// Construction must not depend on Telegram being reachable; Listen
		// calls getMe itself.
		bot.WithSkipGetMe(),
		bot.WithHTTPClient(opts.PollTimeout, client),
		bot.WithDefaultHandler(t.onUpdate),
		bot.WithErrorsHandler(t.onLibraryError),
		bot.WithDebugHandler(func(string, ...any) {}),
		bot.WithAllowedUpdates(bot.AllowedUpdates{"message", "callback_query"}),
		bot.WithNotAsyncHandlers(),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram channel: %s", t.scrub(err.Error()))
	}
	t.bot = b
	for _, d := range cfg.Destinations {
		if _, ok := t.queues[d.ChatID]; !ok {
			t.queues[d.ChatID] = newQueue(t.sendAttempt, opts.ChatInterval, opts, t.log.With("chat_id", d.ChatID))
		}
		// One queue per chat paces every destination in it.
		ch := &telegramChannel{t: t, dest: d, queued: queued{name: d.Channel, q: t.queues[d.ChatID], render: func(n Notification) (any, error) {
			return telegramMessage{chatID: d.ChatID, threadID: d.TopicID, silent: d.Silent, text: RenderTelegram(n), buttons: n.Buttons()}, nil
		}}}
		t.dests[d.Channel] = ch
		t.chatChannels[d.ChatID] = append(t.chatChannels[d.ChatID], d.Channel)
		slices.Sort(t.chatChannels[d.ChatID])
		if _, ok := t.byChat[d.ChatID]; !ok {
			t.byChat[d.ChatID] = ch
		}
	}
	return t, nil
}

// Channel returns the destination with the given name.
func (t *Telegram) Channel(name string) (Channel, bool) {
	ch, ok := t.dests[name]
	return ch, ok
}

// Channels returns all destinations, sorted by name.
func (t *Telegram) Channels() []Channel {
	out := make([]Channel, 0, len(t.dests))
	for _, ch := range t.dests {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Dropped counts notifications refused because a queue was full.
func (t *Telegram) Dropped() uint64 {
	var n uint64
	for _, q := range t.queues {
		n += q.dropped.Load()
	}
	return n
}

// Close stops accepting notifications and delivers what is queued, giving
// up when ctx ends.
func (t *Telegram) Close(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 0, len(t.queues))
	var mu sync.Mutex
	for _, q := range t.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// telegramMessage is a rendered message waiting in a chat queue.
type telegramMessage struct {
	chatID   int64
	threadID int
	silent   bool
	text     string
	buttons  []Button
}

// inlineKeyboard is the reply_markup sent with firing notifications. The
// library's own type would also send an empty copy_text action.
type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

func (t *Telegram) sendAttempt(ctx context.Context, it *item) result {
	m := it.payload.(telegramMessage)
	params := &bot.SendMessageParams{
		ChatID:              m.chatID,
		MessageThreadID:     m.threadID,
		Text:                m.text,
		ParseMode:           models.ParseModeHTML,
		DisableNotification: m.silent,
		// Values may contain attacker-chosen hostnames: never let Telegram
		// fetch previews of them.
		LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: bot.True()},
	}
	if len(m.buttons) > 0 {
		row := make([]inlineButton, 0, len(m.buttons))
		for _, b := range m.buttons {
			row = append(row, inlineButton{Text: b.Text, CallbackData: b.CallbackData()})
		}
		params.ReplyMarkup = inlineKeyboard{InlineKeyboard: [][]inlineButton{row}}
	}
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	_, err := t.bot.SendMessage(ctx, params)
	return t.classify(err)
}

// classify turns a library error into a retry decision with a scrubbed
// message.
func (t *Telegram) classify(err error) result {
	if err == nil {
		return result{}
	}
	safe := errors.New(t.scrub(err.Error()))
	var tooMany *bot.TooManyRequestsError
	if errors.As(err, &tooMany) {
		wait := time.Duration(tooMany.RetryAfter) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		return result{err: safe, retryAfter: wait}
	}
	var migrate *bot.MigrateError
	if errors.As(err, &migrate) {
		return result{err: fmt.Errorf("chat was upgraded to a supergroup with id %d; update the channel's chat id", migrate.MigrateToChatID), permanent: true}
	}
	for _, perm := range []error{bot.ErrorBadRequest, bot.ErrorUnauthorized, bot.ErrorForbidden, bot.ErrorNotFound} {
		if errors.Is(err, perm) {
			return result{err: safe, permanent: true}
		}
	}
	return result{err: safe}
}

// maxErrorText bounds error texts in records and logs.
const maxErrorText = 300

// scrub removes the bot token (and its secret half) from text that may have
// come from the library, which puts the token in request URLs.
func (t *Telegram) scrub(s string) string {
	s = strings.ReplaceAll(s, t.token, "<token>")
	if _, secret, ok := strings.Cut(t.token, ":"); ok && secret != "" {
		s = strings.ReplaceAll(s, secret, "<token>")
	}
	return truncate(s, maxErrorText)
}

func (t *Telegram) onLibraryError(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	t.log.Warn("telegram polling error", "error", t.scrub(err.Error()))
}

// telegramChannel is one destination of a bot.
type telegramChannel struct {
	queued
	t    *Telegram
	dest TelegramDestination
}
