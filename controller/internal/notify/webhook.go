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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// WebhookConfig configures a JSON webhook channel.
type WebhookConfig struct {
	Name   string // channel name
	URL    string // http(s) endpoint; may embed a secret path, so it is never logged
	Secret string // optional HMAC-SHA256 key for SignatureHeader
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
	return errors.Join(errs...)
}

// Webhook posts notifications as JSON.
type Webhook struct {
	cfg    WebhookConfig
	opts   Options
	client *http.Client
	q      *queue
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
	w.q = newQueue(w.post, 0, opts, opts.Logger.Named("webhook").With("channel", cfg.Name))
	return w, nil
}

// Name is the channel name.
func (w *Webhook) Name() string { return w.cfg.Name }

// Enqueue queues n without blocking (see Channel).
func (w *Webhook) Enqueue(n Notification) error {
	_, err := w.enqueue(n, false)
	return err
}

// Send queues n and waits for the outcome (see Channel).
func (w *Webhook) Send(ctx context.Context, n Notification) error {
	done, err := w.enqueue(n, true)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for delivery: %w", ctx.Err())
	}
}

// Dropped counts notifications refused because the queue was full.
func (w *Webhook) Dropped() uint64 { return w.q.dropped.Load() }

// Close stops accepting and delivers what is queued until ctx ends.
func (w *Webhook) Close(ctx context.Context) error { return w.q.close(ctx) }

func (w *Webhook) enqueue(n Notification, wait bool) (chan error, error) {
	if err := n.Validate(); err != nil {
		return nil, fmt.Errorf("invalid notification: %w", err)
	}
	at := n.Time
	if at.IsZero() {
		at = time.Now()
	}
	fields := n.Fields
	if fields == nil {
		fields = []Field{}
	}
	body, err := json.Marshal(WebhookPayload{
		Version: WebhookPayloadVersion, Channel: w.cfg.Name, Key: n.Key, IncidentID: n.IncidentID,
		Kind: n.Kind, Severity: n.Severity, Title: n.Title, Fields: fields,
		OccurredAt: at.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding webhook payload: %w", err)
	}
	it := &item{channel: w.cfg.Name, key: n.Key, kind: n.Kind, payload: body}
	if wait {
		it.done = make(chan error, 1)
	}
	return it.done, w.q.enqueue(it)
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
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return result{}
	case resp.StatusCode == http.StatusTooManyRequests:
		res := result{err: errors.New("endpoint answered 429 Too Many Requests")}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			res.retryAfter = time.Duration(s) * time.Second
		}
		return res
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return result{err: fmt.Errorf("endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	default:
		return result{err: fmt.Errorf("endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)), permanent: true}
	}
}
