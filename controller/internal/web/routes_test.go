package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// concretePath turns a route pattern into a path that reaches it.
func concretePath(pattern string) string {
	p := strings.ReplaceAll(pattern, "{$}", "")
	p = strings.ReplaceAll(p, "{id}", "1")
	if strings.HasSuffix(p, "/") && p != "/" {
		p += "app.css" // a file under a prefix route such as /static/
	}
	return p
}

func TestRouteTableWalk(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("admin", "admin password", auth.RoleAdmin)
		e.createUser("plain", "plain password", auth.RoleUser)
		userCookie := e.login("plain", "plain password")
		plain, _ := e.users.Lookup(t.Context(), "plain")
		_, userToken, err := e.tokens.Create(t.Context(), audit.System("test"), plain.ID, "walk", nil)
		if err != nil {
			t.Fatal(err)
		}

		routes := e.srv.Routes()
		var public []string
		for _, rt := range routes {
			if rt.Policy == PolicyPublic {
				public = append(public, rt.Method+" "+rt.Pattern)
			}
		}
		slices.Sort(public)
		want := []string{"GET /healthz", "GET /login", "GET /login/code", "GET /readyz", "GET /static/", "POST /login", "POST /login/code"}
		if !slices.Equal(public, want) {
			t.Fatalf("public routes %v, want exactly %v", public, want)
		}

		for _, rt := range routes {
			name := rt.Method + " " + rt.Pattern
			path := concretePath(rt.Pattern)
			anon := e.do(req{method: rt.Method, path: path})
			for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
				if anon.Header.Get(h) == "" {
					t.Errorf("%s: no %s header", name, h)
				}
			}
			switch {
			case rt.Policy == PolicyPublic:
				// (POST /login without credentials answers 401 with the login form, and the code
				// page sends a browser without a right password back to /login: that is the
				// handler, not the guard.)
				if (rt.Kind == KindAPI && anon.StatusCode == http.StatusUnauthorized) || anon.StatusCode == http.StatusForbidden ||
					(anon.StatusCode == http.StatusSeeOther && strings.HasPrefix(anon.Header.Get("Location"), "/login") && rt.Pattern != "/login/code") {
					t.Errorf("%s: public route refused an anonymous request (%d)", name, anon.StatusCode)
				}
			case rt.Kind == KindAPI:
				if anon.StatusCode != http.StatusUnauthorized || apiError(t, anon).Code != "unauthenticated" {
					t.Errorf("%s: anonymous got %d %q, want 401 JSON", name, anon.StatusCode, anon.body)
				}
			default:
				if anon.StatusCode != http.StatusSeeOther || !strings.HasPrefix(anon.Header.Get("Location"), "/login") {
					t.Errorf("%s: anonymous got %d to %q, want 303 to /login", name, anon.StatusCode, anon.Header.Get("Location"))
				}
			}
			if rt.Policy != PolicyAdmin {
				continue
			}
			asUser := e.do(req{method: rt.Method, path: path, cookie: userCookie})
			if asUser.StatusCode != http.StatusForbidden {
				t.Errorf("%s: user session got %d, want 403", name, asUser.StatusCode)
			}
			if rt.Kind == KindAPI {
				if apiError(t, asUser).Code != "forbidden" {
					t.Errorf("%s: user session got %q", name, asUser.body)
				}
				withToken := e.do(req{method: rt.Method, path: path, bearer: userToken})
				if withToken.StatusCode != http.StatusForbidden || apiError(t, withToken).Code != "forbidden" {
					t.Errorf("%s: user token got %d %q, want 403 JSON", name, withToken.StatusCode, withToken.body)
				}
			} else if !strings.Contains(asUser.body, "for administrators") {
				t.Errorf("%s: user session did not get the forbidden page", name)
			}
		}
	})
}

func TestRegisterRefusesIncompleteRoutes(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	ok := func(http.ResponseWriter, *http.Request) {}
	tests := []struct {
		name string
		rt   Route
	}{
		{"no policy", Route{Method: "GET", Pattern: "/x", Kind: KindPage, Handler: ok}},
		{"no kind", Route{Method: "GET", Pattern: "/x", Policy: PolicyUser, Handler: ok}},
		{"no handler", Route{Method: "GET", Pattern: "/x", Policy: PolicyUser, Kind: KindPage}},
		{"bad method", Route{Method: "TRACE", Pattern: "/x", Policy: PolicyUser, Kind: KindPage, Handler: ok}},
		{"relative pattern", Route{Method: "GET", Pattern: "x", Policy: PolicyUser, Kind: KindPage, Handler: ok}},
		{"host in pattern", Route{Method: "GET", Pattern: "example.com/x", Policy: PolicyUser, Kind: KindPage, Handler: ok}},
		{"page under api", Route{Method: "GET", Pattern: "/api/v1/x", Policy: PolicyUser, Kind: KindPage, Handler: ok}},
		{"duplicate", Route{Method: "GET", Pattern: "/users", Policy: PolicyAdmin, Kind: KindPage, Handler: ok}},
		{"nav on a post", Route{Method: "POST", Pattern: "/y", Policy: PolicyUser, Kind: KindPage, Nav: "Y", Handler: ok}},
	}
	before := len(e.srv.Routes())
	for _, tc := range tests {
		if err := e.srv.Register(tc.rt); err == nil {
			t.Errorf("%s: registered", tc.name)
		}
	}
	if got := len(e.srv.Routes()); got != before {
		t.Fatalf("route table grew from %d to %d", before, got)
	}

	// A complete route registers, is guarded by its policy, and shows in the
	// navigation in its place.
	e.srv.MustRegister(Route{Method: "GET", Pattern: "/servers", Policy: PolicyUser, Kind: KindPage, Nav: "Servers", NavOrder: 20,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			e.srv.Render(w, r, 200, "error", "Servers", "/servers", errorPage{Heading: "Servers"})
		}})
	if r := e.do(req{method: "GET", path: "/servers"}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("new route without session: %d", r.StatusCode)
	}
	e.createUser("navuser", "navuser password", auth.RoleUser)
	r := e.do(req{method: "GET", path: "/servers", cookie: e.login("navuser", "navuser password")})
	nav := r.body[strings.Index(r.body, `<nav class="nav"`):]
	nav = nav[:strings.Index(nav, "</nav>")]
	want := []string{">Dashboard<", ">Servers<", ">API tokens<"}
	last := -1
	for _, w := range want {
		i := strings.Index(nav, w)
		if i < last {
			t.Fatalf("navigation out of order or missing %s: %s", w, nav)
		}
		last = i
	}
	if strings.Contains(nav, ">Users<") || strings.Contains(nav, ">Audit<") {
		t.Fatalf("user sees admin navigation: %s", nav)
	}
	if !strings.Contains(nav, `href="/servers" aria-current="page"`) {
		t.Fatalf("active link not marked: %s", nav)
	}
}
