package uptime

import (
	"context"
	"time"
)

// OutageStore keeps one subject's runs of failed checks (a monitor, or a
// domain through one server).
type OutageStore interface {
	// Extend counts a failed check into the open run and reports whether
	// one was open.
	Extend(ctx context.Context) (bool, error)
	// Open begins a run at a failed check, with why it failed.
	Open(ctx context.Context, at time.Time, message string) error
	// End ends the open run, if there is one, at.
	End(ctx context.Context, at time.Time) error
}

// RecordOutage applies one check to a subject's runs of failures: a good
// check ends the open run, a failed one extends it or opens a new one.
func RecordOutage(ctx context.Context, st OutageStore, ok bool, at time.Time, message string) error {
	if ok {
		return st.End(ctx, at)
	}
	open, err := st.Extend(ctx)
	if err != nil || open {
		return err
	}
	return st.Open(ctx, at, message)
}
