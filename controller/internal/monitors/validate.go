package monitors

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kinds of monitor.
const (
	KindHTTP = "http"
	KindTCP  = "tcp"
)

// Limits of a monitor's settings.
const (
	MaxTarget        = 2048
	MinTimeoutMS     = 1000
	MaxTimeoutMS     = 60000
	DefaultTimeoutMS = 10000
)

// Input is a monitor's settings as an admin enters them.
type Input struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	TimeoutMS int    `json:"timeout_ms"`
	Enabled   bool   `json:"enabled"`
	// StatusPage lists it on the public status page.
	StatusPage bool `json:"status_page"`
}

// FieldErrors are refused settings: a message per field.
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	parts := make([]string, 0, len(e))
	for _, f := range []string{"name", "kind", "target", "timeout_ms"} {
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
	if in.TimeoutMS == 0 {
		in.TimeoutMS = DefaultTimeoutMS
	}
	if in.TimeoutMS < MinTimeoutMS || in.TimeoutMS > MaxTimeoutMS {
		errs["timeout_ms"] = "must be between 1000 and 60000 milliseconds"
	}
	switch in.Kind {
	case KindHTTP:
		if m := checkURL(in.Target); m != "" {
			errs["target"] = m
		}
	case KindTCP:
		if m := checkHostPort(in.Target); m != "" {
			errs["target"] = m
		}
	default:
		errs["kind"] = "choose http or tcp"
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
