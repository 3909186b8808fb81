package web

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ListQuery reads the filters of a list page, or of its API, from a raw
// query string. Every parameter is checked by allowlist, and an unknown one
// is refused, so that a typo does not silently list everything. Empty values
// count as absent (a GET form sends them). A refused value is kept fit to
// show back, so the page can show what was given.
type ListQuery struct {
	v url.Values
	// Errors holds a message per refused parameter.
	Errors map[string]string
}

// ParseListQuery checks the encoding of raw and that every parameter is one
// of names; list names the list in messages ("server list").
func ParseListQuery(raw, list string, names ...string) *ListQuery {
	q := &ListQuery{Errors: map[string]string{}}
	v, err := url.ParseQuery(raw)
	if err != nil {
		q.Errors["query"] = "is not valid URL encoding; use " + joinWords(names, "and") + " parameters"
	}
	for k := range v {
		switch {
		case slices.Contains(names, k):
		case k == "":
			q.Errors["query"] = "has a value without a name; use " + joinWords(names, "and") + " parameters"
		default:
			q.Errors[EchoText(k, 40)] = "is not a filter of the " + list + "; use " + joinWords(names, "or")
		}
	}
	q.v = v
	return q
}

// Values returns the non-empty values of name, as given.
func (q *ListQuery) Values(name string) []string {
	var out []string
	for _, v := range q.v[name] {
		if strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

// One returns the one value of name, trimmed, and whether there was one. A
// repeated name is refused ("give one <what>") and its first value returned
// fit to show back, at most max characters.
func (q *ListQuery) One(name, what string, max int) (string, bool) {
	vs := q.Values(name)
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return strings.TrimSpace(vs[0]), true
	}
	q.Errors[name] = "give one " + what
	return EchoText(strings.TrimSpace(vs[0]), max), false
}

// Search returns the search text of name: printable characters only, at
// most max of them, trimmed.
func (q *ListQuery) Search(name string, max int) string {
	vs := q.Values(name)
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		q.Errors[name] = "give one search text"
		return EchoText(vs[0], max)
	case !printable(vs[0]):
		q.Errors[name] = "use printable characters only, without tabs, line breaks or control characters"
		return EchoText(vs[0], max)
	}
	s := strings.TrimSpace(vs[0])
	if utf8.RuneCountInString(s) > max {
		q.Errors[name] = fmt.Sprintf("at most %d characters", max)
		return EchoText(s, max)
	}
	return s
}

// Choice returns the value of name, which must be one of choices; what
// names it in the message about a repeated one ("status").
func (q *ListQuery) Choice(name, what string, choices []string) string {
	vs := q.Values(name)
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		q.Errors[name] = "give one " + what + ": " + strings.Join(choices, ", ")
		return ""
	case !slices.Contains(choices, vs[0]):
		q.Errors[name] = "must be one of " + strings.Join(choices, ", ")
	}
	return EchoText(vs[0], 20)
}

// EchoText is s fit to show back: invalid bytes and unprintable characters
// replaced, at most n characters (a longer text ends in an ellipsis).
func EchoText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// printable reports whether s is valid UTF-8 of printable characters and
// plain spaces only.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// joinWords lists words as people write them: "a, b and c".
func joinWords(words []string, conj string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}
