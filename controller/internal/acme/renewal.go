package acme

import (
	"errors"
	"time"
)

// DefaultRenewBefore is how long before expiry a certificate is renewed.
const DefaultRenewBefore = 30 * 24 * time.Hour

// DueForRenewal reports whether a certificate expiring at notAfter should be
// renewed at now, that is within before of expiry. before <= 0 means
// DefaultRenewBefore.
func DueForRenewal(notAfter, now time.Time, before time.Duration) bool {
	if before <= 0 {
		before = DefaultRenewBefore
	}
	return !now.Before(notAfter.Add(-before))
}

// Backoff bounds for retrying a failed issuance.
const (
	BackoffBase = time.Hour
	BackoffMax  = 24 * time.Hour
)

// Backoff is the wait after the n-th consecutive failure (n >= 1): one hour,
// doubling each time, capped at a day. A longer Retry-After from the CA wins,
// even past the cap, because retrying sooner only spends rate limit.
func Backoff(failures int, retryAfter time.Duration) time.Duration {
	wait := BackoffBase
	for i := 1; i < failures && wait < BackoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, BackoffMax)
	return max(wait, retryAfter)
}

// RetryAt is when to try again after err, the n-th consecutive failure,
// honouring the Retry-After of a CA problem in err.
func RetryAt(now time.Time, failures int, err error) time.Time {
	var p *Problem
	var retryAfter time.Duration
	if errors.As(err, &p) {
		retryAfter = p.RetryAfter
	}
	return now.Add(Backoff(failures, retryAfter))
}
