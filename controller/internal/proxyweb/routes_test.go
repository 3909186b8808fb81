package proxyweb

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
)

// concretePath turns a route pattern into a path that reaches it.
func concretePath(pattern string) string {
	return strings.NewReplacer("{id}", "1", "{uid}", "1", "{n}", "1").Replace(pattern)
}

// TestRoutePolicies walks this package's routes: each declares a policy, nobody signed in
// gets through, and a plain user is refused every admin route while reading works.
func TestRoutePolicies(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"))
	e.createUser("admin", auth.RoleAdmin)
	plain := e.createUser("plain", auth.RoleUser)
	userSession := e.login("plain")
	userToken := e.token(plain)
	adminSession := e.login("admin")

	h := &handler{}
	mine := h.routes()
	registered := map[string]web.Route{}
	for _, rt := range e.web.Routes() {
		registered[rt.Method+" "+rt.Pattern] = rt
	}
	admins := 0
	for _, rt := range mine {
		name := rt.Method + " " + rt.Pattern
		if _, ok := registered[name]; !ok {
			t.Errorf("%s is not registered", name)
		}
		if rt.Policy != web.PolicyUser && rt.Policy != web.PolicyAdmin {
			t.Errorf("%s: policy %s; proxy routes are for users or admins only", name, rt.Policy)
		}
		if rt.Method != "GET" && rt.Policy != web.PolicyAdmin {
			t.Errorf("%s changes something but is not admin-only", name)
		}
		path := concretePath(rt.Pattern)

		anon := e.do(anonymous, rt.Method, path, nil)
		if rt.Kind == web.KindAPI {
			if anon.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without credentials: %d, want 401", name, anon.StatusCode)
			}
		} else if anon.StatusCode != http.StatusSeeOther || !strings.HasPrefix(anon.Header.Get("Location"), "/login") {
			t.Errorf("%s without a session: %d to %q, want a redirect to /login", name, anon.StatusCode, anon.Header.Get("Location"))
		}

		as := userSession
		if rt.Kind == web.KindAPI {
			as = userToken
		}
		got := e.do(as, rt.Method, path, nil)
		switch rt.Policy {
		case web.PolicyAdmin:
			admins++
			if got.StatusCode != http.StatusForbidden {
				t.Errorf("%s as a user: %d, want 403", name, got.StatusCode)
			}
			if a := e.do(adminSession, rt.Method, path, nil); a.StatusCode == http.StatusForbidden || a.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s as an admin: %d", name, a.StatusCode)
			}
		case web.PolicyUser:
			if got.StatusCode == http.StatusForbidden || got.StatusCode == http.StatusUnauthorized || got.StatusCode >= 500 {
				t.Errorf("%s as a user: %d: %s", name, got.StatusCode, got.body)
			}
		}
	}
	if admins == 0 {
		t.Fatal("no admin routes walked")
	}

	// The navigation offers the three lists in their places.
	page := e.do(userSession, "GET", "/domains", nil)
	nav := page.body[strings.Index(page.body, `<nav class="nav"`):]
	nav = nav[:strings.Index(nav, "</nav>")]
	iD, iU, iS := strings.Index(nav, ">Domains<"), strings.Index(nav, ">Upstreams<"), strings.Index(nav, ">Streams<")
	if iD < 0 || iU < iD || iS < iU {
		t.Errorf("navigation does not list Domains, Upstreams, Streams in order: %s", nav)
	}
	if !strings.Contains(nav, `href="/domains" aria-current="page"`) {
		t.Errorf("Domains is not marked current on /domains: %s", nav)
	}
}
