package controller

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
)

// tileCoalescer turns the stream of stored samples into live events: each
// server's page gets every sample on its own topic, and the dashboard gets
// one event a second carrying the tiles that changed, however many servers
// report.
type tileCoalescer struct {
	broker  *events.Broker
	mu      sync.Mutex
	pending map[int]metrics.Summary
}

func newTileCoalescer(b *events.Broker) *tileCoalescer {
	return &tileCoalescer{broker: b, pending: map[int]metrics.Summary{}}
}

func (t *tileCoalescer) add(latest []metrics.Summary) {
	t.mu.Lock()
	for _, s := range latest {
		t.pending[s.ServerID] = s
	}
	t.mu.Unlock()
	for _, s := range latest {
		t.broker.Publish(events.Event{Topic: "server." + strconv.Itoa(s.ServerID), Name: "metrics", Data: s})
	}
}

func (t *tileCoalescer) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.mu.Lock()
			if len(t.pending) == 0 {
				t.mu.Unlock()
				continue
			}
			batch := make([]map[string]any, 0, len(t.pending))
			for id, s := range t.pending {
				d := map[string]any{"id": id, "status": "online"}
				for k, v := range tileOf(s) {
					d[k] = v
				}
				batch = append(batch, d)
			}
			t.pending = map[int]metrics.Summary{}
			t.mu.Unlock()
			t.broker.Publish(events.Event{Topic: "servers", Name: "server.tiles", Data: batch})
		}
	}
}
