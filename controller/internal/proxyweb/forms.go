package proxyweb

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
)

// Errors are field messages keyed like proxyconf's ("name", "routes[1].path", "aliases[0]").
// Templates call its methods to put each message beside its field.
type Errors map[string]string

// Get returns the message of one field.
func (e Errors) Get(key string) string { return e[key] }

// At returns the message of a field of row i of a list, such as At "routes" 1 "path".
func (e Errors) At(list string, i int, field string) string {
	return e[fmt.Sprintf("%s[%d].%s", list, i, field)]
}

// Row returns the messages about row i of a list as a whole and of its fields that have
// no input of their own.
func (e Errors) Row(list string, i int) string {
	return e[fmt.Sprintf("%s[%d]", list, i)]
}

// List returns the messages about a list and any of its entries ("aliases", "aliases[2]"),
// for a field that holds the whole list, such as a textarea with one entry per line.
func (e Errors) List(name string) []string {
	var out []string
	for _, k := range e.keys() {
		if k == name {
			out = append(out, e[k])
		} else if rest, ok := strings.CutPrefix(k, name+"["); ok {
			n, _, _ := strings.Cut(rest, "]")
			i, _ := strconv.Atoi(n)
			out = append(out, fmt.Sprintf("entry %d: %s", i+1, e[k]))
		}
	}
	return out
}

// Summary lists every message with the field it is about, for the top of a form.
func (e Errors) Summary() []string {
	out := make([]string, 0, len(e))
	for _, k := range e.keys() {
		if k == "" {
			out = append(out, e[k])
			continue
		}
		out = append(out, fieldLabel(k)+": "+e[k])
	}
	return out
}

func (e Errors) keys() []string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fieldLabel turns "routes[1].redirect_target" into "route 2 redirect target".
func fieldLabel(key string) string {
	var parts []string
	for _, seg := range strings.Split(key, ".") {
		name, idx, ok := strings.Cut(seg, "[")
		name = strings.ReplaceAll(name, "_", " ")
		if ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			name = fmt.Sprintf("%s %d", strings.TrimSuffix(name, "s"), n+1)
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, " ")
}

// fieldErrors returns err's field messages, if it is a validation error.
func fieldErrors(err error) (Errors, bool) {
	var fe nginxconf.FieldErrors
	if errors.As(err, &fe) {
		return Errors(fe), true
	}
	return nil, false
}

// maxRows bounds how many rows of a list a form may post.
const maxRows = 256

// rowCount reads how many rows of a list the form holds.
func rowCount(v url.Values, name string) int {
	n, err := strconv.Atoi(v.Get(name))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, maxRows)
}

// intField parses an optional whole number typed into a form; empty is 0.
func intField(v url.Values, name, key string, errs Errors) int {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 9 {
		errs[key] = "must be a whole number"
		return 0
	}
	return n
}

// itoa shows a stored number in a form; 0 means unset and shows as empty.
func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// splitList splits a textarea with one entry per line (commas and spaces also separate).
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
}

// action is what a form post asks for: "save", or an edit of the form's rows that is
// rendered back without saving ("add-route", "remove-route-2", "up-route-2", ...).
type action struct {
	verb string // save, add, remove, up
	list string
	row  int
}

func parseAction(v url.Values) action {
	a := v.Get("action")
	if a == "" || a == "save" {
		return action{verb: "save"}
	}
	parts := strings.Split(a, "-")
	switch {
	case len(parts) == 2 && parts[0] == "add":
		return action{verb: "add", list: parts[1]}
	case len(parts) == 3 && (parts[0] == "remove" || parts[0] == "up"):
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 0 || n >= maxRows {
			return action{verb: "save"}
		}
		return action{verb: parts[0], list: parts[1], row: n}
	}
	return action{verb: "save"}
}

// editRows applies an add, remove or move-up action to rows.
func editRows[T any](rows []T, a action) []T {
	switch a.verb {
	case "add":
		var zero T
		return append(rows, zero)
	case "remove":
		if a.row < len(rows) {
			return slices.Delete(rows, a.row, a.row+1)
		}
	case "up":
		if a.row > 0 && a.row < len(rows) {
			rows[a.row-1], rows[a.row] = rows[a.row], rows[a.row-1]
		}
	}
	return rows
}

// padRows appends empty rows so a form offers at least extra blank rows and min rows.
func padRows[T any](rows []T, extra, least int) []T {
	var zero T
	n := max(len(rows)+extra, least)
	for len(rows) < n {
		rows = append(rows, zero)
	}
	return rows
}

// ttlUnits are the units a cache lifetime may be written in, largest first.
var ttlUnits = []struct {
	suffix  byte
	seconds int
}{{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}

// parseTTL reads a cache lifetime such as "90s", "10m", "1h" or "7d" (a bare
// number counts seconds); empty or "0" caches nothing. The range is left to
// nginxconf.
func parseTTL(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, nil
	}
	unit := 1
	if i := len(s) - 1; s[i] < '0' || s[i] > '9' {
		found := false
		for _, u := range ttlUnits {
			if s[i] == u.suffix {
				unit, found = u.seconds, true
			}
		}
		if !found {
			return 0, errors.New(`must be a time such as "90s", "10m", "1h" or "7d"`)
		}
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || len(s) > 7 {
		return 0, errors.New(`must be a time such as "90s", "10m", "1h" or "7d"`)
	}
	return n * unit, nil
}

// formatTTL shows a stored cache lifetime in its largest exact unit; 0
// shows as empty.
func formatTTL(sec int) string {
	if sec <= 0 {
		return ""
	}
	for _, u := range ttlUnits {
		if sec%u.seconds == 0 {
			return strconv.Itoa(sec/u.seconds) + string(u.suffix)
		}
	}
	return strconv.Itoa(sec) + "s"
}
