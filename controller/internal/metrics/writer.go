// Package metrics stores the samples agents report, rolls them up into
// 1-minute and 1-hour buckets, enforces retention, and answers the queries
// behind the dashboard and the server charts.
//
// All inserts go through one Writer goroutine, which groups whatever arrived
// while the previous batch was being written into the next transaction. A
// caller's Ingest returns only once its samples are committed, so the agent
// link can acknowledge them and the agent can drop them from its buffer.
// (server_id, ts) is unique and inserts ignore duplicates, so replays are
// harmless.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Summary is the compact view of one sample that tiles and charts use.
type Summary struct {
	ServerID  int     `json:"server_id"`
	TS        int64   `json:"ts"` // Unix milliseconds
	Source    string  `json:"source"`
	CPU       float64 `json:"cpu"`
	Load1     float64 `json:"load1"`
	Load5     float64 `json:"load5"`
	Load15    float64 `json:"load15"`
	MemUsed   int64   `json:"mem_used"`
	MemTotal  int64   `json:"mem_total"`
	SwapUsed  int64   `json:"swap_used"`
	SwapTotal int64   `json:"swap_total"`
	DiskUsed  int64   `json:"disk_used"`
	DiskTotal int64   `json:"disk_total"`
	NetRx     float64 `json:"net_rx"`
	NetTx     float64 `json:"net_tx"`
	DiskRead  float64 `json:"disk_read"`
	DiskWrite float64 `json:"disk_write"`
	// NginxRPS and NginxConns are nginx's request rate and open client
	// connections; Nginx says whether the node reported them at all.
	Nginx      bool    `json:"nginx"`
	NginxRPS   float64 `json:"nginx_rps"`
	NginxConns float64 `json:"nginx_conns"`
	Uptime     int64   `json:"uptime"`
	Processes  int     `json:"processes"`
}

// Summarize reduces a full sample to its summary. Disk usage is the sum over
// filesystems, counting each device once.
func Summarize(serverID int, s *agentv1.MetricSample) Summary {
	out := Summary{
		ServerID:  serverID,
		TS:        s.GetTime().AsTime().UnixMilli(),
		Source:    s.GetSource(),
		CPU:       s.GetCpuPercent(),
		Load1:     s.GetLoad1(),
		Load5:     s.GetLoad5(),
		Load15:    s.GetLoad15(),
		MemUsed:   clampInt(s.GetMemUsed()),
		MemTotal:  clampInt(s.GetMemTotal()),
		SwapUsed:  clampInt(s.GetSwapUsed()),
		SwapTotal: clampInt(s.GetSwapTotal()),
		Uptime:    clampInt(s.GetUptimeSeconds()),
		Processes: int(s.GetProcesses()),
	}
	seen := map[string]bool{}
	for _, fs := range s.GetFilesystems() {
		key := fs.GetDevice()
		if key == "" {
			key = fs.GetMount()
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out.DiskUsed += clampInt(fs.GetUsed())
		out.DiskTotal += clampInt(fs.GetSize())
	}
	for _, n := range s.GetInterfaces() {
		if n.GetName() == "lo" {
			continue
		}
		out.NetRx += n.GetRxBps()
		out.NetTx += n.GetTxBps()
	}
	for _, d := range s.GetDiskIo() {
		out.DiskRead += d.GetReadBps()
		out.DiskWrite += d.GetWriteBps()
	}
	if n := s.GetNginx(); n != nil {
		// The hub refused samples with an impossible rate (NaN, negative).
		out.Nginx, out.NginxRPS, out.NginxConns = true, n.GetRequestsPerSecond(), float64(n.GetActive())
	}
	return out
}

func clampInt(v uint64) int64 {
	if v > 1<<62 {
		return 1 << 62
	}
	return int64(v)
}

// Publisher receives each stored batch's newest summary per server, for live views.
type Publisher func(latest []Summary)

type request struct {
	serverID int
	samples  []*agentv1.MetricSample
	done     chan error
}

// Writer is the single batched writer of samples.
type Writer struct {
	db       *store.DB
	log      hclog.Logger
	in       chan request
	maxRows  int
	publish  Publisher
	columns  string
	perRow   int
	rowParam string

	mu         sync.Mutex
	latest     map[int]*agentv1.MetricSample // newest full sample per server
	lastSeen   map[int]seen
	detailMin  map[int]int64 // the minute whose first sample carried a detail blob
	dirtySince int64         // oldest ts written since the last rollup, 0 for none
	dirtyUntil int64         // newest ts written since the last rollup

	// Reused by the writer goroutine only.
	rows []row
	args []any
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// MaxRows caps the samples written in one transaction (default 4000).
	MaxRows int
	// Queue is how many Ingest calls may wait for the writer (default 4096).
	Queue   int
	Publish Publisher
}

// NewWriter returns a writer; call Run to start it.
func NewWriter(db *store.DB, log hclog.Logger, opts WriterOptions) *Writer {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 4000
	}
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	cols := []string{"server_id", "ts", "source", "uptime", "processes", "detail", "cpu", "load1", "load5", "load15",
		"mem_used", "mem_total", "swap_used", "swap_total", "disk_used", "disk_total", "net_rx", "net_tx", "disk_read", "disk_write", "nginx_rps", "nginx_conns"}
	return &Writer{
		db:        db,
		log:       log,
		in:        make(chan request, opts.Queue),
		maxRows:   opts.MaxRows,
		publish:   opts.Publish,
		columns:   strings.Join(cols, ", "),
		perRow:    len(cols),
		rowParam:  "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")",
		latest:    map[int]*agentv1.MetricSample{},
		lastSeen:  map[int]seen{},
		detailMin: map[int]int64{},
	}
}

// ErrStopped is returned by Ingest once the writer has stopped.
var ErrStopped = errors.New("metrics writer stopped")

// Ingest stores samples for the node and returns once they are committed.
// It satisfies the agent hub's Ingest interface.
func (w *Writer) Ingest(ctx context.Context, nodeID string, samples []*agentv1.MetricSample) error {
	id, err := strconv.Atoi(nodeID)
	if err != nil || id <= 0 {
		return fmt.Errorf("metrics: bad node id %q", nodeID)
	}
	if len(samples) == 0 {
		return nil
	}
	r := request{serverID: id, samples: samples, done: make(chan error, 1)}
	select {
	case w.in <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes batches until ctx ends, then fails any waiting callers.
func (w *Writer) Run(ctx context.Context) {
	for {
		var first request
		select {
		case first = <-w.in:
		case <-ctx.Done():
			w.drainWith(ErrStopped)
			return
		}
		batch := []request{first}
		rows := len(first.samples)
	gather:
		for rows < w.maxRows {
			select {
			case r := <-w.in:
				batch = append(batch, r)
				rows += len(r.samples)
			default:
				break gather
			}
		}
		err := w.write(ctx, batch)
		if err != nil {
			w.log.Error("storing metrics failed", "samples", rows, "error", err)
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (w *Writer) drainWith(err error) {
	for {
		select {
		case r := <-w.in:
			r.done <- err
		default:
			return
		}
	}
}

// maxParams keeps each INSERT under SQLite's and PostgreSQL's bind limits.
const maxParams = 30000

func (w *Writer) write(ctx context.Context, batch []request) error {
	n := 0
	for _, r := range batch {
		n += len(r.samples)
	}
	if cap(w.rows) < n {
		w.rows = make([]row, 0, n)
	}
	rows := w.rows[:0]
	newest := map[int]int{} // server id → index of its newest row
	var oldest, latestTS int64
	w.mu.Lock()
	for _, r := range batch {
		for _, s := range r.samples {
			sum := Summarize(r.serverID, s)
			minute := sum.TS / 60000
			detail := w.detailMin[r.serverID] != minute
			if detail {
				w.detailMin[r.serverID] = minute
			}
			rows = append(rows, row{s: s, sum: sum, detail: detail})
			if oldest == 0 || sum.TS < oldest {
				oldest = sum.TS
			}
			latestTS = max(latestTS, sum.TS)
			if i, ok := newest[r.serverID]; !ok || rows[i].sum.TS < sum.TS {
				newest[r.serverID] = len(rows) - 1
			}
		}
	}
	w.mu.Unlock()
	w.rows = rows

	perStmt := maxParams / w.perRow
	tx, err := w.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for start := 0; start < len(rows); start += perStmt {
		end := min(start+perStmt, len(rows))
		args := w.args[:0]
		var q strings.Builder
		q.Grow(len(w.columns) + 60 + (end-start)*(len(w.rowParam)+2))
		q.WriteString("INSERT INTO metric_samples (" + w.columns + ") VALUES ")
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(", ")
			}
			q.WriteString(w.rowParam)
			r := &rows[i]
			var detail []byte
			if r.detail {
				detail, _ = proto.Marshal(r.s)
			}
			sm := &r.sum
			args = append(args, sm.ServerID, sm.TS, sm.Source, sm.Uptime, sm.Processes, detail,
				sm.CPU, sm.Load1, sm.Load5, sm.Load15, sm.MemUsed, sm.MemTotal,
				sm.SwapUsed, sm.SwapTotal, sm.DiskUsed, sm.DiskTotal, sm.NetRx, sm.NetTx,
				sm.DiskRead, sm.DiskWrite, sm.NginxRPS, sm.NginxConns)
		}
		w.args = args
		q.WriteString(" ON CONFLICT (server_id, ts) DO NOTHING")
		if _, err := tx.ExecContext(ctx, w.db.Rebind(q.String()), args...); err != nil {
			tx.Rollback()
			return fmt.Errorf("insert samples: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit samples: %w", err)
	}

	now := time.Now()
	latest := make([]Summary, 0, len(newest))
	w.mu.Lock()
	if w.dirtySince == 0 || oldest < w.dirtySince {
		w.dirtySince = oldest
	}
	w.dirtyUntil = max(w.dirtyUntil, latestTS)
	for id, i := range newest {
		r := &rows[i]
		if cur, ok := w.latest[id]; !ok || !r.s.GetTime().AsTime().Before(cur.GetTime().AsTime()) {
			w.latest[id] = r.s
			latest = append(latest, r.sum)
		}
		w.lastSeen[id] = seen{at: now, source: w.latest[id].GetSource()}
	}
	w.mu.Unlock()
	// Drop references to the samples so they can be collected.
	clear(w.rows[:cap(w.rows)])
	clear(w.args[:cap(w.args)])
	if w.publish != nil && len(latest) > 0 {
		w.publish(latest)
	}
	return nil
}

// row is one sample on its way into the database.
type row struct {
	s      *agentv1.MetricSample
	sum    Summary
	detail bool // the first sample of its minute keeps the full sample
}

// Latest returns the newest full sample stored for a server since start, or nil.
func (w *Writer) Latest(serverID int) *agentv1.MetricSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest[serverID]
}

// seen is when a server last delivered samples and which source made the newest.
type seen struct {
	at     time.Time
	source string
}

// takeLastSeen returns what each server delivered since the last call.
func (w *Writer) takeLastSeen() map[int]seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.lastSeen
	w.lastSeen = map[int]seen{}
	return out
}

// takeDirty returns the oldest and newest ts written since the last call;
// oldest is 0 when nothing was written.
func (w *Writer) takeDirty() (oldest, newest int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	oldest, newest = w.dirtySince, w.dirtyUntil
	w.dirtySince, w.dirtyUntil = 0, 0
	return oldest, newest
}

// markDirty records that [oldest, newest] still needs rolling up.
func (w *Writer) markDirty(oldest, newest int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirtySince == 0 || oldest < w.dirtySince {
		w.dirtySince = oldest
	}
	w.dirtyUntil = max(w.dirtyUntil, newest)
}

// Forget drops cached state for a deleted server.
func (w *Writer) Forget(serverID int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.latest, serverID)
	delete(w.lastSeen, serverID)
	delete(w.detailMin, serverID)
}

func isPostgres(db *store.DB) bool { return db.Dialect == dialect.Postgres }
