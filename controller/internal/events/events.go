// Package events is the controller's in-process publish/subscribe broker and
// its Server-Sent Events endpoint. Publishers never block: each subscriber has
// a bounded buffer, and a subscriber that falls behind loses events rather
// than slowing anyone else down.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Event is one message. Topic groups events (e.g. "servers", "task.42");
// Name is the SSE event name the browser listens for (e.g. "server.status");
// Data is marshalled to JSON.
type Event struct {
	Topic string
	Name  string
	Data  any
}

// BufferSize is how many undelivered events a subscriber may hold before
// further events to it are dropped.
const BufferSize = 64

// namePattern allowlists topics and event names: they are written into the
// SSE stream verbatim, so they must never contain a line break.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether s can be used as a topic or event name.
func ValidName(s string) bool { return namePattern.MatchString(s) }

type subscriber struct {
	ch     chan Event
	topics map[string]bool // empty: every topic
}

// Broker fans events out to subscribers.
type Broker struct {
	log     hclog.Logger
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	done    chan struct{}
	dropped atomic.Uint64
}

// New returns an empty broker.
func New(log hclog.Logger) *Broker {
	return &Broker{log: log.Named("events"), subs: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// Publish delivers e to every subscriber of its topic that has room, and
// never blocks. Events with an invalid topic or name are refused with a log line.
func (b *Broker) Publish(e Event) {
	if !ValidName(e.Topic) || !ValidName(e.Name) {
		b.log.Error("event refused: topic and name must match "+namePattern.String(), "topic", e.Topic, "name", e.Name)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if len(s.topics) > 0 && !s.topics[e.Topic] {
			continue
		}
		select {
		case s.ch <- e:
		default:
			b.dropped.Add(1)
		}
	}
}

// Dropped is the number of deliveries skipped because a subscriber's buffer was full.
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }

// Subscribe returns a channel of events on topics (all topics when none are
// given). The channel is closed when ctx ends or the broker is closed.
func (b *Broker) Subscribe(ctx context.Context, topics ...string) <-chan Event {
	s := &subscriber{ch: make(chan Event, BufferSize), topics: map[string]bool{}}
	for _, t := range topics {
		s.topics[t] = true
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(s.ch)
		return s.ch
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-b.done:
		}
		b.mu.Lock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
		b.mu.Unlock()
	}()
	return s.ch
}

// Close ends every subscription, so open event streams finish and a server
// can shut down. Later subscriptions are closed at once.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	close(b.done)
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

// wireEvent is what a browser receives in each event's data line.
type wireEvent struct {
	Topic string `json:"topic"`
	Name  string `json:"name"`
	Data  any    `json:"data"`
}

// Handler streams events as Server-Sent Events. The topics are taken from
// repeated ?topic= parameters (all topics when absent); a comment line is
// sent every keepalive so proxies and browsers keep the connection open.
// Authorization is the caller's job: mount it behind the session check.
func (b *Broker) Handler(keepalive time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		topics := r.URL.Query()["topic"]
		if len(topics) > 16 {
			http.Error(w, "at most 16 topics per stream", http.StatusBadRequest)
			return
		}
		for _, t := range topics {
			if !ValidName(t) {
				http.Error(w, fmt.Sprintf("topic %q must be lowercase letters, digits, '.', '_' or '-'", t), http.StatusBadRequest)
				return
			}
		}
		rc := http.NewResponseController(w)
		ch := b.Subscribe(r.Context(), topics...)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // tell nginx in front not to buffer the stream
		w.WriteHeader(http.StatusOK)
		// The retry line doubles as "subscribed": a client that has read it
		// will see every event published afterwards.
		if _, err := fmt.Fprint(w, "retry: 5000\n\n"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			b.log.Error("event stream cannot flush; is a middleware hiding http.Flusher?", "error", err)
			return
		}
		tick := time.NewTicker(keepalive)
		defer tick.Stop()
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					return
				}
				data, err := json.Marshal(wireEvent{Topic: e.Topic, Name: e.Name, Data: e.Data})
				if err != nil {
					b.log.Error("event not sent: data does not marshal to JSON", "topic", e.Topic, "name", e.Name, "error", err)
					continue
				}
				if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Name, data); err != nil {
					return
				}
			case <-tick.C:
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
}
