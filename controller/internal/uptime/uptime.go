// Package uptime is the arithmetic of uptime figures shared by everything
// the controller probes: hourly counts of checks that were up and down, with
// the summed latency of those that were up, turned into percentages per span,
// per hour and per day; and the bounded fan-out the probe jobs share.
package uptime

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Uptime is how something answered over a span.
type Uptime struct {
	Up, Down int
	// LatencyMS is the mean latency of the answers that were up.
	LatencyMS int
}

// Of returns the Uptime of up and down counts and the summed latency of the
// answers that were up.
func Of(up, down int, latencySum int64) Uptime {
	u := Uptime{Up: up, Down: down}
	if up > 0 {
		u.LatencyMS = int(latencySum / int64(up))
	}
	return u
}

// Probes is the number of probes counted.
func (u Uptime) Probes() int { return u.Up + u.Down }

// Percent is the share of probes that were up, or -1 without probes.
func (u Uptime) Percent() float64 {
	if u.Probes() == 0 {
		return -1
	}
	return float64(u.Up) * 100 / float64(u.Probes())
}

// Label formats Percent for people: "99.95 %", "100 %", or "—".
func (u Uptime) Label() string {
	p := u.Percent()
	switch {
	case p < 0:
		return "—"
	case p == 100:
		return "100 %"
	}
	// Never round a failure up to 100.
	return fmt.Sprintf("%.2f %%", math.Floor(p*100)/100)
}

// Span is a named period uptime is reported for.
type Span struct {
	Name string
	Span time.Duration
}

// Spans are the periods uptime is reported for.
var Spans = []Span{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// Since is the first hour counted in a span ending now: the current hour is
// partly in it, so a span of 24 hours covers the last 24 hour rows.
func Since(now time.Time, span time.Duration) time.Time {
	return now.UTC().Truncate(time.Hour).Add(-span + time.Hour)
}

// FirstDay is the start of the first of the last n UTC days, today last.
func FirstDay(now time.Time, n int) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(n - 1))
}

// Row is one hour of counts of one thing (Key: a domain, a monitor).
type Row struct {
	Key        int
	Hour       time.Time
	Up, Down   int
	LatencySum int64
}

// Bucket is the uptime of one period starting at Start.
type Bucket struct {
	Start time.Time
	Uptime
}

// series adds rows into n buckets of width step from first, keys together.
type series struct {
	buckets []Bucket
	latency []int64
}

func newSeries(first time.Time, n int, start func(first time.Time, i int) time.Time) *series {
	s := &series{buckets: make([]Bucket, n), latency: make([]int64, n)}
	for i := range s.buckets {
		s.buckets[i].Start = start(first, i)
	}
	return s
}

func (s *series) add(i int, r Row) {
	if i < 0 || i >= len(s.buckets) {
		return
	}
	s.buckets[i].Up += r.Up
	s.buckets[i].Down += r.Down
	s.latency[i] += r.LatencySum
}

func (s *series) done() []Bucket {
	for i, b := range s.buckets {
		s.buckets[i].Uptime = Of(b.Up, b.Down, s.latency[i])
	}
	return s.buckets
}

// ByKey sums rows per key. Keys without rows are absent.
func ByKey(rows []Row) map[int]Uptime {
	type sum struct {
		up, down int
		latency  int64
	}
	sums := map[int]*sum{}
	for _, r := range rows {
		s := sums[r.Key]
		if s == nil {
			s = &sum{}
			sums[r.Key] = s
		}
		s.up += r.Up
		s.down += r.Down
		s.latency += r.LatencySum
	}
	out := make(map[int]Uptime, len(sums))
	for k, s := range sums {
		out[k] = Of(s.up, s.down, s.latency)
	}
	return out
}

// Hours buckets rows of any key into the n hours that start at first,
// oldest first, including hours without rows (zero counts), so a strip of
// them lines up with the clock.
func Hours(rows []Row, first time.Time, n int) []Bucket {
	n = max(n, 0)
	first = first.UTC()
	s := newSeries(first, n, func(first time.Time, i int) time.Time { return first.Add(time.Duration(i) * time.Hour) })
	for _, r := range rows {
		s.add(int(r.Hour.UTC().Sub(first)/time.Hour), r)
	}
	return s.done()
}

// Days buckets rows into the n UTC days that start at first, per key, for
// each of keys (keys without rows get days of zero counts; rows of other
// keys are ignored).
func Days(rows []Row, keys []int, first time.Time, n int) map[int][]Bucket {
	n = max(n, 0)
	first = first.UTC()
	per := make(map[int]*series, len(keys))
	for _, k := range keys {
		per[k] = newSeries(first, n, func(first time.Time, i int) time.Time { return first.AddDate(0, 0, i) })
	}
	for _, r := range rows {
		if s := per[r.Key]; s != nil {
			s.add(int(r.Hour.UTC().Sub(first)/(24*time.Hour)), r)
		}
	}
	out := make(map[int][]Bucket, len(per))
	for k, s := range per {
		out[k] = s.done()
	}
	return out
}

// Each runs probe on every item, parallel at a time, so targets that do not
// answer cost one timeout per batch rather than one each, and returns the
// problems the probes report, sorted.
func Each[T any](items []T, parallel int, probe func(T) []string) []string {
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
		slots    = make(chan struct{}, max(parallel, 1))
	)
	for _, it := range items {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			found := probe(it)
			mu.Lock()
			problems = append(problems, found...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(problems)
	return problems
}
