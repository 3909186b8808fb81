package hub

import (
	"testing"
	"time"
)

func TestBudgetPacesSamples(t *testing.T) {
	t.Parallel()
	var b budget
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration // since t0
		n    int
		want time.Duration
	}{
		{0, 100, 0},                      // the burst is there from the start
		{0, 50, 0},                       // 150 of 200
		{0, 100, 500 * time.Millisecond}, // 50 short at 100/s
		{500 * time.Millisecond, 10, 100 * time.Millisecond}, // the debt is repaid first
		{time.Hour, 200, 0}, // refilled, but only up to the burst
		{time.Hour, 1, 10 * time.Millisecond},
		{time.Hour - time.Second, 0, 10 * time.Millisecond}, // a clock going back refills nothing
	}
	for i, s := range steps {
		if got := b.take(s.n, t0.Add(s.at), 100, 200); got != s.want {
			t.Fatalf("step %d: take(%d) at +%s waits %s, want %s", i, s.n, s.at, got, s.want)
		}
	}
}
