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
	// Open begins an outage at a failed check, with why it failed. runStart
	// is when the subject's current run of failed checks began by its own
	// record, earlier than at when failures were tolerated first (retries)
	// or happened before outages were kept; the store starts the outage
	// there unless an outage of the subject ended after it (OutageStart).
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

// OutageStart is where a new outage begins: where the subject's run of
// failures began, unless that is unknown, later than at, or before the end
// of the subject's last outage (lastEnded, nil without one; for example an
// outage ended by maintenance while failures went on) — then at.
func OutageStart(at, runStart time.Time, lastEnded *time.Time) time.Time {
	if runStart.IsZero() || runStart.After(at) || (lastEnded != nil && runStart.Before(*lastEnded)) {
		return at
	}
	return runStart
}
