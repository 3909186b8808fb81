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
	// Open begins a run at a failed check, with why it failed. runStart is
	// when the subject's current run of failures began by its own record,
	// which may be earlier than at for a subject that was failing before it
	// had any outage on record (outages were added to a running
	// installation); the store starts the outage there only then.
	Open(ctx context.Context, at, runStart time.Time, message string) error
	// End ends the open run, if there is one, at.
	End(ctx context.Context, at time.Time) error
}

// RecordOutage applies one check to a subject's runs of failures: a good
// check ends the open run, a failed one extends it or opens a new one.
// runStart is when the subject's run of failures began (at for the first
// failure).
func RecordOutage(ctx context.Context, st OutageStore, ok bool, at, runStart time.Time, message string) error {
	if ok {
		return st.End(ctx, at)
	}
	open, err := st.Extend(ctx)
	if err != nil || open {
		return err
	}
	return st.Open(ctx, at, runStart, message)
}

// OutageStart is where a new outage begins: at, or the subject's earlier
// run start when it has no outage on record yet.
func OutageStart(at, runStart time.Time, hasRecord bool) time.Time {
	if !hasRecord && !runStart.IsZero() && runStart.Before(at) {
		return runStart
	}
	return at
}
