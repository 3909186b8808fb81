package controller

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent/server"
)

// listFixture adds four servers through the API and then stores what their
// agents would have reported (hostname, addresses, status).
func listFixture(t *testing.T, e *editEnv) {
	t.Helper()
	for _, s := range []struct {
		name, address string
		labels        []string
		status        server.Status
		hostname      string
		reported      []string
	}{
		{"web-1", "203.0.113.10", []string{"prod", "eu-west"}, server.StatusOnline, "WEB1.fra.example.net", []string{"10.0.0.5/24", "2001:db8::5/64"}},
		{"web-2", "web-2.example.com", []string{"prod", "us-east"}, server.StatusOffline, "web2", nil},
		{"db-1", "198.51.100.7", []string{"staging", "eu-west"}, server.StatusPending, "", []string{"10.0.0.9/24"}},
		{"cache-1", "", nil, server.StatusPending, "", nil},
	} {
		var out struct {
			Server struct {
				ID int `json:"id"`
			} `json:"server"`
		}
		body := map[string]any{"name": s.name, "address": s.address, "labels": s.labels}
		if code, b := e.api("POST", "/api/v1/servers", e.admin, body, &out); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", s.name, code, b)
		}
		upd := e.c.db.Client.Server.UpdateOneID(out.Server.ID).SetStatus(s.status).SetHostname(s.hostname)
		if s.reported != nil {
			upd.SetAddresses(s.reported)
		}
		if s.status == server.StatusOnline {
			// Seen just now, so the offline check leaves it online.
			upd.SetLastSeenAt(time.Now())
		}
		if err := upd.Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// listNames asks the API for the server list with the raw query q and
// returns the names in the answer.
func listNames(t *testing.T, e *editEnv, token, q string) []string {
	t.Helper()
	var out struct {
		Servers []struct {
			Name string `json:"name"`
		} `json:"servers"`
	}
	if code, b := e.api("GET", "/api/v1/servers?"+q, token, nil, &out); code != http.StatusOK {
		t.Fatalf("GET /api/v1/servers?%s: %d %s", q, code, b)
	}
	if out.Servers == nil {
		t.Fatalf("GET /api/v1/servers?%s: servers is null, want a list", q)
	}
	names := make([]string, len(out.Servers))
	for i, s := range out.Servers {
		names[i] = s.Name
	}
	return names
}

func TestServerListFiltersThroughTheAPI(t *testing.T) {
	e := newEditEnv(t)
	listFixture(t, e)
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"cache-1", "db-1", "web-1", "web-2"}},
		{"q=&status=&label=", []string{"cache-1", "db-1", "web-1", "web-2"}},
		{"q=web", []string{"web-1", "web-2"}},
		{"q=" + url.QueryEscape("  web-2  "), []string{"web-2"}},
		{"q=wEb1.FRA", []string{"web-1"}},                // hostname, any case
		{"q=10.0.0.", []string{"db-1", "web-1"}},         // reported addresses
		{"q=2001:DB8::5", []string{"web-1"}},             // reported IPv6 address
		{"q=example.com", []string{"web-2"}},             // admin-set address
		{"q=203.0.113", []string{"web-1"}},               // admin-set IP address
		{"q=" + url.QueryEscape("<script>"), []string{}}, // matches nothing, refused by nothing
		{"label=prod", []string{"web-1", "web-2"}},
		{"label=eu-west", []string{"db-1", "web-1"}},
		{"label=prod&label=eu-west", []string{"web-1"}},
		{"label=prod&label=staging", []string{}},
		{"label=Prod", []string{}}, // labels match exactly
		{"label=nope", []string{}},
		{"status=pending", []string{"cache-1", "db-1"}},
		{"status=online", []string{"web-1"}},
		{"status=removed", []string{}},
		{"status=online&label=prod", []string{"web-1"}},
		{"status=offline&q=web", []string{"web-2"}},
		{"q=10.0.0&label=eu-west&status=pending", []string{"db-1"}},
		{"q=cache&status=online", []string{}},
	} {
		if got := listNames(t, e, e.admin, c.query); !slices.Equal(got, c.want) {
			t.Errorf("?%s: got %q, want %q", c.query, got, c.want)
		}
	}
}

func TestServerListRefusesBadFilters(t *testing.T) {
	e := newEditEnv(t)
	listFixture(t, e)
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = "label=l" + strings.Repeat("x", i+1)
	}
	for _, c := range []struct {
		query, field string
	}{
		{"q=" + strings.Repeat("a", 101), "q"},
		{"q=" + url.QueryEscape(strings.Repeat("é", 101)), "q"},
		{"q=web%00", "q"},
		{"q=a%09b", "q"},
		{"q=a%0Ab", "q"},
		{"q=%1B%5B31m", "q"},
		{"q=%FF", "q"},
		{"q=a&q=b", "q"},
		{"status=up", "status"},
		{"status=ONLINE", "status"},
		{"status=online&status=offline", "status"},
		{"status=" + url.QueryEscape("<b>"), "status"},
		{"label=a%3Bb", "label"},
		{"label=-x", "label"},
		{"label=" + url.QueryEscape("<script>"), "label"},
		{"label=" + strings.Repeat("l", 64), "label"},
		{"label=prod&label=%00", "label"},
		{strings.Join(seventeen, "&"), "label"},
		{"lable=prod", "lable"},
		{"q=%zz", "query"},
		{"q=a;b", "query"},
		{"=web", "query"},
	} {
		var out apiFields
		code, b := e.api("GET", "/api/v1/servers?"+c.query, e.admin, nil, &out)
		if code != http.StatusBadRequest || out.Error.Code != "invalid" || out.Error.Message == "" || out.Error.Fields[c.field] == "" {
			t.Errorf("?%s: %d %s; want 400 invalid with a message for %q", c.query, code, b, c.field)
		}
	}
	// A repeated label is one filter, not one too many.
	if got := listNames(t, e, e.admin, "label=prod&label=prod"); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Errorf("repeated label: %q", got)
	}
	// 100 characters is the most, not too many.
	if got := listNames(t, e, e.admin, "q="+strings.Repeat("é", 100)); len(got) != 0 {
		t.Errorf("100-character search: %q", got)
	}
}

func TestServerListFiltersForUsers(t *testing.T) {
	e := newEditEnv(t)
	listFixture(t, e)
	if got := listNames(t, e, e.user, "label=prod&status=offline"); !slices.Equal(got, []string{"web-2"}) {
		t.Errorf("a user's filtered list: %q", got)
	}
	var out apiFields
	if code, _ := e.api("GET", "/api/v1/servers?status=gone", e.user, nil, &out); code != http.StatusBadRequest || out.Error.Fields["status"] == "" {
		t.Errorf("a user's bad status: %d %+v", code, out)
	}
	if code, _ := e.api("GET", "/api/v1/servers?label=prod", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	code, _, body := send(t, e.browser(e.userLogin), "GET", e.base+"/servers?q=web&label=prod", nil)
	if code != http.StatusOK || !strings.Contains(body, "2 of 4 servers") || rowOf(body, "web-1") == "" || rowOf(body, "db-1") != "" {
		t.Errorf("a user's filtered page: %d\n%s", code, body)
	}
}

// rowOf returns the table row of the server named name in a list page, or
// "" when the page has none.
func rowOf(page, name string) string {
	for _, row := range regexp.MustCompile(`(?s)<tr data-server-id=.*?</tr>`).FindAllString(page, -1) {
		if strings.Contains(row, "<strong>"+name+"</strong>") {
			return row
		}
	}
	return ""
}

func TestServerListPageFilters(t *testing.T) {
	e := newEditEnv(t)
	listFixture(t, e)
	cl := e.browser(e.adminLogin)
	get := func(q string) (int, string) {
		t.Helper()
		code, _, body := send(t, cl, "GET", e.base+"/servers?"+q, nil)
		return code, body
	}

	// Unfiltered: every row, no count line, chips link to one label.
	code, body := get("")
	if code != http.StatusOK || strings.Contains(body, "Clear filters") || strings.Contains(body, " of 4 servers") {
		t.Fatalf("unfiltered page: %d\n%s", code, body)
	}
	for _, name := range []string{"web-1", "web-2", "db-1", "cache-1"} {
		if rowOf(body, name) == "" {
			t.Errorf("unfiltered page lacks %s", name)
		}
	}
	if row := rowOf(body, "web-1"); !strings.Contains(row, `href="/servers?label=eu-west"`) || !strings.Contains(row, `href="/servers?label=prod"`) {
		t.Errorf("label chips of web-1 do not link to the filtered list:\n%s", row)
	}
	if !strings.Contains(body, `data-live="servers"`) || !strings.Contains(rowOf(body, "web-1"), `data-field="status"`) {
		t.Error("the list no longer carries what live updates need")
	}

	// Filtered by label: the count, a way back, the rows that match, the
	// active label as a removable chip kept by the form, and row chips that
	// add their label to the filter.
	code, body = get("label=prod")
	if code != http.StatusOK || !strings.Contains(body, "2 of 4 servers") || !strings.Contains(body, `<a href="/servers">Clear filters</a>`) {
		t.Fatalf("label=prod page: %d\n%s", code, body)
	}
	if rowOf(body, "web-1") == "" || rowOf(body, "web-2") == "" || rowOf(body, "db-1") != "" || rowOf(body, "cache-1") != "" {
		t.Errorf("label=prod shows the wrong rows:\n%s", body)
	}
	if !strings.Contains(body, `<input type="hidden" name="label" value="prod">`) {
		t.Error("the filter form does not keep the active label")
	}
	if !strings.Contains(body, `<span class="badge badge-accent filter-chip">prod<a href="/servers" `) {
		t.Errorf("the active label is not a chip that removes it:\n%s", body)
	}
	if row := rowOf(body, "web-1"); !strings.Contains(row, `href="/servers?label=prod&amp;label=eu-west"`) {
		t.Errorf("a row chip does not add its label to the filter:\n%s", row)
	}

	// Combined filters are kept by every link; removing one label keeps the rest.
	code, body = get("q=web&status=online&label=prod&label=eu-west")
	if code != http.StatusOK || !strings.Contains(body, "1 of 4 servers") || rowOf(body, "web-1") == "" || rowOf(body, "web-2") != "" {
		t.Fatalf("combined filter page: %d\n%s", code, body)
	}
	for _, want := range []string{
		`value="web"`, `<option value="online" selected>`,
		`prod<a href="/servers?label=eu-west&amp;q=web&amp;status=online"`,
		`eu-west<a href="/servers?label=prod&amp;q=web&amp;status=online"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("combined filter page lacks %s", want)
		}
	}

	// Nothing matches: said so, with a way back.
	code, body = get("label=staging&status=online")
	if code != http.StatusOK || !strings.Contains(body, "0 of 4 servers") || !strings.Contains(body, "No server matches this filter") || strings.Contains(body, "<tr data-server-id") {
		t.Errorf("empty filtered page: %d\n%s", code, body)
	}

	// A hostile search comes back escaped, in the field and nowhere raw.
	code, body = get("q=" + url.QueryEscape(`"><script>alert(1)</script>`))
	if code != http.StatusOK || strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("hostile q not escaped: %d\n%s", code, body)
	}

	// Bad parameters: 400, the message, no rows, never a 500, and what was
	// typed shown escaped.
	for _, c := range []struct{ query, want string }{
		{"q=" + strings.Repeat("a", 101), "at most 100 characters"},
		{"q=a%00b", "printable characters only"},
		{"status=" + url.QueryEscape("<i>up</i>"), "must be one of pending, online, offline, removed"},
		{"label=" + url.QueryEscape(`<img src=x onerror=alert(1)>`), "is not a label"},
		{"sort=name", "is not a filter of the server list"},
	} {
		code, body := get(c.query)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) || !strings.Contains(body, "No servers shown") || strings.Contains(body, "<tr data-server-id") {
			t.Errorf("?%s: %d; want 400 saying %q without rows\n%s", c.query, code, c.want, body)
		}
		for _, raw := range []string{"<i>up</i>", "<img src=x"} {
			if strings.Contains(body, raw) {
				t.Errorf("?%s: %q comes back unescaped", c.query, raw)
			}
		}
	}
	_, body = get("label=prod&label=" + url.QueryEscape("<b>"))
	if !strings.Contains(body, `&lt;b&gt;<a href="/servers?label=prod"`) {
		t.Errorf("a refused label is not shown as a chip that removes it:\n%s", body)
	}
}
