package controller

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
)

// pathParam matches a {name} wildcard of a route pattern.
var pathParam = regexp.MustCompile(`\{[a-z]+\}`)

// TestEveryRouteDeniesByDefault walks the whole route table of a running
// controller, every package's routes included: nothing but the few public
// routes answers an anonymous request, and no admin route answers a user's
// session or token. The guard refuses before any handler runs, so walking
// every method is safe.
func TestEveryRouteDeniesByDefault(t *testing.T) {
	c, stop := start(t, testConfig(t, t.TempDir()), io.Discard, io.Discard)
	t.Cleanup(stop)
	ctx := context.Background()
	plain, err := c.users.Create(ctx, audit.System("test"), "plain", "plain password", auth.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := c.tokens.Create(ctx, audit.System("test"), plain.ID, "walk", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + c.HTTPAddr()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login, err := client.PostForm(base+"/login", url.Values{"username": {"plain"}, "password": {"plain password"}})
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	var session *http.Cookie
	for _, ck := range login.Cookies() {
		session = ck
	}
	if login.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("sign-in: %d", login.StatusCode)
	}
	do := func(method, path string, auth func(*http.Request)) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if auth != nil {
			auth(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	apiCode := func(body string) string {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal([]byte(body), &e)
		return e.Error.Code
	}

	routes := c.webRoutes()
	if len(routes) < 100 {
		t.Fatalf("only %d routes: is the table complete?", len(routes))
	}
	// Public routes are few and named here: a new one fails this test until
	// it is added on purpose.
	wantPublic := []string{"GET /login", "POST /login", "GET /login/code", "POST /login/code", "GET /static/",
		"GET /healthz", "GET /readyz", "GET /status", "GET /api/v1/status", "GET /push/{token}", "POST /push/{token}"}
	var public []string
	admin := 0
	for _, rt := range routes {
		name := rt.Method + " " + rt.Pattern
		path := pathParam.ReplaceAllString(strings.ReplaceAll(rt.Pattern, "{$}", ""), "1")
		if rt.Policy == web.PolicyPublic {
			public = append(public, name)
			continue
		}
		resp, body := do(rt.Method, path, nil)
		switch rt.Kind {
		case web.KindAPI:
			if resp.StatusCode != http.StatusUnauthorized || apiCode(body) != "unauthenticated" {
				t.Errorf("%s: anonymous got %d %.80q, want 401", name, resp.StatusCode, body)
			}
		default:
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("%s: anonymous got %d to %q, want a redirect to /login", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if rt.Policy != web.PolicyAdmin {
			continue
		}
		admin++
		resp, body = do(rt.Method, path, func(r *http.Request) { r.AddCookie(session) })
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: a user's session got %d, want 403", name, resp.StatusCode)
		}
		if rt.Kind == web.KindAPI {
			resp, body = do(rt.Method, path, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
			if resp.StatusCode != http.StatusForbidden || apiCode(body) != "forbidden" {
				t.Errorf("%s: a user's token got %d %.80q, want 403", name, resp.StatusCode, body)
			}
		}
	}
	if admin < 50 {
		t.Fatalf("only %d admin routes walked", admin)
	}
	slices.Sort(public)
	slices.Sort(wantPublic)
	if !slices.Equal(public, wantPublic) {
		t.Errorf("public routes %q, want %q", public, wantPublic)
	}

	// What exposes secrets, logs or other people's data stays admin-only.
	policy := map[string]web.Policy{}
	for _, rt := range routes {
		policy[rt.Method+" "+rt.Pattern] = rt.Policy
	}
	for _, name := range []string{
		"GET /servers/{id}/logs", "GET /api/v1/servers/{id}/logs/{log}",
		"GET /api/v1/servers/{id}/ssh", "GET /api/v1/servers/{id}/tasks", "GET /api/v1/tasks/{id}",
		"GET /api/v1/audit", "GET /api/v1/users", "GET /api/v1/alerts/channels", "GET /api/v1/alerts/deliveries",
	} {
		if p, ok := policy[name]; !ok || p != web.PolicyAdmin {
			t.Errorf("%s: policy %v (registered %v), want admin", name, p, ok)
		}
	}
}
