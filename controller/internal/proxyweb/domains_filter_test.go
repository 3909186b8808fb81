package proxyweb

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
)

// statusBook plays the controller's domain status callback: it answers
// from a table by domain name and remembers every call.
type statusBook struct {
	mu     sync.Mutex
	byName map[string]DomainStatus
	names  map[int]string
	calls  [][]int
}

func (b *statusBook) status(_ context.Context, ids []int) map[int]DomainStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, slices.Clone(ids))
	out := map[int]DomainStatus{}
	for _, id := range ids {
		if st, ok := b.byName[b.names[id]]; ok {
			out[id] = st
		}
	}
	return out
}

// takeCalls returns the calls since the last take, sorted ids each.
func (b *statusBook) takeCalls() [][]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := b.calls
	b.calls = nil
	for _, c := range calls {
		slices.Sort(c)
	}
	return calls
}

// filterEnv is an env with four domains on three servers, each in another
// health state:
//
//	api.example.net        alias café.example.net   db-1          maintenance
//	blog.example.org                                no server     unchecked
//	shop.example.com       alias www.shop…          web-1, web-2  up
//	xn--bcher-kva.example  (bücher.example)         web-1         down on 1 of 2
type filterEnv struct {
	*env
	book          *statusBook
	ids           map[string]int
	admin, viewer auth.User
}

func newFilterEnv(t *testing.T) *filterEnv {
	t.Helper()
	book := &statusBook{names: map[int]string{}, byName: map[string]DomainStatus{
		"api.example.net":       {Health: "maintenance", HealthClass: "warn", HealthState: "maintenance"},
		"shop.example.com":      {Health: "up", HealthClass: "ok", HealthState: "up", Uptime: "99.9%"},
		"xn--bcher-kva.example": {Health: "down on 1 of 2", HealthClass: "bad", HealthState: "down"},
	}}
	e := newEnv(t, openDB(t, "sqlite"), func(d *Deps) { d.Status = book.status })
	web1, web2, db1 := e.server("web-1"), e.server("web-2"), e.server("db-1")
	fe := &filterEnv{env: e, book: book, ids: map[string]int{}}
	for _, in := range []proxyconf.DomainInput{
		{Name: "api.example.net", Aliases: []string{"café.example.net"}, Servers: []int{db1.ID}},
		{Name: "blog.example.org"},
		{Name: "shop.example.com", Aliases: []string{"www.shop.example.com"}, Servers: []int{web1.ID, web2.ID}},
		{Name: "bücher.example", Servers: []int{web1.ID}},
	} {
		d, err := e.proxy.CreateDomain(context.Background(), adminActor, in)
		if err != nil {
			t.Fatalf("create %s: %v", in.Name, err)
		}
		fe.ids[d.Name] = d.ID
		book.names[d.ID] = d.Name
	}
	if _, ok := fe.ids["xn--bcher-kva.example"]; !ok {
		t.Fatalf("bücher.example is not stored in punycode: %v", fe.ids)
	}
	fe.admin, fe.viewer = e.createUser("admin", auth.RoleAdmin), e.createUser("viewer", auth.RoleUser)
	return fe
}

// listDomains asks the API for the domain list with the raw query q, as
// who, and returns the names in the answer.
func (fe *filterEnv) listDomains(as who, q string) []string {
	fe.t.Helper()
	r := fe.do(as, "GET", "/api/v1/domains?"+q, nil)
	if r.StatusCode != http.StatusOK {
		fe.t.Fatalf("GET /api/v1/domains?%s: %d %s", q, r.StatusCode, r.body)
	}
	out := decode[struct {
		Domains []struct {
			Name string `json:"name"`
		} `json:"domains"`
	}](fe.t, r)
	if out.Domains == nil {
		fe.t.Fatalf("GET /api/v1/domains?%s: domains is null, want a list", q)
	}
	names := make([]string, len(out.Domains))
	for i, d := range out.Domains {
		names[i] = d.Name
	}
	return names
}

func TestDomainListFiltersThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newFilterEnv(t)
	admin := e.token(e.admin)
	const api, blog, shop, bucher = "api.example.net", "blog.example.org", "shop.example.com", "xn--bcher-kva.example"
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{api, blog, shop, bucher}},
		{"q=&server=&health=", []string{api, blog, shop, bucher}},
		{"q=" + url.QueryEscape("   "), []string{api, blog, shop, bucher}},
		{"q=SHOP", []string{shop}},
		{"q=" + url.QueryEscape("  shop.example  "), []string{shop}},
		{"q=www.shop", []string{shop}},                                 // an alias
		{"q=example", []string{api, blog, shop, bucher}},               // every name
		{"q=.org", []string{blog}},                                     // any part of the name
		{"q=" + url.QueryEscape("bücher"), []string{bucher}},           // the Unicode form of the name
		{"q=" + url.QueryEscape("BÜCHER.EX"), []string{bucher}},        // in any case
		{"q=xn--bcher", []string{bucher}},                              // the punycode form
		{"q=" + url.QueryEscape("café"), []string{api}},                // the Unicode form of an alias
		{"q=xn--caf", []string{api}},                                   // the punycode form of an alias
		{"q=" + url.QueryEscape("<script>"), []string{}},               // matches nothing, refused by nothing
		{"q=" + url.QueryEscape(strings.Repeat("é", 100)), []string{}}, // 100 characters is the most, not too many
		{"server=web-1", []string{shop, bucher}},
		{"server=web-2", []string{shop}},
		{"server=db-1", []string{api}},
		{"server=" + url.QueryEscape(" db-1 "), []string{api}},
		{"server=web", []string{}},    // names match exactly
		{"server=gone-1", []string{}}, // a valid name no server has
		{"health=up", []string{shop}},
		{"health=down", []string{bucher}}, // down on one of its two servers
		{"health=maintenance", []string{api}},
		{"health=unchecked", []string{blog}},
		{"q=example&server=web-1", []string{shop, bucher}},
		{"server=web-1&health=down", []string{bucher}},
		{"server=web-2&health=down", []string{}},
		{"q=" + url.QueryEscape("bücher") + "&server=web-1&health=down", []string{bucher}},
		{"q=shop&server=web-1&health=up", []string{shop}},
		{"q=shop&health=maintenance", []string{}},
		{"q=api&server=db-1&health=maintenance", []string{api}},
	} {
		if got := e.listDomains(admin, c.query); !slices.Equal(got, c.want) {
			t.Errorf("?%s: got %q, want %q", c.query, got, c.want)
		}
	}
}

func TestDomainListRefusesBadFilters(t *testing.T) {
	t.Parallel()
	e := newFilterEnv(t)
	admin := e.token(e.admin)
	for _, c := range []struct{ query, field string }{
		{"q=" + strings.Repeat("a", 101), "q"},
		{"q=" + url.QueryEscape(strings.Repeat("é", 101)), "q"},
		{"q=shop%00", "q"},
		{"q=a%09b", "q"},
		{"q=a%0Ab", "q"},
		{"q=%1B%5B31m", "q"},
		{"q=%FF", "q"},
		{"q=a&q=b", "q"},
		{"q=shop&q=shop", "q"},
		{"server=Web-1", "server"},
		{"server=-web", "server"},
		{"server=web_1", "server"},
		{"server=a%3Bb", "server"},
		{"server=" + url.QueryEscape("<script>"), "server"},
		{"server=" + strings.Repeat("w", 65), "server"},
		{"server=web%00", "server"},
		{"server=web-1&server=web-2", "server"},
		{"health=UP", "health"},
		{"health=sick", "health"},
		{"health=" + url.QueryEscape("<b>"), "health"},
		{"health=up&health=down", "health"},
		{"status=up", "status"}, // a filter of the server list, not of this one
		{"sort=name", "sort"},
		{"q=%zz", "query"},
		{"q=a;b", "query"},
		{"=shop", "query"},
	} {
		r := e.do(admin, "GET", "/api/v1/domains?"+c.query, nil)
		out := decode[apiError](t, r)
		if r.StatusCode != http.StatusBadRequest || out.Error.Code != "invalid" || out.Error.Message == "" || out.Error.Fields[c.field] == "" {
			t.Errorf("?%s: %d %s; want 400 invalid with a message for %q", c.query, r.StatusCode, r.body, c.field)
		}
	}
	// Several bad parameters are all named, each with its own message.
	r := e.do(admin, "GET", "/api/v1/domains?q=a%00&server=X&health=sick&colour=red", nil)
	out := decode[apiError](t, r)
	for _, f := range []string{"q", "server", "health", "colour"} {
		if out.Error.Fields[f] == "" || !strings.Contains(out.Error.Message, f+": ") {
			t.Errorf("field %s is not named: %s", f, r.body)
		}
	}
	if calls := e.book.takeCalls(); len(calls) != 0 {
		t.Errorf("a refused filter still asked for domain status: %v", calls)
	}
}

func TestDomainListAsksForStatusOnce(t *testing.T) {
	t.Parallel()
	e := newFilterEnv(t)
	viewer := e.login("viewer")
	token := e.token(e.viewer)
	sorted := func(names ...string) []int {
		var ids []int
		for _, n := range names {
			ids = append(ids, e.ids[n])
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		as    who
		path  string
		calls [][]int
	}{
		// The API shows no status, so it asks only when filtering by health.
		{token, "/api/v1/domains?server=web-1", nil},
		{token, "/api/v1/domains?health=up", [][]int{sorted("api.example.net", "blog.example.org", "shop.example.com", "xn--bcher-kva.example")}},
		// The search text and server are applied first; status is asked once
		// for what is left, never per row.
		{token, "/api/v1/domains?server=web-1&health=down", [][]int{sorted("shop.example.com", "xn--bcher-kva.example")}},
		{viewer, "/domains", [][]int{sorted("api.example.net", "blog.example.org", "shop.example.com", "xn--bcher-kva.example")}},
		{viewer, "/domains?q=shop&health=up", [][]int{sorted("shop.example.com")}},
		{viewer, "/domains?q=nothing-matches", nil},
	} {
		if r := e.do(c.as, "GET", c.path, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.path, r.StatusCode, r.body)
		}
		if got := e.book.takeCalls(); !slices.EqualFunc(got, c.calls, slices.Equal) {
			t.Errorf("%s: status asked %v, want %v", c.path, got, c.calls)
		}
	}
}

func TestDomainListFiltersForUsers(t *testing.T) {
	t.Parallel()
	e := newFilterEnv(t)
	if got := e.listDomains(e.token(e.viewer), "server=web-1&health=up"); !slices.Equal(got, []string{"shop.example.com"}) {
		t.Errorf("a user's filtered list: %q", got)
	}
	r := e.do(e.token(e.viewer), "GET", "/api/v1/domains?health=gone", nil)
	if out := decode[apiError](t, r); r.StatusCode != http.StatusBadRequest || out.Error.Fields["health"] == "" {
		t.Errorf("a user's bad health: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(anonymous, "GET", "/api/v1/domains?server=web-1", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.StatusCode)
	}
	r = e.do(e.login("viewer"), "GET", "/domains?q="+url.QueryEscape("bücher"), nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "1 of 4 domains") || domainRowOf(r.body, "xn--bcher-kva.example") == "" || domainRowOf(r.body, "shop.example.com") != "" {
		t.Errorf("a user's filtered page: %d\n%s", r.StatusCode, r.body)
	}
}

// domainRowOf returns the table row of the domain named name in a list
// page, or "" when the page has none.
func domainRowOf(page, name string) string {
	for _, row := range regexp.MustCompile(`(?s)<tr data-domain=.*?</tr>`).FindAllString(page, -1) {
		if strings.HasPrefix(row, `<tr data-domain="`+name+`"`) {
			return row
		}
	}
	return ""
}

func TestDomainListPageFilters(t *testing.T) {
	t.Parallel()
	e := newFilterEnv(t)
	admin := e.login("admin")
	get := func(q string) (int, string) {
		t.Helper()
		r := e.do(admin, "GET", "/domains?"+q, nil)
		return r.StatusCode, r.body
	}
	all := []string{"api.example.net", "blog.example.org", "shop.example.com", "xn--bcher-kva.example"}

	// Unfiltered: every row, no count line, the filter bar offering every
	// server and health state, and server names linking to the list of
	// what that server serves.
	code, body := get("")
	if code != http.StatusOK || strings.Contains(body, "Clear filters") || strings.Contains(body, " of 4 domains") {
		t.Fatalf("unfiltered page: %d\n%s", code, body)
	}
	for _, name := range all {
		if domainRowOf(body, name) == "" {
			t.Errorf("unfiltered page lacks %s", name)
		}
	}
	for _, want := range []string{
		`<form class="filters domain-filters" method="get" action="/domains"`,
		`<input type="search" name="q" value=""`,
		`<option value="db-1">db-1</option><option value="web-1">web-1</option><option value="web-2">web-2</option>`,
		`<option value="up">up</option><option value="down">down</option><option value="maintenance">maintenance</option><option value="unchecked">unchecked</option>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("unfiltered page lacks %s", want)
		}
	}
	row := domainRowOf(body, "shop.example.com")
	for _, want := range []string{`href="/domains?server=web-1"`, `href="/domains?server=web-2"`, `data-health><a class="status status-ok"`, "99.9%"} {
		if !strings.Contains(row, want) {
			t.Errorf("shop row lacks %s:\n%s", want, row)
		}
	}
	if !strings.Contains(row, `href="/servers/`) {
		t.Errorf("shop row no longer links to its servers' revisions:\n%s", row)
	}

	// Filtered: the count, a way back, the matching rows, the form keeping
	// the filter, and server links that keep the rest of it.
	code, body = get("q=example&health=up")
	if code != http.StatusOK || !strings.Contains(body, "<strong>1 of 4 domains</strong> · <a href=\"/domains\">Clear filters</a>") {
		t.Fatalf("filtered page: %d\n%s", code, body)
	}
	if domainRowOf(body, "shop.example.com") == "" || domainRowOf(body, "api.example.net") != "" {
		t.Errorf("health=up shows the wrong rows:\n%s", body)
	}
	for _, want := range []string{`name="q" value="example"`, `<option value="up" selected>`, `href="/domains?health=up&amp;q=example&amp;server=web-2"`} {
		if !strings.Contains(body, want) {
			t.Errorf("filtered page lacks %s", want)
		}
	}

	// Following a server link picks that server in the select.
	code, body = get("server=web-2")
	if code != http.StatusOK || !strings.Contains(body, "1 of 4 domains") || !strings.Contains(body, `<option value="web-2" selected>`) {
		t.Errorf("server=web-2 page: %d\n%s", code, body)
	}
	// A valid name no server has is kept in the select, and matches nothing.
	code, body = get("server=gone-1")
	if code != http.StatusOK || !strings.Contains(body, `<option value="gone-1" selected>`) || !strings.Contains(body, "0 of 4 domains") {
		t.Errorf("server=gone-1 page: %d\n%s", code, body)
	}

	// An IDN is found by its Unicode form, which the row shows too.
	code, body = get("q=" + url.QueryEscape("Bücher"))
	if row := domainRowOf(body, "xn--bcher-kva.example"); code != http.StatusOK || row == "" || !strings.Contains(row, "bücher.example") || !strings.Contains(body, "1 of 4 domains") {
		t.Errorf("IDN search: %d\n%s", code, body)
	}

	// Nothing matches: said so, with what was asked and a way back.
	code, body = get("q=shop&server=db-1&health=unchecked")
	if code != http.StatusOK || !strings.Contains(body, "0 of 4 domains") || strings.Contains(body, "<tr data-domain") ||
		!strings.Contains(body, "No domain has a name or alias containing “shop” and is served by db-1 and has no health check result yet.") {
		t.Errorf("empty filtered page: %d\n%s", code, body)
	}

	// A hostile search comes back escaped, in the field and nowhere raw.
	code, body = get("q=" + url.QueryEscape(`"><script>alert(1)</script>`))
	if code != http.StatusOK || strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) ||
		!strings.Contains(body, "containing “&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;”") {
		t.Errorf("hostile q not escaped: %d\n%s", code, body)
	}

	// Bad parameters: 400, the message, no rows, a way back, never a 500,
	// and what was typed shown escaped.
	for _, c := range []struct{ query, want string }{
		{"q=" + strings.Repeat("a", 101), "at most 100 characters"},
		{"q=a%00b", "printable characters only"},
		{"q=a%1B%5B31m", "printable characters only"},
		{"q=a&q=b", "give one search text"},
		{"server=" + url.QueryEscape(`<img src=x onerror=alert(1)>`), "is not a server name"},
		{"health=" + url.QueryEscape("<i>up</i>"), "must be one of up, down, maintenance, unchecked"},
		{"health=up&health=down", "give one health state"},
		{"sort=name", "is not a filter of the domain list"},
		{url.QueryEscape("<i>x</i>") + "=1", "is not a filter of the domain list"},
	} {
		code, body := get(c.query)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, "No domains shown") ||
			strings.Contains(body, "<tr data-domain") || !strings.Contains(body, `<a href="/domains">clear filters</a>`) {
			t.Errorf("?%s: %d; want 400 saying %q without rows\n%s", c.query, code, c.want, body)
		}
		for _, raw := range []string{"<i>", "<img src=x"} {
			if strings.Contains(body, raw) {
				t.Errorf("?%s: %q comes back unescaped", c.query, raw)
			}
		}
	}
}

// TestBrowserFiltersDomains uses the filter bar in headless Chromium as a
// user: a search and a server picked in the select are sent as a plain GET
// form, and a server name in a row narrows the list to that server.
func TestBrowserFiltersDomains(t *testing.T) {
	e := newFilterEnv(t)
	b := browsertest.New(t, 25*time.Second)
	b.OnFail = func() string { return "server log:\n" + e.logs.String() }
	type C = browsertest.CSS
	b.SignIn(e.http.URL, "viewer", "viewer password")
	b.Do("search for an IDN on one server",
		chromedp.Navigate(e.http.URL+"/domains"),
		chromedp.WaitVisible(C(`form.domain-filters`)),
		chromedp.SendKeys(C(`form.domain-filters input[name=q]`), "bücher"),
		chromedp.SetValue(C(`form.domain-filters select[name=server]`), "web-1"),
		chromedp.Click(C(`form.domain-filters button[type=submit]`)),
		chromedp.WaitVisible(C(`.filter-summary`)),
	)
	if got := b.Text(`.filter-summary strong`); got != "1 of 4 domains" {
		t.Errorf("count after searching: %q", got)
	}
	if got := browsertest.Eval[string](b, `location.search`); got != "?q=b%C3%BCcher&server=web-1&health=" {
		t.Errorf("the form sent %q", got)
	}
	if got := browsertest.Eval[string](b, `[...document.querySelectorAll("tr[data-domain]")].map((r) => r.dataset.domain).join(" ")`); got != "xn--bcher-kva.example" {
		t.Errorf("rows after searching: %q", got)
	}
	b.Do("follow a server link",
		chromedp.Navigate(e.http.URL+"/domains"),
		chromedp.WaitVisible(C(`tr[data-domain="shop.example.com"]`)),
		chromedp.Click(C(`tr[data-domain="shop.example.com"] a[data-server-filter][href="/domains?server=web-2"]`)),
		chromedp.WaitVisible(C(`.filter-summary`)),
	)
	if got := b.Text(`.filter-summary strong`); got != "1 of 4 domains" {
		t.Errorf("count after following web-2: %q", got)
	}
	if got := browsertest.Eval[string](b, `document.querySelector("select[name=server]").value`); got != "web-2" {
		t.Errorf("the select shows %q after following web-2", got)
	}
}
