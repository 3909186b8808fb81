package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Policy says who may use a route. The zero value is invalid, so a route
// cannot be registered without deciding.
type Policy int

// Policies.
const (
	policyUnset  Policy = iota
	PolicyPublic        // anyone, signed in or not
	PolicyUser          // any signed-in user or valid API token
	PolicyAdmin         // admins only
)

func (p Policy) String() string {
	switch p {
	case PolicyPublic:
		return "public"
	case PolicyUser:
		return "user"
	case PolicyAdmin:
		return "admin"
	}
	return "unset"
}

// Kind says how a route answers, including when access is refused.
type Kind int

// Kinds.
const (
	kindUnset Kind = iota
	// KindPage routes answer HTML; without a session they redirect to /login,
	// and a forbidden page explains a refusal.
	KindPage
	// KindAPI routes answer JSON (or a stream); they accept bearer tokens as
	// well as sessions, and refuse with 401/403 JSON errors.
	KindAPI
)

func (k Kind) String() string {
	switch k {
	case KindPage:
		return "page"
	case KindAPI:
		return "api"
	}
	return "unset"
}

// Route is one entry of the route table.
type Route struct {
	Method  string // GET, POST, PATCH, DELETE, PUT
	Pattern string // net/http ServeMux path pattern, e.g. "/users/{id}/disable"
	Policy  Policy
	Kind    Kind
	// NoSession skips loading the browser session: for health checks and
	// static files, which must not touch the database per request. Such a
	// route carries no ambient credentials, so cross-origin requests to it
	// are not refused (there is nothing to forge).
	NoSession bool
	// SecretPath says the path itself carries a secret (a push token): logs
	// show the route's pattern instead of the path.
	SecretPath bool
	// Nav, when set on a GET page route, adds a navigation link with this label,
	// shown to viewers whom the route's policy admits.
	Nav string
	// NavOrder places the link: lower comes first. The built-in links use
	// 10 (Dashboard), 30 (Users), 40 (API tokens) and 50 (Audit); Servers belongs at 20.
	NavOrder int
	// NavMenu, when set, puts the link in a menu of this name instead of the
	// bar: the menu sits where its first link would, and opens on a click.
	// The built-in links Users, API tokens and Audit are in NavSystem.
	NavMenu string
	Handler http.HandlerFunc
}

// NavSystem is the menu of the pages that look after Gatehouse itself rather
// than the servers and sites it manages.
const NavSystem = "System"

var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

var patternShape = regexp.MustCompile(`^/[A-Za-z0-9._~/{}$-]*$`)

// Register adds a route. It refuses a route without a policy or kind, an
// unknown method, a public route under /api/v1 other than none, and a
// pattern that conflicts with one already registered.
func (s *Server) Register(rt Route) (err error) {
	switch {
	case !methods[rt.Method]:
		return fmt.Errorf("route %s %s: method must be one of GET, POST, PUT, PATCH, DELETE", rt.Method, rt.Pattern)
	case !patternShape.MatchString(rt.Pattern):
		return fmt.Errorf("route %s %q: pattern must be an absolute path", rt.Method, rt.Pattern)
	case rt.Policy < PolicyPublic || rt.Policy > PolicyAdmin:
		return fmt.Errorf("route %s %s: no policy; set Policy to PolicyPublic, PolicyUser or PolicyAdmin", rt.Method, rt.Pattern)
	case rt.Kind != KindPage && rt.Kind != KindAPI:
		return fmt.Errorf("route %s %s: no kind; set Kind to KindPage or KindAPI", rt.Method, rt.Pattern)
	case rt.Handler == nil:
		return fmt.Errorf("route %s %s: no handler", rt.Method, rt.Pattern)
	case strings.HasPrefix(rt.Pattern, "/api/") && rt.Kind != KindAPI:
		return fmt.Errorf("route %s %s: routes under /api/ must be KindAPI", rt.Method, rt.Pattern)
	case rt.Nav != "" && (rt.Method != "GET" || rt.Kind != KindPage):
		return fmt.Errorf("route %s %s: only GET pages can be in the navigation", rt.Method, rt.Pattern)
	}
	h := s.guard(rt)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %s %s: %v", rt.Method, rt.Pattern, p)
		}
	}()
	s.mux.Handle(rt.Method+" "+rt.Pattern, h)
	if rt.NoSession && rt.Method != "GET" {
		s.cop.AddInsecureBypassPattern(rt.Method + " " + rt.Pattern)
	}
	if rt.SecretPath {
		s.secret[rt.Method+" "+rt.Pattern] = true
	}
	s.routes = append(s.routes, rt)
	if rt.Method == "GET" {
		s.gets[rt.Pattern] = rt.Policy
	}
	return nil
}

// logPath is the request's path as logs may show it: the route's pattern
// when the path carries a secret.
func (s *Server) logPath(r *http.Request) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, p := s.mux.Handler(r); s.secret[p] {
		return p
	}
	return r.URL.Path
}

// MustRegister is Register for route tables written in code, where an error
// is a programming mistake.
func (s *Server) MustRegister(routes ...Route) {
	for _, r := range routes {
		if err := s.Register(r); err != nil {
			panic(err)
		}
	}
}

// builtinRoutes is the web layer's own part of the route table.
func (s *Server) builtinRoutes() []Route {
	page := func(method, pattern string, p Policy, h http.HandlerFunc) Route {
		return Route{Method: method, Pattern: pattern, Policy: p, Kind: KindPage, Handler: h}
	}
	api := func(method, pattern string, p Policy, h http.HandlerFunc) Route {
		return Route{Method: method, Pattern: pattern, Policy: p, Kind: KindAPI, Handler: h}
	}
	nav := func(r Route, label string, order int) Route { r.Nav, r.NavOrder = label, order; return r }
	system := func(r Route, label string, order int) Route {
		r = nav(r, label, order)
		r.NavMenu = NavSystem
		return r
	}
	return []Route{
		// Public.
		page("GET", "/login", PolicyPublic, s.loginPage),
		page("POST", "/login", PolicyPublic, s.loginSubmit),
		page("GET", "/login/code", PolicyPublic, s.codePage),
		page("POST", "/login/code", PolicyPublic, s.codeSubmit),
		{Method: "GET", Pattern: "/static/", Policy: PolicyPublic, Kind: KindPage, NoSession: true,
			Handler: http.StripPrefix("/static/", s.ui.Static()).ServeHTTP},
		{Method: "GET", Pattern: "/healthz", Policy: PolicyPublic, Kind: KindAPI, NoSession: true, Handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", Policy: PolicyPublic, Kind: KindAPI, NoSession: true, Handler: s.readyz},

		// Pages.
		nav(page("GET", "/{$}", PolicyUser, s.dashboardPage), "Dashboard", 10),
		page("POST", "/logout", PolicyUser, s.logout),
		page("GET", "/account", PolicyUser, s.accountPage),
		page("POST", "/account/password", PolicyUser, s.accountPassword),
		page("POST", "/account/2fa/setup", PolicyUser, s.accountTOTPSetup),
		page("POST", "/account/2fa/confirm", PolicyUser, s.accountTOTPConfirm),
		page("POST", "/account/2fa/disable", PolicyUser, s.accountTOTPDisable),
		page("POST", "/account/2fa/recovery", PolicyUser, s.accountRecoveryRenew),
		page("POST", "/account/devices/{id}/forget", PolicyUser, s.accountDeviceForget),
		page("POST", "/account/devices/forget", PolicyUser, s.accountDevicesForget),
		page("POST", "/account/sessions/end", PolicyUser, s.accountSessionsEnd),
		system(page("GET", "/users", PolicyAdmin, s.usersPage), "Users", 30),
		page("POST", "/users", PolicyAdmin, s.usersCreate),
		page("POST", "/users/{id}/password", PolicyAdmin, s.usersPassword),
		page("POST", "/users/{id}/role", PolicyAdmin, s.usersRole),
		page("POST", "/users/{id}/disable", PolicyAdmin, s.usersDisable),
		page("POST", "/users/{id}/enable", PolicyAdmin, s.usersEnable),
		page("POST", "/users/{id}/2fa/reset", PolicyAdmin, s.usersTOTPReset),
		page("POST", "/users/{id}/sessions/end", PolicyAdmin, s.usersSessionsEnd),
		system(page("GET", "/tokens", PolicyUser, s.tokensPage), "API tokens", 40),
		page("POST", "/tokens", PolicyUser, s.tokensCreate),
		page("POST", "/tokens/{id}/revoke", PolicyUser, s.tokensRevoke),
		system(page("GET", "/audit", PolicyAdmin, s.auditPage), "Audit", 50),

		// Live events for the UI.
		api("GET", "/events", PolicyUser, s.eventStream),

		// JSON API.
		api("GET", "/api/v1/me", PolicyUser, s.apiMe),
		api("POST", "/api/v1/me/password", PolicyUser, s.apiMePassword),
		api("GET", "/api/v1/me/devices", PolicyUser, s.apiMeDevices),
		api("DELETE", "/api/v1/me/devices/{id}", PolicyUser, s.apiMeDeviceDelete),
		api("GET", "/api/v1/users", PolicyAdmin, s.apiUsersList),
		api("POST", "/api/v1/users", PolicyAdmin, s.apiUsersCreate),
		api("PATCH", "/api/v1/users/{id}", PolicyAdmin, s.apiUsersPatch),
		api("GET", "/api/v1/tokens", PolicyUser, s.apiTokensList),
		api("POST", "/api/v1/tokens", PolicyUser, s.apiTokensCreate),
		api("DELETE", "/api/v1/tokens/{id}", PolicyUser, s.apiTokensRevoke),
		api("GET", "/api/v1/audit", PolicyAdmin, s.apiAudit),
	}
}
