package nginxstatus

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxBodySize bounds a stub_status body. nginx's own is under 200 bytes even
// with every counter at its largest.
const MaxBodySize = 1 << 10

// Status is one reading of nginx's stub_status counters.
type Status struct {
	// Active is the number of open client connections, Reading, Writing and
	// Waiting (idle keep-alive) included.
	Active, Reading, Writing, Waiting uint32
	// Accepts, Handled and Requests count connections accepted, connections
	// handled and requests served since nginx started.
	Accepts, Handled, Requests uint64
}

// statusLines is the exact text nginx writes (ngx_http_stub_status_module),
// one entry per line without its newline; each '#' stands for a decimal
// number. Note the trailing spaces.
var statusLines = [...]string{
	"Active connections: # ",
	"server accepts handled requests",
	" # # # ",
	"Reading: # Writing: # Waiting: # ",
}

// maxDigits is the length of the largest uint64 in decimal.
const maxDigits = 20

// Parse reads a stub_status body. It accepts nginx's exact format only: four
// lines, each ending in a newline, with the spacing nginx writes and
// canonical decimal numbers (no sign, no leading zeros); anything else,
// anything over MaxBodySize and any number beyond its field's range is an
// error saying which line failed.
func Parse(body []byte) (Status, error) {
	if len(body) > MaxBodySize {
		return Status{}, fmt.Errorf("stub_status body is %d bytes, more than the %d allowed", len(body), MaxBodySize)
	}
	var nums [8]uint64 // 1 + 3 + 3 numbers over the lines, in order
	n := 0
	rest := body
	for i, tmpl := range statusLines {
		line, tail, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			if len(rest) == 0 {
				return Status{}, fmt.Errorf("stub_status body ends after line %d; want %d lines", i, len(statusLines))
			}
			return Status{}, fmt.Errorf("stub_status line %d %s: no newline at its end", i+1, quote(rest))
		}
		got, err := matchLine(line, tmpl)
		if err != nil {
			return Status{}, fmt.Errorf("stub_status line %d %s: %w (want %q)", i+1, quote(line), err, want(tmpl))
		}
		n += copy(nums[n:], got)
		rest = tail
	}
	if len(rest) != 0 {
		return Status{}, fmt.Errorf("stub_status has %d unexpected bytes after line %d: %s", len(rest), len(statusLines), quote(rest))
	}
	s := Status{Accepts: nums[1], Handled: nums[2], Requests: nums[3]}
	gauges := []struct {
		name string
		v    uint64
		p    *uint32
	}{
		{"active connections", nums[0], &s.Active},
		{"reading", nums[4], &s.Reading},
		{"writing", nums[5], &s.Writing},
		{"waiting", nums[6], &s.Waiting},
	}
	for _, g := range gauges {
		if g.v > math.MaxUint32 {
			return Status{}, fmt.Errorf("stub_status %s %d is beyond %d", g.name, g.v, uint64(math.MaxUint32))
		}
		*g.p = uint32(g.v)
	}
	return s, nil
}

// matchLine matches line against tmpl and returns the numbers in place of
// its '#'s.
func matchLine(line []byte, tmpl string) ([]uint64, error) {
	var nums []uint64
	i := 0
	for j := 0; j < len(tmpl); j++ {
		if tmpl[j] != '#' {
			if i >= len(line) {
				return nil, errors.New("line ends early")
			}
			if line[i] != tmpl[j] {
				return nil, fmt.Errorf("unexpected %q at byte %d", line[i], i+1)
			}
			i++
			continue
		}
		start := i
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i++
		}
		digits := line[start:i]
		switch {
		case len(digits) == 0:
			return nil, fmt.Errorf("want a number at byte %d", start+1)
		case len(digits) > 1 && digits[0] == '0':
			return nil, fmt.Errorf("number %s at byte %d has a leading zero", quote(digits), start+1)
		case len(digits) > maxDigits:
			return nil, fmt.Errorf("number at byte %d has %d digits, beyond 64 bits", start+1, len(digits))
		}
		v, err := strconv.ParseUint(string(digits), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s at byte %d is beyond 64 bits", quote(digits), start+1)
		}
		nums = append(nums, v)
	}
	if i != len(line) {
		return nil, fmt.Errorf("unexpected %q at byte %d", line[i], i+1)
	}
	return nums, nil
}

// want renders a line template for an error message.
func want(tmpl string) string {
	return strings.ReplaceAll(tmpl, "#", "N")
}

// quote renders untrusted bytes for an error message: quoted, so control
// characters cannot forge log lines, and cut to 64 bytes.
func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
