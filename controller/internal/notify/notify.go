// Package notify delivers alert notifications to Telegram chats, JSON
// webhooks and email (SMTP), and turns Telegram button presses and commands back into calls on
// the alerting core.
//
// The package holds no state of its own beyond its queues: the caller builds
// channels from their stored configuration (secrets already decrypted), enqueues
// notifications, and learns about every delivery attempt through a Recorder so
// it can keep a log. Enqueue never blocks; each channel has a bounded queue and
// a worker that paces, retries and reports.
package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// Kind says why a notification is sent.
type Kind string

// Kinds of notification.
const (
	KindFiring   Kind = "firing"   // an incident started
	KindResolved Kind = "resolved" // an incident ended
	KindRepeat   Kind = "repeat"   // an incident is still firing (reminder)
	KindTest     Kind = "test"     // the "Send test" button
	// KindStatus marks replies to the Telegram /status command in delivery
	// records; notifications cannot have it.
	KindStatus Kind = "status"
)

// Severity of the incident behind a notification.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Field is one labelled value shown in a notification (a hostname, a metric).
// Values are arbitrary text and are always escaped by the channels.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Notification is one message about one incident.
type Notification struct {
	// Key identifies the notification for idempotence: a channel accepts a key
	// once (see MakeKey). Retries of the same delivery keep the key.
	Key        string
	IncidentID string // the incident the notification is about; required except for KindTest
	Kind       Kind
	Severity   Severity
	Title      string
	Fields     []Field
	Time       time.Time // when the event happened; zero means now
}

// Limits on notification content. Longer titles and values are cut with an
// ellipsis when rendered, more fields are refused.
const (
	MaxTitleRunes     = 256
	MaxFieldNameRunes = 64
	MaxFieldRunes     = 1024
	MaxFields         = 32
)

var (
	keyRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)
	incidentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$`)
)

// MakeKey builds the idempotence key of a notification about an incident: one
// firing, one resolved, and one per repeat round.
func MakeKey(incidentID string, kind Kind, round int) string {
	if kind == KindRepeat {
		return fmt.Sprintf("%s:%s:%d", incidentID, kind, round)
	}
	return incidentID + ":" + string(kind)
}

// Validate checks a notification against the allowlists; the error names each
// offending field.
func (n Notification) Validate() error {
	var errs []error
	if !keyRE.MatchString(n.Key) {
		errs = append(errs, errors.New("key: must be 1-128 characters of letters, digits and . _ : / - and start with a letter or digit"))
	}
	switch n.Kind {
	case KindFiring, KindResolved, KindRepeat, KindTest:
	default:
		errs = append(errs, fmt.Errorf("kind: %q is not one of firing, resolved, repeat, test", n.Kind))
	}
	switch n.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		errs = append(errs, fmt.Errorf("severity: %q is not one of info, warning, critical", n.Severity))
	}
	if n.IncidentID == "" && n.Kind != KindTest {
		errs = append(errs, errors.New("incident_id: required for firing, resolved and repeat notifications"))
	} else if n.IncidentID != "" && !incidentRE.MatchString(n.IncidentID) {
		errs = append(errs, errors.New("incident_id: must be 1-48 characters of letters, digits and . _ - and start with a letter or digit"))
	}
	if strings.TrimSpace(n.Title) == "" {
		errs = append(errs, errors.New("title: required"))
	}
	if len(n.Fields) > MaxFields {
		errs = append(errs, fmt.Errorf("fields: at most %d allowed, got %d", MaxFields, len(n.Fields)))
	}
	for i, f := range n.Fields {
		if strings.TrimSpace(f.Name) == "" {
			errs = append(errs, fmt.Errorf("fields[%d].name: required", i))
		}
	}
	return errors.Join(errs...)
}

// Action is what an inline button asks for.
type Action string

// Button actions.
const (
	ActionAck     Action = "ack"
	ActionSilence Action = "sil1h" // silence for SilenceDuration
)

// SilenceDuration is how long the "Silence 1 h" button silences an incident.
const SilenceDuration = time.Hour

// Button is an inline button under a notification.
type Button struct {
	Text       string
	Action     Action
	IncidentID string
}

// CallbackData is the opaque string Telegram sends back when the button is
// pressed (at most 64 bytes).
func (b Button) CallbackData() string { return string(b.Action) + ":" + b.IncidentID }

// Buttons returns the inline buttons for a notification: Ack and Silence for
// firing and repeat notifications about an incident, none otherwise.
func (n Notification) Buttons() []Button {
	if (n.Kind != KindFiring && n.Kind != KindRepeat) || n.IncidentID == "" {
		return nil
	}
	return []Button{
		{Text: "Ack", Action: ActionAck, IncidentID: n.IncidentID},
		{Text: "Silence 1 h", Action: ActionSilence, IncidentID: n.IncidentID},
	}
}

// ParseCallbackData validates callback data coming back from Telegram and
// returns the action and incident it names.
func ParseCallbackData(data string) (Action, string, error) {
	a, id, ok := strings.Cut(data, ":")
	if !ok {
		return "", "", errors.New("callback data: missing action separator")
	}
	switch Action(a) {
	case ActionAck, ActionSilence:
	default:
		return "", "", fmt.Errorf("callback data: unknown action %q", truncate(a, 16))
	}
	if !incidentRE.MatchString(id) {
		return "", "", errors.New("callback data: malformed incident id")
	}
	return Action(a), id, nil
}

// Outcome of one delivery attempt.
type Outcome string

// Delivery outcomes.
const (
	OutcomeDelivered Outcome = "delivered" // the endpoint accepted the message
	OutcomeRetrying  Outcome = "retrying"  // this attempt failed; another will follow after Delivery.RetryIn
	OutcomeFailed    Outcome = "failed"    // this attempt failed and no other will follow
	OutcomeDropped   Outcome = "dropped"   // never attempted: queue full or channel closing
)

// Delivery reports one attempt to deliver a notification.
type Delivery struct {
	Channel string
	Key     string
	Kind    Kind
	Attempt int // 1 for the first attempt; 0 for dropped notifications
	Outcome Outcome
	Error   string        // why the attempt failed, free of secrets; "" when delivered
	RetryIn time.Duration // set with OutcomeRetrying
	At      time.Time
}

// Recorder receives every delivery attempt. It is called from the channel's
// worker goroutine and should return quickly.
type Recorder interface {
	RecordDelivery(Delivery)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(Delivery)

// RecordDelivery calls f(d).
func (f RecorderFunc) RecordDelivery(d Delivery) { f(d) }

// Channel is a configured notification destination.
type Channel interface {
	// Name is the channel's configured name, used in delivery records.
	Name() string
	// Enqueue validates n and queues it without blocking. It returns
	// ErrQueueFull when the queue is full, ErrDuplicate when the key was seen
	// before, ErrClosed after Close, or the validation error.
	Enqueue(n Notification) error
	// Send queues n like Enqueue and waits for the final outcome: nil once
	// delivered, the last error otherwise.
	Send(ctx context.Context, n Notification) error
}

// Errors returned by Enqueue and Send.
var (
	ErrQueueFull = errors.New("notification queue is full")
	ErrDuplicate = errors.New("notification with this key was already accepted")
	ErrClosed    = errors.New("notification channel is closed")
)

// Options tune delivery. Zero values take the defaults in parentheses.
type Options struct {
	Logger      hclog.Logger  // (discard)
	Recorder    Recorder      // (none)
	QueueSize   int           // notifications waiting per queue (256)
	MaxAttempts int           // attempts per notification, including waits for rate limits (8)
	RetryBase   time.Duration // first backoff after a failure, doubled each time (1s)
	RetryMax    time.Duration // longest backoff (1m)
	Timeout     time.Duration // per HTTP request, or per SMTP conversation (15s)
	// ChatInterval is the least time between two Telegram messages to one
	// chat, counted from the end of one request to the start of the next (1s).
	ChatInterval time.Duration
	// PollTimeout is the long-polling timeout for Telegram updates (50s).
	PollTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Recorder == nil {
		o.Recorder = RecorderFunc(func(Delivery) {})
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = o.RetryBase
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.ChatInterval <= 0 {
		o.ChatInterval = time.Second
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 50 * time.Second
	}
	return o
}

// TestNotification is what SendTest delivers.
func TestNotification(channel string, now time.Time) Notification {
	return Notification{
		Key:      fmt.Sprintf("test:%d", now.UnixNano()),
		Kind:     KindTest,
		Severity: SeverityInfo,
		Title:    "Test notification from Gatehouse",
		Fields:   []Field{{Name: "Channel", Value: channel}, {Name: "Sent at", Value: now.UTC().Format(time.RFC3339)}},
		Time:     now,
	}
}

// SendTest delivers a test notification through ch and waits for the outcome,
// for the UI's "Send test" button. The error, if any, is safe to show.
func SendTest(ctx context.Context, ch Channel) error {
	if err := ch.Send(ctx, TestNotification(ch.Name(), time.Now())); err != nil {
		return fmt.Errorf("test notification to %s not delivered: %w", ch.Name(), err)
	}
	return nil
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// clean makes arbitrary text safe to render: valid UTF-8, no control
// characters except newline and tab.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return '\uFFFD'
		}
		return r
	}, s)
}
