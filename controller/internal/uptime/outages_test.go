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

func (f *fakeOutages) Open(_ context.Context, _, _ time.Time, message string) error {
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

func TestOutageStart(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	earlier := at.Add(-time.Hour)
	for _, tc := range []struct {
		runStart  time.Time
		hasRecord bool
		want      time.Time
	}{
		{earlier, false, earlier}, // failing before outages were kept
		{earlier, true, at},       // the run was already recorded, or ended on purpose
		{at, false, at},
		{time.Time{}, false, at},
		{at.Add(time.Hour), false, at},
	} {
		if got := OutageStart(at, tc.runStart, tc.hasRecord); !got.Equal(tc.want) {
			t.Errorf("OutageStart(%s, %v) = %s, want %s", tc.runStart, tc.hasRecord, got, tc.want)
		}
	}
}
