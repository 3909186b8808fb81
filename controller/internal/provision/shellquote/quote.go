// Package shellquote quotes arguments for a POSIX shell.
//
// Every argument of a command that Gatehouse runs on a node passes through
// Quote (usually by way of Join), so that no byte of user input can change
// the shape of the command line: it is always one literal word.
package shellquote

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNUL is returned by Join for an argument containing a NUL byte, which no
// shell word can carry.
var ErrNUL = errors.New("argument contains a NUL byte")

// reserved are the POSIX shell reserved words (plus common extensions), which
// would change meaning as the first word of a command if left unquoted.
var reserved = map[string]bool{
	"!": true, "{": true, "}": true, "case": true, "do": true, "done": true,
	"elif": true, "else": true, "esac": true, "fi": true, "for": true,
	"if": true, "in": true, "then": true, "until": true, "while": true,
	"function": true, "select": true, "time": true, "coproc": true,
}

// plain reports whether s can stand as a shell word without quotes: made only
// of bytes that no POSIX shell treats specially, and not a reserved word.
func plain(s string) bool {
	if s == "" || reserved[s] {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == '/', c == ':', c == ',', c == '+', c == '@', c == '%':
		default:
			return false
		}
	}
	return true
}

// Quote returns s as a single POSIX shell word that expands to exactly s.
// Words made only of harmless characters are returned as they are; anything
// else is wrapped in single quotes, each single quote inside becoming a
// close-quote, an escaped quote and a reopen:
//
//	it's  ->  'it'\''s'
//
// s must not contain a NUL byte (no shell word can); Quote panics if it does.
// Code handling untrusted input calls Join or Check, which return ErrNUL.
func Quote(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		panic("shellquote: Quote called with a NUL byte; use Join or Check for untrusted input")
	}
	if plain(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Check returns an error if s cannot be quoted (it contains a NUL byte).
func Check(s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("%w (at byte %d)", ErrNUL, i)
	}
	return nil
}

// Join quotes each argument with Quote and joins them with spaces, giving a
// command line whose words are exactly argv. It fails on an empty argv or on
// any argument containing a NUL byte.
func Join(argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	var b strings.Builder
	for i, a := range argv {
		if err := Check(a); err != nil {
			return "", fmt.Errorf("argument %d: %w", i, err)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Quote(a))
	}
	return b.String(), nil
}
