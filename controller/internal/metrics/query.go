package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Point is one value of the server charts.
type Point struct {
	TS      int64   `json:"t"` // Unix milliseconds
	CPU     float64 `json:"cpu"`
	CPUMax  float64 `json:"cpu_max"`
	MemPct  float64 `json:"mem"`
	SwapPct float64 `json:"swap"`
	DiskPct float64 `json:"disk"`
	Load1   float64 `json:"load1"`
	NetRx   float64 `json:"rx"`
	NetTx   float64 `json:"tx"`
	// NginxRPS is nginx's requests per second, NginxConns its open client
	// connections (both 0 where the node did not report them).
	NginxRPS   float64 `json:"rps"`
	NginxConns float64 `json:"conns"`
}

// Series is a chart's data and the resolution it came from.
type Series struct {
	Resolution string  `json:"resolution"` // "raw", "1m" or "1h"
	From       int64   `json:"from"`
	To         int64   `json:"to"`
	Points     []Point `json:"points"`
}

// ResolutionFor picks the table for a chart span: raw samples up to 6 h,
// 1-minute rollups up to 3 days, 1-hour rollups beyond.
func ResolutionFor(span time.Duration) string {
	switch {
	case span <= 6*time.Hour:
		return "raw"
	case span <= 72*time.Hour:
		return "1m"
	default:
		return "1h"
	}
}

func pct(used, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return used / total * 100
}

// Query reads chart series and latest values.
type Query struct {
	w *Writer

	mu sync.Mutex
	// stored holds the newest stored summary of servers that have not
	// reported since the controller started (nil: they have none), loaded
	// once. Every newer sample passes through the writer, whose cache is read
	// first, so an entry here is never shadowing a fresher one.
	stored map[int]*Summary
}

// NewQuery returns queries over the writer's database and its cache of latest samples.
func NewQuery(w *Writer) *Query { return &Query{w: w, stored: map[int]*Summary{}} }

// Series returns the chart points of a server for [now-span, now].
func (q *Query) Series(ctx context.Context, serverID int, span time.Duration, now time.Time) (Series, error) {
	db := q.w.db
	res := ResolutionFor(span)
	from, to := now.Add(-span).UnixMilli(), now.UnixMilli()
	var sql string
	switch res {
	case "raw":
		sql = "SELECT ts, cpu, cpu, mem_used, mem_total, swap_used, swap_total, disk_used, disk_total, load1, net_rx, net_tx, nginx_rps, nginx_conns FROM metric_samples WHERE server_id = ? AND ts >= ? AND ts <= ? ORDER BY ts"
	default:
		r := Minute
		if res == "1h" {
			r = Hour
		}
		sql = fmt.Sprintf("SELECT bucket, cpu, cpu_max, mem_used, mem_total, swap_used, swap_total, disk_used, disk_total, load1, net_rx, net_tx, nginx_rps, nginx_conns FROM metric_rollups WHERE server_id = ? AND resolution = %d AND bucket >= ? AND bucket <= ? ORDER BY bucket", r)
	}
	rows, err := db.SQL.QueryContext(ctx, db.Rebind(sql), serverID, from, to)
	if err != nil {
		return Series{}, err
	}
	defer rows.Close()
	out := Series{Resolution: res, From: from, To: to, Points: []Point{}}
	for rows.Next() {
		var p Point
		var mu, mt, su, st, du, dt float64
		if err := rows.Scan(&p.TS, &p.CPU, &p.CPUMax, &mu, &mt, &su, &st, &du, &dt, &p.Load1, &p.NetRx, &p.NetTx, &p.NginxRPS, &p.NginxConns); err != nil {
			return Series{}, err
		}
		p.MemPct, p.SwapPct, p.DiskPct = pct(mu, mt), pct(su, st), pct(du, dt)
		out.Points = append(out.Points, p)
	}
	return out, rows.Err()
}

// Latest returns the newest full sample of a server: from memory when it
// reported since the controller started, else the newest stored detail.
func (q *Query) Latest(ctx context.Context, serverID int) (*agentv1.MetricSample, error) {
	if s := q.w.Latest(serverID); s != nil {
		return s, nil
	}
	stored, err := q.storedLatest(ctx, []int{serverID})
	if err != nil {
		return nil, err
	}
	return stored[serverID], nil
}

// LatestSummaries returns the newest summary of every server that has one,
// keyed by server id, for the dashboard. Servers that have not reported since
// the controller started are read from the database once, all in one query.
func (q *Query) LatestSummaries(ctx context.Context, ids []int) (map[int]Summary, error) {
	out := make(map[int]Summary, len(ids))
	var missing []int
	q.w.mu.Lock()
	for _, id := range ids {
		if s, ok := q.w.latest[id]; ok {
			out[id] = Summarize(id, s)
		} else {
			missing = append(missing, id)
		}
	}
	q.w.mu.Unlock()
	var load []int
	q.mu.Lock()
	for _, id := range missing {
		if s, ok := q.stored[id]; !ok {
			load = append(load, id)
		} else if s != nil {
			out[id] = *s
		}
	}
	q.mu.Unlock()
	if len(load) == 0 {
		return out, nil
	}
	found, err := q.storedLatest(ctx, load)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range load {
		s, ok := found[id]
		if !ok {
			q.stored[id] = nil
			continue
		}
		sum := Summarize(id, s)
		q.stored[id] = &sum
		out[id] = sum
	}
	return out, nil
}

// storedLatest reads the newest detailed sample of each server from the
// database, in one query per 500 servers.
func (q *Query) storedLatest(ctx context.Context, ids []int) (map[int]*agentv1.MetricSample, error) {
	db := q.w.db
	out := make(map[int]*agentv1.MetricSample, len(ids))
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		query := db.Rebind("SELECT m.server_id, m.detail FROM metric_samples m WHERE m.server_id IN (?" + strings.Repeat(", ?", len(chunk)-1) + ")" +
			" AND m.detail IS NOT NULL AND m.ts = (SELECT MAX(s.ts) FROM metric_samples s WHERE s.server_id = m.server_id AND s.detail IS NOT NULL)")
		rows, err := db.SQL.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("latest samples: %w", err)
		}
		for rows.Next() {
			var id int
			var detail []byte
			if err := rows.Scan(&id, &detail); err != nil {
				rows.Close()
				return nil, fmt.Errorf("latest samples: %w", err)
			}
			s := &agentv1.MetricSample{}
			if err := proto.Unmarshal(detail, s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("latest sample of server %d: %w", id, err)
			}
			out[id] = s
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("latest samples: %w", err)
		}
	}
	return out, nil
}
