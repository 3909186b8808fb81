package proxyweb

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/idna"

	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
)

// domainHealths are the health states the domain list can be narrowed to,
// in the order the list offers them.
var domainHealths = []string{"up", "down", "maintenance", "unchecked"}

// maxDomainQuery bounds the search text of the domain list, in characters.
const maxDomainQuery = 100

// domainFilter narrows the domain list. The page and the API read it from
// the same query parameters: q, a case-insensitive substring of the domain's
// name or any alias, in punycode or Unicode form; server, the exact name of
// a server that must serve the domain; and health, the domain's health
// summary as the list shows it. The zero value keeps every domain.
type domainFilter struct {
	Q      string
	Server string
	Health string
}

// parseDomainFilter reads a filter from a raw query string, by the rules of
// web.ListQuery. On error the filter still holds what was given, fit to
// show back, so the page can show it again.
func parseDomainFilter(raw string) (domainFilter, Errors) {
	q := web.ParseListQuery(raw, "domain list", "q", "server", "health")
	f := domainFilter{Q: q.Search("q", maxDomainQuery), Health: q.Choice("health", "health state", domainHealths)}
	if s, ok := q.One("server", "server name", 64); ok && nodes.ValidName(s) != nil {
		q.Errors["server"] = fmt.Sprintf("%q is not a server name: use 1-64 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit", web.EchoText(s, 40))
		f.Server = web.EchoText(s, 64)
	} else {
		f.Server = s
	}
	return f, Errors(q.Errors)
}

// message is errs as one line for the API's error message.
func (e Errors) message() string {
	keys := e.keys()
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return strings.Join(parts, "; ")
}

// Active reports whether f narrows the list at all.
func (f domainFilter) Active() bool { return f.Q != "" || f.Server != "" || f.Health != "" }

// matchStored reports whether d passes the parts of f that need only the
// domain itself: the search text and the server.
func (f domainFilter) matchStored(d *ent.Domain) bool {
	if f.Server != "" && !slices.ContainsFunc(d.Edges.Servers, func(s *ent.Server) bool { return s.Name == f.Server }) {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	for _, name := range append([]string{d.Name}, d.Aliases...) {
		if strings.Contains(strings.ToLower(name), q) {
			return true
		}
		if strings.Contains(name, "xn--") {
			if u, err := idna.Display.ToUnicode(name); err == nil && strings.Contains(strings.ToLower(u), q) {
				return true
			}
		}
	}
	return false
}

// healthOf is st's health summary as a filter value.
func healthOf(st DomainStatus) string {
	if st.HealthState == "" {
		return "unchecked"
	}
	return st.HealthState
}

// filterDomains keeps the domains of all that pass f, in their order, and
// returns the status of each kept one. The status callback is asked once,
// for the domains the search text and server leave, and only when the
// caller shows the status or f filters by health.
func (h *handler) filterDomains(ctx context.Context, all []*ent.Domain, f domainFilter, wantStatus bool) ([]*ent.Domain, map[int]DomainStatus) {
	kept := all
	if f.Q != "" || f.Server != "" {
		kept = make([]*ent.Domain, 0, len(all))
		for _, d := range all {
			if f.matchStored(d) {
				kept = append(kept, d)
			}
		}
	}
	var status map[int]DomainStatus
	if h.status != nil && len(kept) > 0 && (wantStatus || f.Health != "") {
		ids := make([]int, len(kept))
		for i, d := range kept {
			ids[i] = d.ID
		}
		status = h.status(ctx, ids)
	}
	if f.Health != "" {
		kept = slices.DeleteFunc(slices.Clone(kept), func(d *ent.Domain) bool { return healthOf(status[d.ID]) != f.Health })
	}
	return kept, status
}

// link is the domain list page filtered by f.
func (f domainFilter) link() string {
	v := url.Values{}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	if f.Server != "" {
		v.Set("server", f.Server)
	}
	if f.Health != "" {
		v.Set("health", f.Health)
	}
	if len(v) == 0 {
		return "/domains"
	}
	return "/domains?" + v.Encode()
}

// WithServer links to the list filtered by f but by server name instead of
// f's server.
func (f domainFilter) WithServer(name string) string {
	f.Server = name
	return f.link()
}

// domainListData is what the domain list page shows.
type domainListData struct {
	Domains []domainRow
	// Total counts every domain, before filtering.
	Total  int
	Filter domainFilter
	// Errors says, per query parameter, why the filter was refused; the list
	// is then left empty.
	Errors Errors
	// Servers are the names the server select offers.
	Servers []string
	Healths []string
}

// Count is the "N of M domains" line of a filtered list.
func (d domainListData) Count() string {
	noun := "domains"
	if d.Total == 1 {
		noun = "domain"
	}
	return fmt.Sprintf("%d of %d %s", len(d.Domains), d.Total, noun)
}

// Because says in words what an active filter asks of a domain, one clause
// per part, for the empty list: "No domain <clause> and <clause>."
func (f domainFilter) Because() []string {
	var out []string
	if f.Q != "" {
		out = append(out, fmt.Sprintf("has a name or alias containing “%s”", f.Q))
	}
	if f.Server != "" {
		out = append(out, "is served by "+f.Server)
	}
	switch f.Health {
	case "up":
		out = append(out, "is up on every server it is checked on")
	case "down":
		out = append(out, "is down on any of its servers")
	case "maintenance":
		out = append(out, "is in maintenance")
	case "unchecked":
		out = append(out, "has no health check result yet")
	}
	return out
}
