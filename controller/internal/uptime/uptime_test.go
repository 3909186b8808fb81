package uptime

import (
	"testing"
	"time"
)

func TestLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		u    Uptime
		want string
	}{
		{Uptime{}, "—"},
		{Uptime{Up: 3}, "100 %"},
		{Uptime{Up: 3, Down: 1}, "75.00 %"},
		{Uptime{Up: 99999, Down: 1}, "99.99 %"}, // never rounded up to 100
		{Uptime{Down: 2}, "0.00 %"},
	} {
		if got := tc.u.Label(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.u, got, tc.want)
		}
	}
	if u := Of(4, 1, 100); u.LatencyMS != 25 || u.Probes() != 5 {
		t.Errorf("Of: %+v", u)
	}
	if u := Of(0, 3, 0); u.LatencyMS != 0 {
		t.Errorf("latency without answers: %+v", u)
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 10, 12, 30, 0, 0, time.UTC)
	at := func(h int) time.Time { return time.Date(2030, 1, 10, h, 0, 0, 0, time.UTC) }
	rows := []Row{
		{Key: 1, Hour: at(12), Up: 2, Down: 1, LatencySum: 40},
		{Key: 2, Hour: at(12), Up: 1, LatencySum: 10},
		{Key: 1, Hour: at(11), Down: 1},
		{Key: 1, Hour: at(12).AddDate(0, 0, -2), Up: 1, LatencySum: 7},
		{Key: 3, Hour: at(12).AddDate(0, 0, -40), Up: 9}, // before every series
	}
	if got := Since(now, 24*time.Hour); !got.Equal(at(13).AddDate(0, 0, -1)) {
		t.Errorf("since: %s", got)
	}
	sums := ByKey(rows)
	if sums[1] != (Uptime{Up: 3, Down: 2, LatencyMS: 15}) || sums[2] != (Uptime{Up: 1, LatencyMS: 10}) || len(sums) != 3 {
		t.Errorf("by key: %+v", sums)
	}
	hours := Hours(rows, Since(now, 3*time.Hour), 3)
	if len(hours) != 3 || !hours[2].Start.Equal(at(12)) || hours[2].Up != 3 || hours[2].Down != 1 ||
		hours[2].LatencyMS != 16 || hours[1].Down != 1 || hours[0].Probes() != 0 {
		t.Errorf("hours: %+v", hours)
	}
	first := FirstDay(now, 3)
	days := Days(rows, []int{1, 4}, first, 3)
	if d := days[1]; len(d) != 3 || !d[2].Start.Equal(time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)) ||
		d[2].Up != 2 || d[2].Down != 2 || d[0].Up != 1 || d[1].Probes() != 0 {
		t.Errorf("days of 1: %+v", d)
	}
	if d := days[4]; len(d) != 3 || d[0].Probes()+d[1].Probes()+d[2].Probes() != 0 {
		t.Errorf("days of a key without rows: %+v", d)
	}
	if _, ok := days[2]; ok || len(Days(rows, []int{1}, first, 0)[1]) != 0 {
		t.Error("days of keys not asked for, or of no days")
	}
}
