package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Resolutions of the rollup tables, in seconds.
const (
	Minute = 60
	Hour   = 3600
)

// Retention says how long each resolution is kept.
type Retention struct {
	Raw, Minute, Hour time.Duration
}

// Maintainer rolls samples up, enforces retention and keeps server status
// current. Run Maintain periodically (the scheduler does, every minute).
type Maintainer struct {
	w         *Writer
	retention Retention
	// Offline is how long without samples before an online server is marked offline.
	Offline time.Duration
	// OnStatus is told about servers whose status changed to offline.
	OnStatus func(serverIDs []int, status string)
	lastRun  time.Time
}

// NewMaintainer returns a maintainer for the writer's database.
func NewMaintainer(w *Writer, r Retention, offlineAfter time.Duration) *Maintainer {
	return &Maintainer{w: w, retention: r, Offline: offlineAfter}
}

// sumCols are the summary columns averaged into rollups; ints are cast back.
var sumCols = []struct {
	name  string
	isInt bool
}{
	{"cpu", false}, {"load1", false}, {"load5", false}, {"load15", false},
	{"mem_used", true}, {"mem_total", true}, {"swap_used", true}, {"swap_total", true},
	{"disk_used", true}, {"disk_total", true}, {"net_rx", false}, {"net_tx", false},
	{"disk_read", false}, {"disk_write", false}, {"nginx_rps", false}, {"nginx_conns", false},
}

// Maintain does a full round: Status, Rollup and Retain.
func (m *Maintainer) Maintain(ctx context.Context, now time.Time) error {
	if err := m.Status(ctx, now); err != nil {
		return err
	}
	if err := m.Rollup(ctx, now); err != nil {
		return err
	}
	return m.Retain(ctx, now)
}

// Rollup aggregates every closed minute (and its hour) that received samples
// since the last call. The minute in progress waits for a later call, so a
// frequent caller never re-aggregates the same open minute over and over.
func (m *Maintainer) Rollup(ctx context.Context, now time.Time) error {
	oldest, newest := m.w.takeDirty()
	if oldest == 0 {
		return nil
	}
	closed := now.UnixMilli() / 60000 * 60000
	if newest >= closed {
		// Samples of the open minute are rolled up once it closes.
		m.w.markDirty(max(oldest, closed), newest)
	}
	if oldest >= closed {
		return nil
	}
	if err := m.rollup(ctx, oldest, closed); err != nil {
		m.w.markDirty(oldest, newest) // retried next time
		return err
	}
	return nil
}

// Status records when each server last reported and marks servers that went
// silent as offline. It is cheap and meant to run every metrics interval.
func (m *Maintainer) Status(ctx context.Context, now time.Time) error {
	return m.status(ctx, now)
}

// Retain deletes what is older than the retention periods.
func (m *Maintainer) Retain(ctx context.Context, now time.Time) error {
	return m.retain(ctx, now)
}

func (m *Maintainer) status(ctx context.Context, now time.Time) error {
	db := m.w.db
	seen := m.w.takeLastSeen()
	if len(seen) > 0 {
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, db.Rebind("UPDATE servers SET last_seen_at = ?, metrics_source = ?, status = 'online' WHERE id = ? AND status <> 'removed'"))
		if err != nil {
			tx.Rollback()
			return err
		}
		for id, sn := range seen {
			if _, err := stmt.ExecContext(ctx, sn.at.UTC(), sn.source, id); err != nil {
				stmt.Close()
				tx.Rollback()
				return fmt.Errorf("update last seen: %w", err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	if m.Offline <= 0 {
		return nil
	}
	cutoff := now.Add(-m.Offline).UTC()
	rows, err := db.SQL.QueryContext(ctx, db.Rebind("SELECT id FROM servers WHERE status = 'online' AND (last_seen_at IS NULL OR last_seen_at < ?)"), cutoff)
	if err != nil {
		return err
	}
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.SQL.ExecContext(ctx, db.Rebind("UPDATE servers SET status = 'offline' WHERE id = ? AND status = 'online'"), id); err != nil {
			return err
		}
	}
	if len(ids) > 0 && m.OnStatus != nil {
		m.OnStatus(ids, "offline")
	}
	return nil
}

// rollup recomputes the minute buckets in [since, end) from the raw samples
// and the hour buckets that contain them from the minute buckets (ms).
func (m *Maintainer) rollup(ctx context.Context, since, end int64) error {
	db := m.w.db
	minuteFrom := since / 60000 * 60000
	hourFrom := since / 3600000 * 3600000

	var sel, upd []string
	for _, c := range sumCols {
		if c.isInt {
			sel = append(sel, fmt.Sprintf("CAST(AVG(%s) AS BIGINT)", c.name))
		} else {
			sel = append(sel, fmt.Sprintf("AVG(%s)", c.name))
		}
		upd = append(upd, fmt.Sprintf("%s = excluded.%s", c.name, c.name))
	}
	names := make([]string, len(sumCols))
	for i, c := range sumCols {
		names[i] = c.name
	}
	cols := strings.Join(names, ", ")
	minuteQ := fmt.Sprintf(`INSERT INTO metric_rollups (server_id, resolution, bucket, count, cpu_max, %s)
SELECT server_id, %d, (ts / 60000) * 60000, COUNT(*), MAX(cpu), %s
FROM metric_samples WHERE ts >= ? AND ts < ?
GROUP BY server_id, (ts / 60000) * 60000
ON CONFLICT (server_id, resolution, bucket) DO UPDATE SET count = excluded.count, cpu_max = excluded.cpu_max, %s`,
		cols, Minute, strings.Join(sel, ", "), strings.Join(upd, ", "))

	var wsel []string
	for _, c := range sumCols {
		if c.isInt {
			wsel = append(wsel, fmt.Sprintf("CAST(SUM(%s * count) / SUM(count) AS BIGINT)", c.name))
		} else {
			wsel = append(wsel, fmt.Sprintf("SUM(%s * count) / SUM(count)", c.name))
		}
	}
	hourQ := fmt.Sprintf(`INSERT INTO metric_rollups (server_id, resolution, bucket, count, cpu_max, %s)
SELECT server_id, %d, (bucket / 3600000) * 3600000, SUM(count), MAX(cpu_max), %s
FROM metric_rollups WHERE resolution = %d AND bucket >= ? AND bucket < ?
GROUP BY server_id, (bucket / 3600000) * 3600000
ON CONFLICT (server_id, resolution, bucket) DO UPDATE SET count = excluded.count, cpu_max = excluded.cpu_max, %s`,
		cols, Hour, strings.Join(wsel, ", "), Minute, strings.Join(upd, ", "))

	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(minuteQ), minuteFrom, end); err != nil {
		tx.Rollback()
		return fmt.Errorf("minute rollup: %w", err)
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(hourQ), hourFrom, end); err != nil {
		tx.Rollback()
		return fmt.Errorf("hour rollup: %w", err)
	}
	return tx.Commit()
}

func (m *Maintainer) retain(ctx context.Context, now time.Time) error {
	db := m.w.db
	ms := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	for _, q := range []struct {
		sql string
		arg int64
	}{
		{"DELETE FROM metric_samples WHERE ts < ?", ms(m.retention.Raw)},
		{fmt.Sprintf("DELETE FROM metric_rollups WHERE resolution = %d AND bucket < ?", Minute), ms(m.retention.Minute)},
		{fmt.Sprintf("DELETE FROM metric_rollups WHERE resolution = %d AND bucket < ?", Hour), ms(m.retention.Hour)},
	} {
		if q.arg <= 0 || q.arg >= now.UnixMilli() {
			continue
		}
		if _, err := db.SQL.ExecContext(ctx, db.Rebind(q.sql), q.arg); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	return nil
}
