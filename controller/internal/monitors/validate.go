package monitors

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kinds of monitor.
const (
	KindHTTP = "http"
	KindTCP  = "tcp"
	// KindTLS completes a TLS handshake on host:port (mail, databases and
	// other services that are not HTTP) and keeps the certificate's expiry.
	KindTLS = "tls"
	// KindPush is checked by nobody dialling: an outside job (cron, a
	// backup script) calls the monitor's secret push URL, and a push that
	// does not come in time is a failed check.
	KindPush = "push"
)

// Limits of a monitor's settings.
const (
	MaxTarget         = 2048
	MinTimeoutMS      = 1000
	MaxTimeoutMS      = 60000
	DefaultTimeoutMS  = 10000
	MinIntervalS      = 20
	MaxIntervalS      = 86400
	DefaultIntervalS  = 60
	MaxExpectBody     = 200
	MaxRetries        = 10
	maxStatusRanges   = 10
	DefaultExpectText = "200-399"
)

// Input is a monitor's settings as an admin enters them.
type Input struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	TimeoutMS int    `json:"timeout_ms"`
	// IntervalS is how often it is checked, in seconds.
	IntervalS int `json:"interval_s"`
	// Retries is how many failed checks in a row it tolerates before it
	// counts as down (0 to 10).
	Retries int `json:"retries"`
	// ExpectStatus lists the HTTP statuses that count as up, as codes and
	// ranges ("200-299,301"); empty means 200-399. HTTP only.
	ExpectStatus string `json:"expect_status"`
	// ExpectBody is text the first 64 KiB of the answer must hold. HTTP only.
	ExpectBody string `json:"expect_body"`
	// IgnoreTLSErrors accepts any certificate of an https target.
	IgnoreTLSErrors bool `json:"ignore_tls_errors"`
	Enabled         bool `json:"enabled"`
	// StatusPage lists it on the public status page.
	StatusPage bool `json:"status_page"`
}

// FieldErrors are refused settings: a message per field.
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	parts := make([]string, 0, len(e))
	for _, f := range []string{"name", "kind", "target", "timeout_ms", "interval_s", "retries", "expect_status", "expect_body", "ignore_tls_errors", "query", "status", "msg", "ping"} {
		if m, ok := e[f]; ok {
			parts = append(parts, f+": "+m)
		}
	}
	return strings.Join(parts, "; ")
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

// Validate trims spaces around in's fields (nothing else: a trailing CR or
// LF is refused, not hidden) and checks every field, returning the cleaned settings
// or the messages of the refused fields.
func Validate(in Input) (Input, error) {
	in.Name = strings.Trim(in.Name, " ")
	in.Kind = strings.Trim(in.Kind, " ")
	in.Target = strings.Trim(in.Target, " ")
	errs := FieldErrors{}
	switch {
	case in.Name == "":
		errs["name"] = "enter a name such as billing-api"
	case len(in.Name) > 64:
		errs["name"] = "must be at most 64 characters"
	case !namePattern.MatchString(in.Name):
		errs["name"] = "must start with a letter or digit and hold only letters, digits, spaces, dots, dashes and underscores"
	}
	switch {
	case in.Kind == KindPush:
		if in.TimeoutMS != 0 {
			errs["timeout_ms"] = "a push monitor waits for pushes and has no timeout; leave it out"
		}
	case in.TimeoutMS == 0:
		in.TimeoutMS = DefaultTimeoutMS
		fallthrough
	default:
		if in.TimeoutMS < MinTimeoutMS || in.TimeoutMS > MaxTimeoutMS {
			errs["timeout_ms"] = "must be between 1000 and 60000 milliseconds"
		}
	}
	if in.IntervalS == 0 {
		in.IntervalS = DefaultIntervalS
	}
	if in.IntervalS < MinIntervalS || in.IntervalS > MaxIntervalS {
		errs["interval_s"] = "must be between 20 seconds and 86400 seconds (a day)"
	}
	if in.Retries < 0 || in.Retries > MaxRetries {
		errs["retries"] = "must be between 0 and 10 failed checks"
	}
	in.ExpectStatus = strings.Trim(in.ExpectStatus, " ")
	switch in.Kind {
	case KindHTTP:
		if m := checkURL(in.Target); m != "" {
			errs["target"] = m
		}
		if in.ExpectStatus != "" {
			ranges, m := ParseStatuses(in.ExpectStatus)
			if m != "" {
				errs["expect_status"] = m
			} else {
				in.ExpectStatus = ranges.String()
			}
		}
		if m := checkExpectBody(in.ExpectBody); m != "" {
			errs["expect_body"] = m
		}
		if in.IgnoreTLSErrors && errs["target"] == "" && !strings.HasPrefix(in.Target, "https://") {
			errs["ignore_tls_errors"] = "applies only to https:// and TLS targets"
		}
	case KindTCP, KindTLS:
		if m := checkHostPort(in.Target); m != "" {
			errs["target"] = m
		}
		if in.ExpectStatus != "" {
			errs["expect_status"] = "only HTTP monitors have a status; leave it empty for " + strings.ToUpper(in.Kind)
		}
		if in.ExpectBody != "" {
			errs["expect_body"] = "only HTTP monitors have a body; leave it empty for " + strings.ToUpper(in.Kind)
		}
		if in.IgnoreTLSErrors && in.Kind == KindTCP {
			errs["ignore_tls_errors"] = "applies only to https:// and TLS targets"
		}
	case KindPush:
		if in.Target != "" {
			errs["target"] = "a push monitor has no target: your job calls its push URL; leave it empty"
		}
		if in.ExpectStatus != "" {
			errs["expect_status"] = "only HTTP monitors have a status; leave it empty for a push monitor"
		}
		if in.ExpectBody != "" {
			errs["expect_body"] = "only HTTP monitors have a body; leave it empty for a push monitor"
		}
		if in.IgnoreTLSErrors {
			errs["ignore_tls_errors"] = "applies only to https:// and TLS targets"
		}
	default:
		errs["kind"] = "choose http, tcp, tls or push"
	}
	if len(errs) > 0 {
		return in, errs
	}
	return in, nil
}

// targetChars are the characters a target may hold: those of URLs, less
// the ones that only ever serve an attack here (quotes, $, backslashes,
// angle brackets, braces, spaces and control characters).
func targetChars(s string) string {
	switch {
	case s == "":
		return "enter a target"
	case len(s) > MaxTarget:
		return "must be at most 2048 bytes"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:/?[]@!&()*+,;=%", c) >= 0
		if c == '#' {
			return "must not have a fragment (#)"
		}
		if !ok {
			return "must be plain ASCII without spaces, quotes, $, backslashes or control characters (percent-encode the rest)"
		}
	}
	return ""
}

func checkURL(s string) string {
	if m := targetChars(s); m != "" {
		return m
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL"
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "must start with http:// or https://"
	case u.Opaque != "" || u.Host == "":
		return "must be an absolute URL such as https://api.example.com/healthz"
	case u.User != nil:
		return "must not hold a user name or password"
	case u.Fragment != "":
		return "must not have a fragment (#)"
	}
	if m := checkHost(u.Hostname()); m != "" {
		return m
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if m := checkPort(p); m != "" {
			return m
		}
	}
	return ""
}

func checkHostPort(s string) string {
	if m := targetChars(s); m != "" {
		return m
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port, such as db.example.com:5432 or [2001:db8::1]:5432"
	}
	if m := checkHost(host); m != "" {
		return m
	}
	return checkPort(port)
}

func checkPort(p string) string {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return "the port must be a number from 1 to 65535"
	}
	return ""
}

// checkHost accepts a DNS name or an IP address without a zone.
func checkHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "the IP address must not name a zone"
		}
		return ""
	}
	if h == "" || len(h) > 253 {
		return "the host must be a DNS name or an IP address"
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "the host must be a DNS name (letters, digits, dashes between dots) or an IP address"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "the host must be a DNS name (letters, digits, dashes between dots) or an IP address"
			}
		}
	}
	return ""
}

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct{ Lo, Hi int }

// Statuses are the HTTP statuses a monitor counts as up.
type Statuses []StatusRange

// DefaultStatuses are 2xx and 3xx.
var DefaultStatuses = Statuses{{200, 399}}

// Has reports whether code is one of them.
func (s Statuses) Has(code int) bool {
	for _, r := range s {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// String writes them the way ParseStatuses reads them.
func (s Statuses) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, ",")
}

// ParseStatuses reads comma-separated codes and ranges such as
// "200-299, 301"; the message says what is wrong when it is refused.
func ParseStatuses(text string) (Statuses, string) {
	const usage = "list codes and ranges from 100 to 599, such as 200-299,301"
	if len(text) > 100 {
		return nil, "must be at most 100 characters"
	}
	items := strings.Split(text, ",")
	if len(items) > maxStatusRanges {
		return nil, "must list at most 10 codes or ranges"
	}
	var out Statuses
	for _, item := range items {
		item = strings.Trim(item, " ")
		lo, hi, isRange := strings.Cut(item, "-")
		a, ok := statusCode(strings.Trim(lo, " "))
		b := a
		if isRange {
			var okHi bool
			b, okHi = statusCode(strings.Trim(hi, " "))
			ok = ok && okHi
		}
		if !ok {
			return nil, usage
		}
		if b < a {
			return nil, "a range must run from the lower code to the higher, such as 200-299"
		}
		out = append(out, StatusRange{a, b})
	}
	return out, ""
}

// statusCode reads three digits from 100 to 599.
func statusCode(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 100 && n <= 599
}

// checkExpectBody accepts printable text without control characters.
func checkExpectBody(s string) string {
	switch {
	case len(s) > MaxExpectBody:
		return "must be at most 200 bytes"
	case !utf8.ValidString(s):
		return "must be valid UTF-8 text"
	case s != strings.TrimSpace(s):
		return "must not start or end with spaces"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must be one line of text without control characters"
		}
	}
	return ""
}

// Grace is how much longer than its interval a push monitor waits for a
// push before the check fails: a tenth of the interval, at least 30 s, so
// a job that runs a little late or slow is not counted as missing.
func Grace(intervalS int) time.Duration {
	return max(time.Duration(intervalS)*time.Second/10, MinGrace)
}

// MinGrace is the shortest grace a push monitor gets.
const MinGrace = 30 * time.Second

// Limits of a push.
const (
	// MaxPushMessage is how many characters a push's msg may hold.
	MaxPushMessage = 200
	// MaxPushPing is the largest ping a push may report: a day, in ms.
	MaxPushPing = 86400000
)

// Report is what one push says: up or down, why, and how long the job took.
type Report struct {
	// Down is true for ?status=down.
	Down bool
	// Message is the push's msg: one line of printable text, at most
	// MaxPushMessage characters.
	Message string
	// PingMS is the time the job reports (?ping=), 0 without one.
	PingMS int
}

// ParseReport reads a push's query string: status (up or down), msg and
// ping, each at most once. Anything else is refused, so that a misspelt
// ?stauts=down is not taken for a good push.
func ParseReport(rawQuery string) (Report, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Report{}, FieldErrors{"query": "the query string could not be read: use status=up or down, msg=TEXT and ping=MS, percent-encoded and joined with &"}
	}
	errs := FieldErrors{}
	var rep Report
	for name, vals := range q {
		switch name {
		case "status", "msg", "ping":
		default:
			errs["query"] = "unknown parameter " + strconv.Quote(clip(name, 40)) + "; a push takes status, msg and ping"
			continue
		}
		if len(vals) > 1 {
			errs[name] = "give it once"
		}
	}
	if len(errs) > 0 {
		return Report{}, errs
	}
	switch q.Get("status") {
	case "", "up":
	case "down":
		rep.Down = true
	default:
		errs["status"] = "must be up or down"
	}
	if m := checkPushMessage(q.Get("msg")); m != "" {
		errs["msg"] = m
	} else {
		rep.Message = q.Get("msg")
	}
	if p := q.Get("ping"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > MaxPushPing || strconv.Itoa(n) != p {
			errs["ping"] = "must be a whole number of milliseconds from 0 to 86400000"
		} else {
			rep.PingMS = n
		}
	}
	if len(errs) > 0 {
		return Report{}, errs
	}
	return rep, nil
}

// checkPushMessage accepts one line of printable UTF-8 text of at most
// MaxPushMessage characters.
func checkPushMessage(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be UTF-8 text"
	case utf8.RuneCountInString(s) > MaxPushMessage:
		return "must be at most 200 characters"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "must be one line of printable text, without control characters"
		}
	}
	return ""
}
