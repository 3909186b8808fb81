package auth

import (
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets how failed sign-ins are slowed down. After Failures
// failures for a key, the key is locked for Lockout; every further failure
// after a lockout doubles it, up to MaxLockout. A key with no failure for
// Forget is forgotten.
type ThrottleConfig struct {
	AccountFailures int           // failures per username before a lockout
	AddressFailures int           // failures per client address (IPv6: per /64) before a lockout
	Lockout         time.Duration // first lockout
	MaxLockout      time.Duration
	Forget          time.Duration
}

// DefaultThrottle is the production setting: five failures lock an account
// for a minute, then two, four, ... up to an hour. A client address, which
// may be shared by many people behind one NAT, gets twenty.
func DefaultThrottle() ThrottleConfig {
	return ThrottleConfig{AccountFailures: 5, AddressFailures: 20, Lockout: time.Minute, MaxLockout: time.Hour, Forget: 24 * time.Hour}
}

// maxThrottleKeys bounds the memory an attacker can make the throttle use by
// trying many usernames or addresses.
const maxThrottleKeys = 100_000

type throttleEntry struct {
	failures    int
	lockedUntil time.Time
	last        time.Time
}

// throttle counts failed sign-ins in memory, per account and per address.
type throttle struct {
	cfg     ThrottleConfig
	mu      sync.Mutex
	entries map[string]*throttleEntry
}

func newThrottle(cfg ThrottleConfig) *throttle {
	return &throttle{cfg: cfg, entries: map[string]*throttleEntry{}}
}

func accountKey(username string) string { return "u:" + username }

// addressKey groups IPv6 clients by /64, the smallest block one site usually
// gets, so rotating through addresses of one network does not help.
func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "a:" + addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "a:" + p.String()
	}
	return "a:" + a.String()
}

// wait returns how long the caller must wait before keys may try again.
func (t *throttle) wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		if e, ok := t.entries[k]; ok && now.Before(e.lockedUntil) {
			longest = max(longest, e.lockedUntil.Sub(now))
		}
	}
	return longest
}

// fail records a failure for the account and the address.
func (t *throttle) fail(now time.Time, account, address string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= maxThrottleKeys {
		t.prune(now)
	}
	t.failKey(now, account, t.cfg.AccountFailures)
	t.failKey(now, address, t.cfg.AddressFailures)
}

func (t *throttle) failKey(now time.Time, key string, limit int) {
	e, ok := t.entries[key]
	if !ok || now.Sub(e.last) > t.cfg.Forget {
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	e.last = now
	if e.failures < limit {
		return
	}
	lock := t.cfg.Lockout
	for i := limit; i < e.failures && lock < t.cfg.MaxLockout; i++ {
		lock *= 2
	}
	e.lockedUntil = now.Add(min(lock, t.cfg.MaxLockout))
}

// succeed forgets the account's failures. The address keeps its count: one
// valid account must not let a client reset its budget for guessing others.
func (t *throttle) succeed(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, account)
}

// prune drops forgotten entries, and if that is not enough, every entry
// that is not currently locked.
func (t *throttle) prune(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.last) > t.cfg.Forget {
			delete(t.entries, k)
		}
	}
	if len(t.entries) < maxThrottleKeys {
		return
	}
	for k, e := range t.entries {
		if !now.Before(e.lockedUntil) {
			delete(t.entries, k)
		}
	}
}
