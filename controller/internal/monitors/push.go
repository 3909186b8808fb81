package monitors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/monitor"
)

// Errors of a push. A push with an unknown token or to a monitor that is
// off records nothing; the web layer answers both alike, so a token's
// answer says nothing about other tokens.
var (
	// ErrPushOff is a push to a monitor that is turned off.
	ErrPushOff = errors.New("the monitor is off")
	// ErrTooSoon is a push less than PushEvery after the monitor's last
	// recorded one.
	ErrTooSoon = errors.New("one push a second is recorded; try again in a second")
	// ErrNotPush is a push token asked of a monitor of another kind.
	ErrNotPush = errors.New("only push monitors have a push URL")
)

// PushEvery is how often a push monitor records a push at most; more
// frequent pushes are refused without touching the database.
const PushEvery = time.Second

// tokenBytes is how many random bytes a push token holds.
const tokenBytes = 32

// newPushToken returns a fresh push token (URL-safe base64, 43
// characters) and the hash kept of it.
func newPushToken() (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make a push token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the hash a push token is kept and found by: SHA-256, in hex.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenShape reports whether token has the shape of a push token, so that
// anything else is turned away before the database is asked.
func TokenShape(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// pushDeadline is when a push monitor waiting since at gets a failed check
// unless a push comes first: after its interval and grace.
func pushDeadline(at time.Time, intervalS int) time.Time {
	return at.UTC().Add(time.Duration(intervalS)*time.Second + Grace(intervalS))
}

// describePush is a push monitor's settings for the audit log.
func describePush(in Input) string {
	state := "on"
	if !in.Enabled {
		state = "off"
	}
	if in.StatusPage {
		state += ", on the status page"
	}
	retries := ""
	if in.Retries > 0 {
		retries = fmt.Sprintf(", down after %d missed pushes", in.Retries+1)
	}
	return fmt.Sprintf("push every %d s (grace %s)%s, %s", in.IntervalS, Grace(in.IntervalS), retries, state)
}

// pushSettings adds to upd what an edit changes of a push monitor: a token
// for a monitor that becomes one (returned), none for one that stops being
// one, and a deadline counted afresh from now when it is turned on, made a
// push monitor or given another interval.
func (s *Service) pushSettings(upd *ent.MonitorUpdateOne, old *ent.Monitor, in Input, afresh bool) (token string, err error) {
	wasPush, isPush := old.Kind == monitor.KindPush, in.Kind == KindPush
	switch {
	case isPush && !wasPush:
		var hash string
		if token, hash, err = newPushToken(); err != nil {
			return "", err
		}
		upd.SetPushTokenHash(hash).ClearLastPushAt()
	case wasPush && !isPush:
		upd.ClearPushTokenHash().ClearLastPushAt().ClearPushDueAt()
	}
	if !isPush {
		return token, nil
	}
	switch {
	case !in.Enabled:
		upd.ClearPushDueAt()
	case afresh || !old.Enabled || old.IntervalS != in.IntervalS || old.PushDueAt == nil:
		upd.SetPushDueAt(pushDeadline(s.cfg.Now(), in.IntervalS))
	}
	return token, nil
}

// NewPushToken gives a push monitor a new push token, returned here once;
// the old one stops working at once.
func (s *Service) NewPushToken(ctx context.Context, actor audit.Actor, id int) (*ent.Monitor, string, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if m.Kind != monitor.KindPush {
		return nil, "", ErrNotPush
	}
	token, hash, err := newPushToken()
	if err != nil {
		return nil, "", err
	}
	m, err = s.db.Client.Monitor.UpdateOneID(id).Where(monitor.KindEQ(monitor.KindPush)).SetPushTokenHash(hash).Save(ctx)
	if ent.IsNotFound(err) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("save the push token: %w", err)
	}
	s.record(ctx, actor, "monitor.push_token", m.Name, "new push URL; the previous one no longer works")
	return m, token, nil
}

// Push records a push with token: at once a good check, or a failed one
// when the report says down, and the monitor's deadline moves to the push
// plus its interval and grace. A monitor records one push per PushEvery
// (ErrTooSoon, without a database write). An unknown token is ErrNotFound,
// a monitor turned off ErrPushOff.
func (s *Service) Push(ctx context.Context, token string, rep Report) (*ent.Monitor, error) {
	if !TokenShape(token) {
		return nil, ErrNotFound
	}
	hash := HashToken(token)
	now := s.cfg.Now().UTC()
	if !s.pushes.take(hash, now) {
		return nil, ErrTooSoon
	}
	recorded := false
	defer func() {
		if !recorded {
			s.pushes.give(hash, now)
		}
	}()
	m, err := s.db.Client.Monitor.Query().Where(monitor.PushTokenHash(hash)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find the monitor: %w", err)
	}
	msg := rep.Message
	if rep.Down && msg == "" {
		msg = "the push reported down"
	}
	if !rep.Down {
		msg = ""
	}
	row, err := s.apply(ctx, m, func(m *ent.Monitor) (outcome, bool, error) {
		// Judged again on a newer row, the token may have been replaced
		// or the monitor turned off meanwhile.
		switch {
		case m.Kind != monitor.KindPush || m.PushTokenHash == nil || *m.PushTokenHash != hash:
			return outcome{}, false, ErrNotFound
		case !m.Enabled:
			return outcome{}, false, ErrPushOff
		}
		return outcome{Result: Result{At: now, OK: !rep.Down, LatencyMS: rep.PingMS, Message: msg}, pushed: true,
			due: pushDeadline(now, m.IntervalS)}, true, nil
	})
	if err != nil {
		return nil, err
	}
	recorded = true
	return row, nil
}

// overdue gives a push monitor whose deadline passed without a push a
// failed check, dated at the deadline; its next deadline is the first of
// the following ones at intervals that is still ahead (so a controller that
// was stopped, and could take no push, does not count the time it was
// away).
func (s *Service) overdue(ctx context.Context, m *ent.Monitor) (*ent.Monitor, error) {
	now := s.cfg.Now().UTC()
	return s.apply(ctx, m, func(m *ent.Monitor) (outcome, bool, error) {
		if m.Kind != monitor.KindPush || !m.Enabled || m.PushDueAt == nil || now.Before(*m.PushDueAt) {
			return outcome{}, false, nil
		}
		due := m.PushDueAt.UTC()
		msg := "no push yet"
		if m.LastPushAt != nil {
			msg = "no push since " + m.LastPushAt.UTC().Format(time.RFC3339)
		}
		every := time.Duration(m.IntervalS) * time.Second
		next := due.Add(every * (now.Sub(due)/every + 1))
		return outcome{Result: Result{At: due, Message: msg}, due: next}, true, nil
	})
}

// limiter remembers when each push token last recorded a push.
type limiter struct {
	mu   sync.Mutex
	last map[string]time.Time // by token hash
}

func newLimiter() *limiter { return &limiter{last: map[string]time.Time{}} }

// limiterSweep is how many tokens the limiter holds before it forgets
// those whose second has passed.
const limiterSweep = 1024

// take claims key's push at now, unless its last one is less than
// PushEvery before.
func (l *limiter) take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && !now.Before(t) && now.Sub(t) < PushEvery {
		return false
	}
	if len(l.last) >= limiterSweep {
		for k, t := range l.last {
			if now.Sub(t) >= PushEvery || now.Before(t) {
				delete(l.last, k)
			}
		}
	}
	l.last[key] = now
	return true
}

// give hands back a claim that recorded nothing (an unknown token, a
// monitor turned off, a failed write).
func (l *limiter) give(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last[key].Equal(at) {
		delete(l.last, key)
	}
}
