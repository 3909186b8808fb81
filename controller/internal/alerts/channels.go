package alerts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/notification"
	"github.com/gatehousehq/gatehouse/ent/notificationchannel"
)

// ChannelsOptions configure Channels.
type ChannelsOptions struct {
	// TelegramAPI is the Bot API base URL (notify.DefaultTelegramAPI).
	TelegramAPI string
	// Notify tunes delivery (pacing, retries); Logger and Recorder are set here.
	Notify notify.Options
	Audit  *audit.Recorder
}

// Channels builds the notify channels from their stored configuration,
// runs one long-polling listener per Telegram bot, and records every
// delivery attempt as a Notification row.
type Channels struct {
	db   *store.DB
	box  *secrets.Box
	log  hclog.Logger
	opts ChannelsOptions

	records chan notify.Delivery

	// reloadMu serialises Reload from reading the channels to swapping them
	// in, so a slower, older reload can never replace a newer set.
	reloadMu sync.Mutex

	mu       sync.Mutex
	byID     map[int]notify.Channel
	idByName map[string]int
	closers  []func(context.Context) error
	stop     context.CancelFunc
	handler  notify.Handler
	ctx      context.Context
	listens  sync.WaitGroup
}

// NewChannels returns an empty set; Reload builds it.
func NewChannels(db *store.DB, box *secrets.Box, log hclog.Logger, opts ChannelsOptions) *Channels {
	if opts.TelegramAPI == "" {
		opts.TelegramAPI = notify.DefaultTelegramAPI
	}
	return &Channels{db: db, box: box, log: log.Named("channels"), opts: opts,
		records: make(chan notify.Delivery, 4096), byID: map[int]notify.Channel{}, idByName: map[string]int{}}
}

// secretAAD binds a sealed channel secret to its channel.
func secretAAD(id int) []byte { return []byte("notification_channel:" + strconv.Itoa(id)) }

// Run records deliveries and serves the Telegram listeners with h until ctx
// ends, then closes the channels.
func (c *Channels) Run(ctx context.Context, h notify.Handler) {
	c.mu.Lock()
	c.ctx, c.handler = ctx, h
	c.mu.Unlock()
	if err := c.Reload(ctx); err != nil {
		c.log.Error("building notification channels", "error", err)
	}
	for {
		select {
		case d := <-c.records:
			c.store(ctx, d)
		case <-ctx.Done():
			c.mu.Lock()
			closers, stop := c.closers, c.stop
			c.closers, c.stop = nil, nil
			c.mu.Unlock()
			if stop != nil {
				stop()
			}
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			for _, cl := range closers {
				cl(shut)
			}
			cancel()
			c.listens.Wait()
			for {
				select {
				case d := <-c.records:
					c.store(shut, d)
				default:
					return
				}
			}
		}
	}
}

func (c *Channels) store(ctx context.Context, d notify.Delivery) {
	c.mu.Lock()
	id := c.idByName[d.Channel]
	c.mu.Unlock()
	incID := 0
	if before, _, ok := strings.Cut(d.Key, ":"); ok {
		incID, _ = strconv.Atoi(before)
	}
	err := c.db.Client.Notification.Create().SetAt(d.At).SetChannelID(id).SetChannel(clip(d.Channel, 64)).
		SetIncidentID(incID).SetKey(clip(d.Key, 128)).SetKind(string(d.Kind)).SetAttempt(d.Attempt).
		SetOutcome(string(d.Outcome)).SetError(clip(d.Error, 1000)).Exec(context.WithoutCancel(ctx))
	if err != nil {
		c.log.Error("recording a delivery", "channel", d.Channel, "error", err)
	}
}

// Reload rebuilds every channel from the database. Queued notifications of
// the old channels are still delivered.
func (c *Channels) Reload(ctx context.Context) error {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	list, err := c.db.Client.NotificationChannel.Query().Where(notificationchannel.Enabled(true)).All(ctx)
	if err != nil {
		return fmt.Errorf("read channels: %w", err)
	}
	opts := c.opts.Notify
	opts.Logger = c.log
	opts.Recorder = notify.RecorderFunc(func(d notify.Delivery) {
		select {
		case c.records <- d:
		default:
			c.log.Warn("delivery record dropped: recorder is behind", "channel", d.Channel)
		}
	})
	byID := map[int]notify.Channel{}
	idByName := map[string]int{}
	var closers []func(context.Context) error
	var bots []*notify.Telegram
	var errs []error
	tokens := map[string]*notify.TelegramConfig{}
	var order []string
	ids := map[string]int{}
	for _, ch := range list {
		idByName[ch.Name] = ch.ID
		secret := ""
		if len(ch.Secret) > 0 {
			b, err := c.box.Open(ch.Secret, secretAAD(ch.ID))
			if err != nil {
				errs = append(errs, fmt.Errorf("channel %s: secret cannot be opened: %w", ch.Name, err))
				continue
			}
			secret = string(b)
		}
		switch ch.Kind {
		case notificationchannel.KindWebhook:
			w, err := notify.NewWebhook(notify.WebhookConfig{Name: ch.Name, URL: ch.URL, Secret: secret, Format: ch.WebhookFormat}, opts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			byID[ch.ID] = w
			closers = append(closers, w.Close)
		case notificationchannel.KindEmail:
			m, err := notify.NewEmail(emailConfig(ch, secret), opts)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			byID[ch.ID] = m
			closers = append(closers, m.Close)
		case notificationchannel.KindTelegram:
			cfg, ok := tokens[secret]
			if !ok {
				cfg = &notify.TelegramConfig{Token: secret, APIURL: c.opts.TelegramAPI}
				tokens[secret] = cfg
				order = append(order, secret)
			}
			cfg.Destinations = append(cfg.Destinations, notify.TelegramDestination{Channel: ch.Name, ChatID: ch.ChatID, TopicID: ch.TopicID, Silent: ch.Silent})
			ids[ch.Name] = ch.ID
		}
	}
	for _, tok := range order {
		t, err := notify.NewTelegram(*tokens[tok], opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ch := range t.Channels() {
			byID[ids[ch.Name()]] = ch
		}
		closers = append(closers, t.Close)
		bots = append(bots, t)
	}

	c.mu.Lock()
	oldClosers, oldStop := c.closers, c.stop
	c.byID, c.idByName, c.closers = byID, idByName, closers
	c.stop = nil
	if c.ctx != nil && c.handler != nil && len(bots) > 0 {
		lctx, cancel := context.WithCancel(c.ctx)
		c.stop = cancel
		for _, b := range bots {
			c.listens.Add(1)
			go func() {
				defer c.listens.Done()
				if err := b.Listen(lctx, c.handler); err != nil && lctx.Err() == nil {
					c.log.Error("telegram listener stopped", "error", err)
				}
			}()
		}
	}
	c.mu.Unlock()
	if oldStop != nil {
		oldStop()
	}
	// The old channels drain in the background.
	go func() {
		shut, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, cl := range oldClosers {
			cl(shut)
		}
	}()
	return errors.Join(errs...)
}

// Notify implements Notifier: it queues n on the chosen channels (every
// enabled channel when ids is empty) and never blocks.
func (c *Channels) Notify(n notify.Notification, ids []int) {
	c.mu.Lock()
	var targets []notify.Channel
	if len(ids) == 0 {
		for _, ch := range c.byID {
			targets = append(targets, ch)
		}
	} else {
		for _, id := range ids {
			if ch, ok := c.byID[id]; ok {
				targets = append(targets, ch)
			}
		}
	}
	c.mu.Unlock()
	if len(targets) == 0 {
		c.log.Warn("no enabled channel to notify", "key", n.Key)
	}
	for _, ch := range targets {
		if err := ch.Enqueue(n); err != nil && !errors.Is(err, notify.ErrDuplicate) {
			c.log.Warn("notification not queued", "channel", ch.Name(), "key", n.Key, "error", err)
		}
	}
}

// SendTest delivers a test message through one channel and waits for the result.
func (c *Channels) SendTest(ctx context.Context, id int) error {
	c.mu.Lock()
	ch, ok := c.byID[id]
	c.mu.Unlock()
	if !ok {
		return errors.New("the channel is disabled or could not be built; check its settings")
	}
	return notify.SendTest(ctx, ch)
}

// emailConfig is the notify configuration of a stored email channel.
func emailConfig(ch *ent.NotificationChannel, password string) notify.EmailConfig {
	return notify.EmailConfig{Name: ch.Name, Host: ch.SMTPHost, Port: ch.SMTPPort, Security: ch.SMTPSecurity,
		Username: ch.SMTPUsername, Password: password, From: ch.MailFrom, To: ch.MailTo}
}

// ChannelInput is a channel to create or change. An empty Secret keeps the
// stored one when editing (for email, only while a username is set).
type ChannelInput struct {
	ID      int
	Name    string
	Kind    string // telegram, webhook or email
	Enabled bool
	ChatID  int64
	TopicID int
	Silent  bool
	URL     string
	// WebhookFormat is the body a webhook receives: "" or "gatehouse" (the
	// Gatehouse payload, stored as ""), "slack" or "discord".
	WebhookFormat string
	Secret        string // bot token, webhook signing secret, or SMTP password
	// Email over SMTP.
	SMTPHost     string
	SMTPPort     int
	SMTPSecurity string // starttls (default), tls or none
	SMTPUsername string
	MailFrom     string
	MailTo       []string
}

func (in ChannelInput) hasEmailFields() bool {
	return in.SMTPHost != "" || in.SMTPPort != 0 || in.SMTPSecurity != "" || in.SMTPUsername != "" || in.MailFrom != "" || len(in.MailTo) > 0
}

// emailFields maps notify.EmailConfig's field names to the input's.
var emailFields = map[string]string{
	"name": "name", "host": "smtp_host", "port": "smtp_port", "security": "smtp_security",
	"username": "smtp_username", "secret": "secret", "from": "mail_from", "to": "mail_to",
}

// validate checks the input by building the channel it describes.
func (in ChannelInput) validate(haveSecret bool) error {
	errs := FieldErrors{}
	switch in.Kind {
	case "telegram":
		token := in.Secret
		if token == "" && haveSecret {
			token = "1:" + strings.Repeat("x", 35) // keep the stored token; check the rest
		}
		err := notify.TelegramConfig{Token: token, Destinations: []notify.TelegramDestination{{Channel: in.Name, ChatID: in.ChatID, TopicID: in.TopicID}}}.Validate()
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				field, msg, _ := strings.Cut(line, ": ")
				switch {
				case field == "token":
					errs["secret"] = "bot token " + msg
				case strings.HasSuffix(field, ".channel"):
					errs["name"] = msg
				case strings.HasSuffix(field, ".chat_id"):
					errs["chat_id"] = msg
				case strings.HasSuffix(field, ".topic_id"):
					errs["topic_id"] = msg
				}
			}
		}
		if in.URL != "" {
			errs["url"] = "applies only to webhooks; leave it empty"
		}
	case "webhook":
		err := notify.WebhookConfig{Name: in.Name, URL: in.URL, Secret: in.Secret, Format: in.WebhookFormat}.Validate()
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				field, msg, _ := strings.Cut(line, ": ")
				switch field {
				case "secret":
					errs["secret"] = "signing secret " + msg
				case "format":
					errs["webhook_format"] = msg
				default:
					errs[field] = msg
				}
			}
		}
		if in.ChatID != 0 || in.TopicID != 0 {
			errs["chat_id"] = "applies only to Telegram; leave it empty"
		}
	case "email":
		password := in.Secret
		if password == "" && haveSecret && in.SMTPUsername != "" {
			password = "stored" // keep the stored password; check the rest
		}
		err := notify.EmailConfig{Name: in.Name, Host: in.SMTPHost, Port: in.SMTPPort, Security: in.SMTPSecurity,
			Username: in.SMTPUsername, Password: password, From: in.MailFrom, To: in.MailTo}.Validate()
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				field, msg, _ := strings.Cut(line, ": ")
				name, ok := emailFields[field]
				if !ok {
					name = "smtp_host"
				}
				if name == "secret" {
					msg = "password " + msg
				}
				if errs[name] == "" {
					errs[name] = msg
				}
			}
		}
		if in.URL != "" {
			errs["url"] = "applies only to webhooks; leave it empty"
		}
		if in.ChatID != 0 || in.TopicID != 0 {
			errs["chat_id"] = "applies only to Telegram; leave it empty"
		}
	default:
		errs["kind"] = "must be telegram, webhook or email"
	}
	if in.Kind != "webhook" && in.WebhookFormat != "" {
		errs["webhook_format"] = "applies only to webhooks; leave it empty"
	}
	if in.Kind != "email" && in.hasEmailFields() {
		errs["smtp_host"] = "the SMTP settings apply only to email; leave them empty"
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// SaveChannel validates and stores a channel, sealing its secret, and
// rebuilds the live channels.
func (c *Channels) SaveChannel(ctx context.Context, in ChannelInput, by audit.Actor) (*ent.NotificationChannel, error) {
	var existing *ent.NotificationChannel
	if in.ID != 0 {
		var err error
		existing, err = c.db.Client.NotificationChannel.Get(ctx, in.ID)
		if ent.IsNotFound(err) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if string(existing.Kind) != in.Kind {
			return nil, FieldErrors{"kind": "cannot change; create a new channel instead"}
		}
	}
	if err := in.validate(existing != nil && len(existing.Secret) > 0); err != nil {
		return nil, err
	}
	format := in.WebhookFormat
	if format == notify.WebhookFormatGatehouse {
		format = "" // one way to store the default
	}
	tx, err := c.db.Client.Tx(ctx)
	if err != nil {
		return nil, err
	}
	var saved *ent.NotificationChannel
	mailTo := in.MailTo
	if mailTo == nil {
		mailTo = []string{}
	}
	if existing == nil {
		saved, err = tx.NotificationChannel.Create().SetName(in.Name).SetKind(notificationchannel.Kind(in.Kind)).
			SetEnabled(in.Enabled).SetChatID(in.ChatID).SetTopicID(in.TopicID).SetSilent(in.Silent).SetURL(in.URL).
			SetWebhookFormat(format).SetSMTPHost(in.SMTPHost).SetSMTPPort(in.SMTPPort).SetSMTPSecurity(in.SMTPSecurity).SetSMTPUsername(in.SMTPUsername).
			SetMailFrom(in.MailFrom).SetMailTo(mailTo).Save(ctx)
	} else {
		upd := tx.NotificationChannel.UpdateOneID(in.ID).SetName(in.Name).SetEnabled(in.Enabled).
			SetChatID(in.ChatID).SetTopicID(in.TopicID).SetSilent(in.Silent).SetURL(in.URL).
			SetWebhookFormat(format).SetSMTPHost(in.SMTPHost).SetSMTPPort(in.SMTPPort).SetSMTPSecurity(in.SMTPSecurity).SetSMTPUsername(in.SMTPUsername).
			SetMailFrom(in.MailFrom).SetMailTo(mailTo)
		if in.Kind == "email" && in.SMTPUsername == "" {
			upd.ClearSecret() // no user, no password to keep
		}
		saved, err = upd.Save(ctx)
	}
	if err == nil && in.Secret != "" {
		var sealed []byte
		if sealed, err = c.box.Seal([]byte(in.Secret), secretAAD(saved.ID)); err == nil {
			saved, err = tx.NotificationChannel.UpdateOneID(saved.ID).SetSecret(sealed).Save(ctx)
		}
	}
	if err != nil {
		tx.Rollback()
		if ent.IsConstraintError(err) {
			return nil, FieldErrors{"name": "a channel with this name exists; choose another name"}
		}
		return nil, fmt.Errorf("save channel: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	action := "channel.update"
	if existing == nil {
		action = "channel.create"
	}
	detail := in.Kind
	if format != "" {
		detail += " (" + format + ")"
	}
	if in.Secret != "" {
		detail += ", secret set"
	}
	if c.opts.Audit != nil {
		if err := c.opts.Audit.Record(ctx, audit.For(by, action, "channel:"+saved.Name, detail)); err != nil {
			c.log.Error("audit", "action", action, "error", err)
		}
	}
	if err := c.Reload(ctx); err != nil {
		c.log.Warn("rebuilding channels", "error", err)
	}
	return saved, nil
}

// DeleteChannel removes a channel.
func (c *Channels) DeleteChannel(ctx context.Context, id int, by audit.Actor) error {
	ch, err := c.db.Client.NotificationChannel.Get(ctx, id)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := c.db.Client.NotificationChannel.DeleteOneID(id).Exec(ctx); err != nil {
		return fmt.Errorf("delete channel: %w", err)
	}
	if c.opts.Audit != nil {
		if err := c.opts.Audit.Record(ctx, audit.For(by, "channel.delete", "channel:"+ch.Name, "")); err != nil {
			c.log.Error("audit", "error", err)
		}
	}
	return c.Reload(ctx)
}

// List returns the stored channels by name.
func (c *Channels) List(ctx context.Context) ([]*ent.NotificationChannel, error) {
	return c.db.Client.NotificationChannel.Query().Order(ent.Asc(notificationchannel.FieldName)).All(ctx)
}

// Deliveries returns the newest delivery records.
func (c *Channels) Deliveries(ctx context.Context, limit int) ([]*ent.Notification, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return c.db.Client.Notification.Query().Order(ent.Desc(notification.FieldAt), ent.Desc(notification.FieldID)).Limit(limit).All(ctx)
}

// Prune deletes delivery records older than keep.
func (c *Channels) Prune(ctx context.Context, keep time.Duration) (int, error) {
	return c.db.Client.Notification.Delete().Where(notification.AtLT(time.Now().Add(-keep))).Exec(ctx)
}
