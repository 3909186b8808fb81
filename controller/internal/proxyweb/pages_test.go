package proxyweb

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/domain"
)

// fieldError finds the message rendered right after the input named name.
func fieldError(body, name string) string {
	re := regexp.MustCompile(`name="` + regexp.QuoteMeta(html.EscapeString(name)) + `"[^>]*>(?:\s*</select>)?(?:\s*<span class="hint">.*?</span>)?\s*<p class="field-error">([^<]*)</p>`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// inputValue returns the value attribute of the input named name.
func inputValue(body, name string) (string, bool) {
	re := regexp.MustCompile(`name="` + regexp.QuoteMeta(html.EscapeString(name)) + `"[^>]*value="([^"]*)"`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

func upstreamPost(name string, targets ...[2]string) url.Values {
	v := url.Values{"name": {name}, "method": {"round_robin"}, "target_rows": {strconv.Itoa(len(targets) + 1)}, "action": {"save"}}
	for i, t := range targets {
		v.Set(fmt.Sprintf("targets[%d].host", i), t[0])
		v.Set(fmt.Sprintf("targets[%d].port", i), t[1])
	}
	return v
}

func TestUpstreamForms(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.createUser("admin", auth.RoleAdmin)
		e.createUser("viewer", auth.RoleUser)
		admin, viewer := e.login("admin"), e.login("viewer")

		// Adding a row posts the form back with one more row and stores nothing.
		v := upstreamPost("app", [2]string{"10.0.0.1", "8080"})
		v.Set("action", "add-targets")
		r := e.do(admin, "POST", "/upstreams", v)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `name="targets[2].host"`) || !strings.Contains(r.body, `name="target_rows" value="3"`) {
			t.Fatalf("add a row: %d, rows missing", r.StatusCode)
		}
		if got, _ := inputValue(r.body, "targets[0].host"); got != "10.0.0.1" {
			t.Errorf("add a row lost the typed host: %q", got)
		}
		if e.counts()[0] != 0 {
			t.Fatal("adding a row stored the upstream")
		}

		// Validation errors appear beside their fields and the form keeps the input.
		v = upstreamPost("app", [2]string{"10.0.0.1", "8080"}, [2]string{"bad host;", "99999"})
		v.Set("keepalive", "many")
		r = e.do(admin, "POST", "/upstreams", v)
		if r.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("hostile form: %d", r.StatusCode)
		}
		if msg := fieldError(r.body, "keepalive"); msg != "must be a whole number" {
			t.Errorf("keepalive message %q", msg)
		}
		if got, _ := inputValue(r.body, "keepalive"); got != "many" {
			t.Errorf("keepalive not kept: %q", got)
		}
		v.Set("keepalive", "8")
		r = e.do(admin, "POST", "/upstreams", v)
		if r.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("hostile targets: %d", r.StatusCode)
		}
		if msg := fieldError(r.body, "targets[1].host"); msg == "" {
			t.Errorf("no message beside targets[1].host")
		}
		if msg := fieldError(r.body, "targets[1].port"); !strings.Contains(msg, "65535") {
			t.Errorf("port message %q", msg)
		}
		if got, _ := inputValue(r.body, "targets[1].host"); got != "bad host;" {
			t.Errorf("typed host not kept: %q", got)
		}
		if c := e.counts(); c[0] != 0 || c[3] != 0 {
			t.Fatalf("refused form stored something: %v", c)
		}

		// A valid form creates it; the list shows it to any user.
		r = e.follow(admin, e.do(admin, "POST", "/upstreams", upstreamPost("app", [2]string{"10.0.0.1", "8080"}, [2]string{"backend.internal", "9000"})))
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Upstream app created") {
			t.Fatalf("create: %d", r.StatusCode)
		}
		list := e.do(viewer, "GET", "/upstreams", nil)
		if !strings.Contains(list.body, `data-upstream="app"`) || !strings.Contains(list.body, "backend.internal:9000") {
			t.Errorf("upstream list lacks the new upstream")
		}
		u := e.db.Client.Upstream.Query().OnlyX(context.Background())

		// A user sees the editor read-only and cannot post it.
		page := e.do(viewer, "GET", fmt.Sprintf("/upstreams/%d", u.ID), nil)
		if !strings.Contains(page.body, `<fieldset class="stack" disabled>`) || strings.Contains(page.body, "Save upstream") {
			t.Errorf("a user's upstream page is editable")
		}
		if r := e.do(viewer, "POST", fmt.Sprintf("/upstreams/%d", u.ID), upstreamPost("evil", [2]string{"10.0.0.9", "80"})); r.StatusCode != http.StatusForbidden {
			t.Errorf("user posts the editor: %d", r.StatusCode)
		}

		// Removing a target row and saving keeps the other.
		v = upstreamPost("app", [2]string{"10.0.0.1", "8080"}, [2]string{"backend.internal", "9000"})
		v.Set("action", "remove-targets-0")
		r = e.do(admin, "POST", fmt.Sprintf("/upstreams/%d", u.ID), v)
		if got, _ := inputValue(r.body, "targets[0].host"); got != "backend.internal" {
			t.Fatalf("after removing row 0 the first row is %q", got)
		}

		// Delete is refused while a domain uses the upstream, with the reason.
		if _, err := e.proxy.CreateDomain(context.Background(), adminActor, domainUsing("example.com", "app")); err != nil {
			t.Fatal(err)
		}
		r = e.do(admin, "POST", fmt.Sprintf("/upstreams/%d/delete", u.ID), url.Values{})
		if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "data-delete-refused") || !strings.Contains(r.body, "domain example.com") {
			t.Errorf("delete in use: %d", r.StatusCode)
		}
		if e.counts()[0] != 1 {
			t.Error("upstream in use was removed")
		}
	})
}

// domainPost builds a posted domain editor with the given routes (match, path, kind,
// upstream or target) on the servers.
func domainPost(name string, servers []int, routes ...[4]string) url.Values {
	v := url.Values{"name": {name}, "aliases": {"www." + name}, "action": {"save"},
		"route_rows": {strconv.Itoa(len(routes) + 1)}, "header_rows": {"1"}}
	for _, id := range servers {
		v.Add("servers", strconv.Itoa(id))
	}
	for i, r := range routes {
		p := fmt.Sprintf("routes[%d].", i)
		v.Set(p+"match", r[0])
		v.Set(p+"path", r[1])
		v.Set(p+"kind", r[2])
		v.Set(p+"redirect_code", "301")
		switch r[2] {
		case "proxy":
			v.Set(p+"upstream", r[3])
		case "redirect":
			v.Set(p+"redirect_target", r[3])
		case "respond":
			v.Set(p+"respond_status", "200")
			v.Set(p+"respond_body", r[3])
		}
	}
	// The blank row every editor offers.
	n := len(routes)
	v.Set(fmt.Sprintf("routes[%d].match", n), "prefix")
	v.Set(fmt.Sprintf("routes[%d].kind", n), "proxy")
	v.Set(fmt.Sprintf("routes[%d].redirect_code", n), "301")
	return v
}

func TestDomainForms(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.createUser("admin", auth.RoleAdmin)
		admin := e.login("admin")
		s1, s2 := e.server("edge-1"), e.server("edge-2")
		if r := e.do(admin, "POST", "/upstreams", upstreamPost("app", [2]string{"10.0.0.1", "8080"})); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("create upstream: %d", r.StatusCode)
		}

		// A hostile route path is refused beside its field; everything typed stays.
		bad := domainPost("example.com", []int{s1.ID},
			[4]string{"prefix", "/", "proxy", "app"},
			[4]string{"exact", "/x{ return 200; }", "respond", "hi"})
		r := e.do(admin, "POST", "/domains", bad)
		if r.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("hostile route: %d", r.StatusCode)
		}
		if msg := fieldError(r.body, "routes[1].path"); msg == "" {
			t.Errorf("no message beside routes[1].path:\n%s", r.body)
		}
		if got, _ := inputValue(r.body, "routes[1].path"); got != "/x{ return 200; }" {
			t.Errorf("typed path not kept: %q", got)
		}
		if !strings.Contains(r.body, fmt.Sprintf(`name="servers" value="%d" checked`, s1.ID)) || strings.Contains(r.body, fmt.Sprintf(`name="servers" value="%d" checked`, s2.ID)) {
			t.Errorf("server choice not kept")
		}
		if !strings.Contains(r.body, "route 2 path:") {
			t.Errorf("error summary does not name the route")
		}
		if c := e.counts(); c[1] != 0 || c[2] != 0 {
			t.Fatalf("refused domain stored: %v", c)
		}

		// A rate that is not a number is refused beside its field.
		badRate := domainPost("example.com", []int{s1.ID}, [4]string{"prefix", "/", "proxy", "app"})
		badRate.Set("rate_limit", "ten")
		if r := e.do(admin, "POST", "/domains", badRate); r.StatusCode != http.StatusUnprocessableEntity ||
			!regexp.MustCompile(`name="rate_limit"[^>]*value="ten"[^>]*aria-invalid="true"`).MatchString(r.body) || !strings.Contains(r.body, "must be a whole number") {
			t.Errorf("a rate that is not a number: %d", r.StatusCode)
		}

		// A cache lifetime that is not a time is refused beside its field.
		badTTL := domainPost("example.com", []int{s1.ID}, [4]string{"prefix", "/", "proxy", "app"})
		badTTL.Set("routes[0].cache_ttl", "1 week")
		if r := e.do(admin, "POST", "/domains", badTTL); r.StatusCode != http.StatusUnprocessableEntity ||
			!regexp.MustCompile(`name="routes\[0\]\.cache_ttl"[^>]*value="1 week"[^>]*aria-invalid="true"`).MatchString(r.body) || !strings.Contains(r.body, "must be a time such as") {
			t.Errorf("a cache lifetime that is not a time: %d", r.StatusCode)
		}

		// Moving a route up swaps rows without saving.
		move := domainPost("example.com", nil, [4]string{"prefix", "/a", "proxy", "app"}, [4]string{"prefix", "/b", "proxy", "app"})
		move.Set("action", "up-routes-1")
		r = e.do(admin, "POST", "/domains", move)
		if got, _ := inputValue(r.body, "routes[0].path"); r.StatusCode != http.StatusOK || got != "/b" {
			t.Errorf("move up: %d, first path %q", r.StatusCode, got)
		}

		// A valid editor creates the domain with both routes in order.
		good := domainPost("example.com", []int{s1.ID, s2.ID},
			[4]string{"prefix", "/", "proxy", "app"},
			[4]string{"exact", "/old", "redirect", "https://example.com/new"})
		good.Set("routes[0].websocket", "1")
		good.Set("routes[0].cache_ttl", "2h")
		good.Set("compress", "1")
		good.Set("redirect_aliases", "1")
		good.Set("rate_limit", "10")
		good.Set("rate_unit", "m")
		good.Set("rate_burst", "5")
		good.Set("maintenance_message", "Back soon.")
		good.Set("response_headers[0].name", "X-Frame-Options")
		good.Set("response_headers[0].value", "DENY")
		r = e.follow(admin, e.do(admin, "POST", "/domains", good))
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Domain example.com created") {
			t.Fatalf("create domain: %d", r.StatusCode)
		}
		d := e.db.Client.Domain.Query().Where(domain.Name("example.com")).WithRoutes().WithServers().OnlyX(context.Background())
		if len(d.Edges.Routes) != 2 || len(d.Edges.Servers) != 2 || d.Aliases[0] != "www.example.com" || d.ResponseHeaders[0].Value != "DENY" ||
			!d.RedirectAliases || d.RateLimit != 10 || d.RateUnit != "m" || d.RateBurst != 5 || d.MaintenanceMessage != "Back soon." || !d.Compress {
			t.Fatalf("stored domain: %+v", d)
		}
		for _, rt := range d.Edges.Routes {
			if rt.Position == 0 && (rt.Path != "/" || !rt.Websocket || rt.CacheTTL != 7200) || rt.Position == 1 && (rt.Path != "/old" || rt.RedirectCode != 301) {
				t.Errorf("stored route %d: %+v", rt.Position, rt)
			}
		}
		// Duplicate: the new-domain editor holds a copy without the names.
		dup := e.do(admin, "GET", fmt.Sprintf("/domains/new?from=%d", d.ID), nil)
		if name, _ := inputValue(dup.body, "name"); dup.StatusCode != http.StatusOK || name != "" ||
			!strings.Contains(dup.body, `name="redirect_aliases" value="1" checked`) || !strings.Contains(dup.body, ">New domain<") {
			t.Errorf("duplicate editor: %d, name %q", dup.StatusCode, name)
		}
		if got, _ := inputValue(dup.body, "routes[1].path"); got != "/old" {
			t.Errorf("duplicate editor route: %q", got)
		}
		if got, _ := inputValue(dup.body, "rate_limit"); got != "10" {
			t.Errorf("duplicate editor rate limit: %q", got)
		}
		if got, _ := inputValue(dup.body, "routes[0].cache_ttl"); got != "2h" || !strings.Contains(dup.body, `name="compress" value="1" checked`) {
			t.Errorf("duplicate editor: cache lifetime %q, compression checked %v", got, strings.Contains(dup.body, `name="compress" value="1" checked`))
		}
		for _, bad := range []string{"abc", "0", "999999"} {
			if r := e.do(admin, "GET", "/domains/new?from="+bad, nil); r.StatusCode != http.StatusNotFound {
				t.Errorf("duplicate from %q: %d", bad, r.StatusCode)
			}
		}

		// A domain with a cached route offers a purge, which says so.
		if !strings.Contains(r.body, `action="/domains/`+strconv.Itoa(d.ID)+`/cache/purge"`) {
			t.Errorf("the editor of a domain that caches offers no purge")
		}
		purged := e.follow(admin, e.do(admin, "POST", fmt.Sprintf("/domains/%d/cache/purge", d.ID), url.Values{}))
		if purged.StatusCode != http.StatusOK || !strings.Contains(purged.body, "Cache of example.com purged") {
			t.Errorf("purge page: %d", purged.StatusCode)
		}
		if g := e.db.Client.Domain.GetX(context.Background(), d.ID).CacheGeneration; g != 1 {
			t.Errorf("cache generation after a purge: %d", g)
		}

		// The editor shows it back with its blank rows.
		if !strings.Contains(r.body, `name="redirect_aliases" value="1" checked`) {
			t.Errorf("editor does not show the aliases redirected")
		}
		if got, _ := inputValue(r.body, "rate_limit"); got != "10" || !strings.Contains(r.body, `<option value="m" selected>per minute</option>`) {
			t.Errorf("editor shows rate limit %q", got)
		}
		if got, _ := inputValue(r.body, "routes[1].redirect_target"); got != "https://example.com/new" {
			t.Errorf("editor shows redirect target %q", got)
		}
		if _, ok := inputValue(r.body, "routes[2].path"); !ok {
			t.Errorf("editor offers no blank route row")
		}
		if !strings.Contains(r.body, `<li class="route-row route-new" data-row="2">`) || strings.Contains(r.body, `<li class="route-row route-new" data-row="1">`) {
			t.Errorf("the blank route row is not the only one marked new")
		}

		list := e.do(admin, "GET", "/domains", nil)
		if !strings.Contains(list.body, `data-domain="example.com"`) || !strings.Contains(list.body, "www.example.com") || !strings.Contains(list.body, "edge-2") {
			t.Errorf("domain list lacks the domain")
		}
		if !strings.Contains(list.body, "not rendered") {
			t.Errorf("domain list does not show that nothing was rendered yet")
		}

		// Basic-auth users: add, a refused password keeps the dialog open, delete.
		r = e.do(admin, "POST", fmt.Sprintf("/domains/%d/users", d.ID), url.Values{"username": {"ops"}, "password": {"a long secret"}})
		r = e.follow(admin, r)
		if !strings.Contains(r.body, `data-auth-user="ops"`) {
			t.Fatalf("basic-auth user not listed")
		}
		r = e.do(admin, "POST", fmt.Sprintf("/domains/%d/users", d.ID), url.Values{"username": {"bad user\n"}, "password": {"a long secret"}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="add-user" aria-labelledby="add-user-title" open`) {
			t.Errorf("refused user: %d, dialog not open", r.StatusCode)
		}
		if strings.Contains(r.body, "bad user\n") {
			t.Error("a refused user name is reflected")
		}
		uid := e.db.Client.BasicAuthUser.Query().OnlyIDX(context.Background())
		r = e.do(admin, "POST", fmt.Sprintf("/domains/%d/users/%d/password", d.ID, uid), url.Values{"password": {""}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, fmt.Sprintf(`id="password-%d" aria-labelledby="password-%d-title" open`, uid, uid)) ||
			!strings.Contains(r.body, "must not be empty") {
			t.Errorf("empty password: %d, dialog not open with the message", r.StatusCode)
		}
		if r := e.do(admin, "POST", fmt.Sprintf("/domains/%d/users/%d/delete", d.ID, uid), url.Values{}); r.StatusCode != http.StatusSeeOther {
			t.Errorf("delete user: %d", r.StatusCode)
		}
		if n := e.db.Client.BasicAuthUser.Query().CountX(context.Background()); n != 0 {
			t.Errorf("%d users left", n)
		}
	})
}

func TestStreamForms(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"))
	e.createUser("admin", auth.RoleAdmin)
	admin := e.login("admin")
	s := e.server("edge-1")
	if r := e.do(admin, "POST", "/upstreams", upstreamPost("db", [2]string{"10.0.0.5", "5432"})); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("create upstream: %d", r.StatusCode)
	}
	r := e.do(admin, "POST", "/streams", url.Values{"name": {"pg"}, "listen_port": {"80"}, "protocol": {"tcp"}, "upstream": {"db"}, "servers": {strconv.Itoa(s.ID)}})
	if r.StatusCode != http.StatusUnprocessableEntity || fieldError(r.body, "listen_port") == "" {
		t.Fatalf("port 80 stream: %d", r.StatusCode)
	}
	r = e.follow(admin, e.do(admin, "POST", "/streams", url.Values{"name": {"pg"}, "listen_port": {"5432"}, "protocol": {"tcp"}, "upstream": {"db"}, "servers": {strconv.Itoa(s.ID)}}))
	if !strings.Contains(r.body, `data-stream="pg"`) || !strings.Contains(r.body, "5432/tcp") {
		t.Fatalf("stream not listed: %d", r.StatusCode)
	}
}
