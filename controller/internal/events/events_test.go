package events

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestTopicsFilter(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	defer b.Close()
	ctx := context.Background()
	servers := b.Subscribe(ctx, "servers")
	all := b.Subscribe(ctx)
	b.Publish(Event{Topic: "task.1", Name: "log", Data: "line"})
	b.Publish(Event{Topic: "servers", Name: "server.status", Data: map[string]string{"status": "online"}})

	if e := <-servers; e.Topic != "servers" || e.Name != "server.status" {
		t.Fatalf("servers subscriber got %+v first", e)
	}
	if e := <-all; e.Topic != "task.1" {
		t.Fatalf("all-topics subscriber got %+v first", e)
	}
	if e := <-all; e.Topic != "servers" {
		t.Fatalf("all-topics subscriber got %+v second", e)
	}
	select {
	case e := <-servers:
		t.Fatalf("servers subscriber got an extra event %+v", e)
	default:
	}
}

func TestSlowSubscriberDropsAndNeverBlocks(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	defer b.Close()
	slow := b.Subscribe(context.Background(), "t")
	// Nobody reads slow; every Publish must still return.
	const n = 10 * BufferSize
	for i := range n {
		b.Publish(Event{Topic: "t", Name: "n", Data: i})
	}
	if got := b.Dropped(); got != n-BufferSize {
		t.Fatalf("dropped %d, want %d", got, n-BufferSize)
	}
	// The buffered events are the oldest ones, in order.
	for i := range BufferSize {
		if e := <-slow; e.Data != i {
			t.Fatalf("event %d carries %v", i, e.Data)
		}
	}
}

func TestSubscriptionEndsWithContextAndClose(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx)
	cancel()
	for range ch { // returns once the channel is closed
	}
	other := b.Subscribe(context.Background())
	b.Close()
	for range other {
	}
	if _, ok := <-b.Subscribe(context.Background()); ok {
		t.Fatal("subscription after Close delivered an event")
	}
	b.Publish(Event{Topic: "t", Name: "n"}) // must not panic on a closed broker
}

func TestInvalidNamesRefused(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	defer b.Close()
	ch := b.Subscribe(context.Background())
	for _, e := range []Event{
		{Topic: "t", Name: "x\ndata: injected"},
		{Topic: "", Name: "n"},
		{Topic: "T", Name: "n"},
	} {
		b.Publish(e)
	}
	b.Publish(Event{Topic: "t", Name: "ok"})
	if e := <-ch; e.Name != "ok" {
		t.Fatalf("invalid event delivered: %+v", e)
	}
}

func TestSSEHandler(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	srv := httptest.NewServer(b.Handler(20 * time.Millisecond))
	defer srv.Close()
	defer b.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"?topic=servers", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); line != "retry: 5000\n" {
		t.Fatalf("first line %q", line)
	}
	b.Publish(Event{Topic: "other", Name: "skip", Data: 1})
	b.Publish(Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": 3, "status": "online"}})

	var sawKeepalive, sawEvent bool
	for !sawKeepalive || !sawEvent {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		switch {
		case line == ": keepalive\n":
			sawKeepalive = true
		case strings.HasPrefix(line, "event: "):
			if line != "event: server.status\n" {
				t.Fatalf("unexpected event line %q", line)
			}
			data, _ := rd.ReadString('\n')
			var got struct {
				Topic string         `json:"topic"`
				Name  string         `json:"name"`
				Data  map[string]any `json:"data"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &got); err != nil {
				t.Fatalf("data line %q: %v", data, err)
			}
			if got.Topic != "servers" || got.Data["status"] != "online" {
				t.Fatalf("event data %+v", got)
			}
			sawEvent = true
		}
	}
}

func TestSSEHandlerRejectsBadTopic(t *testing.T) {
	t.Parallel()
	b := New(hclog.NewNullLogger())
	defer b.Close()
	rec := httptest.NewRecorder()
	b.Handler(time.Second).ServeHTTP(rec, httptest.NewRequest("GET", "/events?topic=a%0Ab", nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
}
