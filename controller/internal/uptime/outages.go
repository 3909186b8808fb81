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
	// LastEnded is when the subject's latest ended outage ended; nil
	// without one.
	LastEnded(ctx context.Context) (*time.Time, error)
	// Open begins an outage at start, with why its first check failed.
	Open(ctx context.Context, start time.Time, message string) error
	// End ends the open run, if there is one, at.
	End(ctx context.Context, at time.Time) error
}

// RecordOutage applies one check to a subject's runs of failures: a good
// check ends the open run, a failed one extends it or opens a new one.
// runStart is when the subject's run of failed checks began by its own
// record (at for its first failure), earlier when failures were tolerated
// first (retries) or happened before outages were kept; a new outage starts
// there unless an outage of the subject ended after it.
func RecordOutage(ctx context.Context, st OutageStore, ok bool, at, runStart time.Time, message string) error {
	if ok {
		return st.End(ctx, at)
	}
	open, err := st.Extend(ctx)
	if err != nil || open {
		return err
	}
	start := at
	if !runStart.IsZero() && runStart.Before(at) {
		last, err := st.LastEnded(ctx)
		if err != nil {
			return err
		}
		start = outageStart(at, runStart, last)
	}
	return st.Open(ctx, start, message)
}

// outageStart is where a new outage begins: where the subject's run of
// failures began, unless that is unknown, later than at, or before the end
// of the subject's last outage (lastEnded, nil without one; for example an
// outage ended by maintenance while failures went on) — then at.
func outageStart(at, runStart time.Time, lastEnded *time.Time) time.Time {
	if runStart.IsZero() || runStart.After(at) || (lastEnded != nil && runStart.Before(*lastEnded)) {
		return at
	}
	return runStart
}
