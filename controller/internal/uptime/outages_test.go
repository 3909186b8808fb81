package uptime

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fakeOutages records what RecordOutage asks of a store.
type fakeOutages struct {
	open  bool
	calls []string
	err   error
}

func (f *fakeOutages) Extend(context.Context) (bool, error) {
	f.calls = append(f.calls, "extend")
	return f.open, f.err
}

func (f *fakeOutages) LastEnded(context.Context) (*time.Time, error) {
	f.calls = append(f.calls, "last ended")
	return nil, nil
}

func (f *fakeOutages) Open(_ context.Context, _ time.Time, message string) error {
	f.calls = append(f.calls, "open "+message)
	f.open = true
	return nil
}

func (f *fakeOutages) End(context.Context, time.Time) error {
	f.calls = append(f.calls, "end")
	f.open = false
	return nil
}

func TestRecordOutage(t *testing.T) {
	ctx, at := context.Background(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeOutages{}
	for _, ok := range []bool{true, false, false, true, false} {
		if err := RecordOutage(ctx, f, ok, at, at, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"end", "extend", "open refused", "extend", "end", "extend", "open refused"}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	failing := &fakeOutages{err: errors.New("database gone")}
	if err := RecordOutage(ctx, failing, false, at, at, "x"); err == nil || len(failing.calls) != 1 {
		t.Errorf("a failed extend: %v, calls %v", err, failing.calls)
	}
}

func TestOutageStartRule(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	earlier, before := at.Add(-time.Hour), at.Add(-2*time.Hour)
	for _, tc := range []struct {
		name      string
		runStart  time.Time
		lastEnded *time.Time
		want      time.Time
	}{
		{"failing before outages were kept", earlier, nil, earlier},
		{"failures tolerated first", earlier, &before, earlier},
		{"an outage ended during the run", earlier, &at, at},
		{"first failure now", at, nil, at},
		{"unknown run start", time.Time{}, nil, at},
		{"run start in the future", at.Add(time.Hour), nil, at},
	} {
		if got := outageStart(at, tc.runStart, tc.lastEnded); !got.Equal(tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
