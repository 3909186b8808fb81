package controller

import (
	"context"
	"sort"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/healthoutage"
	"github.com/gatehousehq/gatehouse/ent/monitoroutage"
)

// The status page lists the recent outages of the services it shows: when
// each began and how long it lasted, never the reason, the server or the
// number of failed checks.
const (
	statusOutageSpan = 14 * 24 * time.Hour
	statusOutagesMax = 10
)

// statusOutage is one outage as the public sees it.
type statusOutage struct {
	Name      string     `json:"name"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Duration is how long it lasted, or has lasted so far.
	Duration string `json:"duration"`
}

// interval is a span of time; a nil end is still open.
type interval struct {
	start time.Time
	end   *time.Time
}

// endOr is the interval's end, or now while it is open.
func (iv interval) endOr(now time.Time) time.Time {
	if iv.end == nil {
		return now
	}
	return *iv.end
}

// mergeIntervals joins overlapping or touching intervals: a domain is down
// while any of its servers is, so outages through several servers at once
// are one outage of the domain.
func mergeIntervals(ivs []interval, now time.Time) []interval {
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].start.Before(ivs[j].start) })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && !iv.start.After(out[n-1].endOr(now)) {
			last := &out[n-1]
			switch {
			case last.end == nil:
			case iv.end == nil:
				last.end = nil
			case iv.end.After(*last.end):
				e := *iv.end
				last.end = &e
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// outageWords says how long an outage lasted, to the minute.
func outageWords(d time.Duration) string {
	if d < time.Minute {
		return "under a minute"
	}
	return shortDuration(d.Round(time.Minute))
}

// statusOutages reads the recent outages of the listed domains and
// monitors, newest first.
func (sw *statusWeb) statusOutages(ctx context.Context, doms []*ent.Domain, mons []*ent.Monitor, now time.Time) ([]statusOutage, error) {
	since := now.Add(-statusOutageSpan)
	var out []statusOutage
	add := func(name string, ivs []interval) {
		for _, iv := range mergeIntervals(ivs, now) {
			out = append(out, statusOutage{Name: name, StartedAt: iv.start, EndedAt: iv.end, Duration: outageWords(iv.endOr(now).Sub(iv.start))})
		}
	}
	if len(doms) > 0 {
		ids := make([]int, len(doms))
		for i, d := range doms {
			ids[i] = d.ID
		}
		rows, err := sw.c.db.Client.HealthOutage.Query().Where(healthoutage.DomainIDIn(ids...),
			healthoutage.Or(healthoutage.EndedAtIsNil(), healthoutage.EndedAtGT(since))).All(ctx)
		if err != nil {
			return nil, err
		}
		byDomain := map[int][]interval{}
		for _, r := range rows {
			byDomain[r.DomainID] = append(byDomain[r.DomainID], interval{r.StartedAt, r.EndedAt})
		}
		for _, d := range doms {
			add(d.Name, byDomain[d.ID])
		}
	}
	if len(mons) > 0 {
		ids := make([]int, len(mons))
		for i, m := range mons {
			ids[i] = m.ID
		}
		rows, err := sw.c.db.Client.MonitorOutage.Query().Where(monitoroutage.MonitorIDIn(ids...),
			monitoroutage.Or(monitoroutage.EndedAtIsNil(), monitoroutage.EndedAtGT(since))).All(ctx)
		if err != nil {
			return nil, err
		}
		byMonitor := map[int][]interval{}
		for _, r := range rows {
			byMonitor[r.MonitorID] = append(byMonitor[r.MonitorID], interval{r.StartedAt, r.EndedAt})
		}
		for _, m := range mons {
			add(m.Name, byMonitor[m.ID])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	if len(out) > statusOutagesMax {
		out = out[:statusOutagesMax]
	}
	if out == nil {
		out = []statusOutage{}
	}
	return out, nil
}
