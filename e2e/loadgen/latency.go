package main

import (
	"math"
	"sort"
	"time"
)

// latencySummary holds percentiles of sample-taken → acknowledged latency.
type latencySummary struct {
	Count int     `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

// summarizeLatency sorts d in place and returns nearest-rank percentiles.
func summarizeLatency(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return latencySummary{Count: len(d), P50ms: rank(0.50), P95ms: rank(0.95), P99ms: rank(0.99), Maxms: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
