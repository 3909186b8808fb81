package metrics

import (
	"context"
	"fmt"
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
type Query struct{ w *Writer }

// NewQuery returns queries over the writer's database and its cache of latest samples.
func NewQuery(w *Writer) *Query { return &Query{w: w} }

// Series returns the chart points of a server for [now-span, now].
func (q *Query) Series(ctx context.Context, serverID int, span time.Duration, now time.Time) (Series, error) {
	db := q.w.db
	res := ResolutionFor(span)
	from, to := now.Add(-span).UnixMilli(), now.UnixMilli()
	var sql string
	switch res {
	case "raw":
		sql = "SELECT ts, cpu, cpu, mem_used, mem_total, swap_used, swap_total, disk_used, disk_total, load1, net_rx, net_tx FROM metric_samples WHERE server_id = ? AND ts >= ? AND ts <= ? ORDER BY ts"
	default:
		r := Minute
		if res == "1h" {
			r = Hour
		}
		sql = fmt.Sprintf("SELECT bucket, cpu, cpu_max, mem_used, mem_total, swap_used, swap_total, disk_used, disk_total, load1, net_rx, net_tx FROM metric_rollups WHERE server_id = ? AND resolution = %d AND bucket >= ? AND bucket <= ? ORDER BY bucket", r)
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
		if err := rows.Scan(&p.TS, &p.CPU, &p.CPUMax, &mu, &mt, &su, &st, &du, &dt, &p.Load1, &p.NetRx, &p.NetTx); err != nil {
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
	db := q.w.db
	var detail []byte
	err := db.SQL.QueryRowContext(ctx, db.Rebind("SELECT detail FROM metric_samples WHERE server_id = ? AND detail IS NOT NULL ORDER BY ts DESC LIMIT 1"), serverID).Scan(&detail)
	if err != nil {
		return nil, nil //nolint:nilerr // no sample yet is not an error
	}
	s := &agentv1.MetricSample{}
	if err := proto.Unmarshal(detail, s); err != nil {
		return nil, err
	}
	return s, nil
}

// LatestSummaries returns the newest summary of every server that has one,
// keyed by server id, for the dashboard.
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
	for _, id := range missing {
		s, err := q.Latest(ctx, id)
		if err != nil {
			return nil, err
		}
		if s != nil {
			out[id] = Summarize(id, s)
		}
	}
	return out, nil
}
