package auth

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Errors returned by the services. Callers map them to responses; none of
// them says whether a username exists.
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrInvalidToken       = errors.New("invalid, expired or revoked api token")
	ErrLastAdmin          = errors.New("at least one enabled admin must remain; promote or enable another admin first")
)

// FieldErrors reports invalid input, one message per field, written for the
// person who typed it.
type FieldErrors map[string]string

func (f FieldErrors) Error() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+f[k])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// orNil returns f as an error, or nil when it holds no messages.
func (f FieldErrors) orNil() error {
	if len(f) == 0 {
		return nil
	}
	return f
}

// ThrottledError means too many sign-in attempts failed recently for the
// account or from the client address; nothing is checked until RetryAfter passes.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-in attempts; try again in %s", roundUp(e.RetryAfter))
}

// roundUp renders d in whole seconds or minutes, never as "0s".
func roundUp(d time.Duration) string {
	if d <= time.Minute {
		s := (d + time.Second - 1) / time.Second
		if s < 1 {
			s = 1
		}
		return fmt.Sprintf("%d seconds", s)
	}
	return fmt.Sprintf("%d minutes", (d+time.Minute-1)/time.Minute)
}
