package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// item is one queued notification, already rendered for its endpoint.
type item struct {
	channel string
	key     string
	kind    Kind
	payload any
	done    chan error // receives the final outcome when non-nil (buffered)
}

func (it *item) finish(err error) {
	if it.done != nil {
		it.done <- err
	}
}

// result of one attempt, as classified by the endpoint.
type result struct {
	err        error         // nil: delivered
	permanent  bool          // retrying cannot help (bad token, unknown chat, 4xx)
	retryAfter time.Duration // the endpoint asked for this wait (rate limit)
}

type sendFunc func(ctx context.Context, it *item) result

// queued is a channel that renders each notification once, so every retry
// sends the same, and delivers it through a queue. Webhook, Email and each
// Telegram destination are one.
type queued struct {
	name   string
	q      *queue
	render func(Notification) (any, error)
}

// Name is the channel name.
func (c *queued) Name() string { return c.name }

// Enqueue queues n without blocking (see Channel).
func (c *queued) Enqueue(n Notification) error {
	_, err := c.submit(n, false)
	return err
}

// Send queues n and waits for the outcome (see Channel).
func (c *queued) Send(ctx context.Context, n Notification) error {
	done, err := c.submit(n, true)
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
func (c *queued) Dropped() uint64 { return c.q.dropped.Load() }

// submit validates and renders n and queues it; with wait, the returned
// channel receives the final outcome.
func (c *queued) submit(n Notification, wait bool) (chan error, error) {
	if err := n.Validate(); err != nil {
		return nil, fmt.Errorf("invalid notification: %w", err)
	}
	payload, err := c.render(n)
	if err != nil {
		return nil, err
	}
	it := &item{channel: c.name, key: n.Key, kind: n.Kind, payload: payload}
	if wait {
		it.done = make(chan error, 1)
	}
	return it.done, c.q.enqueue(it)
}

// seenKeys remembers the last accepted keys of a queue.
const seenKeys = 4096

// queue is a bounded FIFO with one worker that paces, retries and reports.
type queue struct {
	send     sendFunc
	interval time.Duration // least gap between the end of one attempt and the next
	opts     Options
	log      hclog.Logger

	items   chan *item
	dropped atomic.Uint64

	mu     sync.Mutex
	closed bool
	seen   map[string]struct{}
	order  []string

	ctx      context.Context // canceled when Close gives up waiting
	cancel   context.CancelFunc
	finished chan struct{}
}

func newQueue(send sendFunc, interval time.Duration, opts Options, log hclog.Logger) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{
		send:     send,
		interval: interval,
		opts:     opts,
		log:      log,
		items:    make(chan *item, opts.QueueSize),
		seen:     map[string]struct{}{},
		ctx:      ctx,
		cancel:   cancel,
		finished: make(chan struct{}),
	}
	go q.run()
	return q
}

// enqueue adds it without blocking.
func (q *queue) enqueue(it *item) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	seenKey := it.channel + "\x00" + it.key
	if _, dup := q.seen[seenKey]; dup {
		q.mu.Unlock()
		return ErrDuplicate
	}
	select {
	case q.items <- it:
		q.seen[seenKey] = struct{}{}
		q.order = append(q.order, seenKey)
		if len(q.order) > seenKeys {
			delete(q.seen, q.order[0])
			q.order = q.order[1:]
		}
		q.mu.Unlock()
		return nil
	default:
	}
	q.mu.Unlock()
	n := q.dropped.Add(1)
	q.log.Warn("notification queue full, dropping", "channel", it.channel, "key", it.key, "dropped_total", n)
	q.record(it, 0, OutcomeDropped, ErrQueueFull.Error(), 0)
	return ErrQueueFull
}

// close stops accepting, lets the worker drain, and waits for it until ctx
// ends; then it aborts what is left.
func (q *queue) close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.items)
	}
	q.mu.Unlock()
	select {
	case <-q.finished:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.finished
		return fmt.Errorf("draining notifications: %w", ctx.Err())
	}
}

func (q *queue) run() {
	defer close(q.finished)
	var last time.Time
	for it := range q.items {
		if q.ctx.Err() != nil {
			q.record(it, 0, OutcomeDropped, "channel closed before delivery", 0)
			it.finish(ErrClosed)
			continue
		}
		last = q.deliver(it, last)
	}
}

// deliver attempts it until it is delivered, fails for good, or the attempts
// run out. last is when the previous attempt ended; the new value is returned.
func (q *queue) deliver(it *item, last time.Time) time.Time {
	for attempt := 1; ; attempt++ {
		if !last.IsZero() {
			if !sleep(q.ctx, time.Until(last.Add(q.interval))) {
				q.record(it, attempt, OutcomeDropped, "channel closed before delivery", 0)
				it.finish(ErrClosed)
				return last
			}
		}
		res := q.send(q.ctx, it)
		last = time.Now()
		if res.err == nil {
			q.record(it, attempt, OutcomeDelivered, "", 0)
			q.log.Debug("notification delivered", "channel", it.channel, "key", it.key, "attempt", attempt)
			it.finish(nil)
			return last
		}
		msg := res.err.Error()
		if q.ctx.Err() != nil {
			q.record(it, attempt, OutcomeFailed, "channel closed during delivery: "+msg, 0)
			it.finish(res.err)
			return last
		}
		if res.permanent || attempt >= q.opts.MaxAttempts {
			q.record(it, attempt, OutcomeFailed, msg, 0)
			q.log.Warn("notification not delivered", "channel", it.channel, "key", it.key, "attempts", attempt, "error", msg)
			it.finish(res.err)
			return last
		}
		wait := res.retryAfter
		if wait <= 0 {
			wait = backoff(q.opts.RetryBase, q.opts.RetryMax, attempt)
		}
		q.record(it, attempt, OutcomeRetrying, msg, wait)
		q.log.Info("notification attempt failed, retrying", "channel", it.channel, "key", it.key, "attempt", attempt, "retry_in", wait, "error", msg)
		if !sleep(q.ctx, wait) {
			q.record(it, attempt, OutcomeDropped, "channel closed before retry", 0)
			it.finish(errors.Join(ErrClosed, res.err))
			return last
		}
	}
}

func (q *queue) record(it *item, attempt int, o Outcome, errText string, retryIn time.Duration) {
	q.opts.Recorder.RecordDelivery(Delivery{
		Channel: it.channel, Key: it.key, Kind: it.kind, Attempt: attempt,
		Outcome: o, Error: errText, RetryIn: retryIn, At: time.Now(),
	})
}

// backoff is base·2^(attempt-1), at most max.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
