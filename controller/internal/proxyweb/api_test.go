package proxyweb

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

func TestAPICreateUpstreamDomainAndStream(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		admin := e.token(e.createUser("admin", auth.RoleAdmin))
		viewer := e.token(e.createUser("viewer", auth.RoleUser))
		web1, web2 := e.server("web-1"), e.server("web-2")

		r := e.do(admin, "POST", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "app", Method: "least_conn", Keepalive: 16,
			Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 8080, Weight: 2}, {Host: "10.0.0.2", Port: 8080, Backup: true}}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create upstream: %d %s", r.StatusCode, r.body)
		}
		up := decode[struct{ Upstream upstreamJSON }](t, r).Upstream
		if up.Name != "app" || up.Method != "least_conn" || len(up.Targets) != 2 || up.Targets[0].Weight != 2 || !up.Targets[1].Backup {
			t.Fatalf("created upstream: %+v", up)
		}

		dom := proxyconf.DomainInput{Name: "Example.COM", Aliases: []string{"www.example.com"}, Servers: []int{web1.ID, web2.ID},
			ResponseHeaders: []proxyconf.HeaderInput{{Name: "X-Frame-Options", Value: "DENY"}},
			Routes: []proxyconf.RouteInput{
				{Path: "/", Kind: "proxy", Upstream: "app", WebSocket: true},
				{Match: "exact", Path: "/old", Kind: "redirect", RedirectCode: 301, RedirectTarget: "https://example.com/new"},
			}}
		r = e.do(admin, "POST", "/api/v1/domains", dom)
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create domain: %d %s", r.StatusCode, r.body)
		}
		d := decode[struct{ Domain domainJSON }](t, r).Domain
		if d.Name != "example.com" || len(d.Routes) != 2 || d.Routes[0].Upstream != "app" || d.Routes[1].RedirectCode != 301 || len(d.Servers) != 2 {
			t.Fatalf("created domain: %+v", d)
		}

		r = e.do(admin, "POST", fmt.Sprintf("/api/v1/domains/%d/users", d.ID), map[string]string{"username": "ops", "password": "a long secret"})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("add basic-auth user: %d %s", r.StatusCode, r.body)
		}
		uid := decode[struct{ User authUserJSON }](t, r).User.ID
		r = e.do(admin, "PUT", fmt.Sprintf("/api/v1/domains/%d/users/%d", d.ID, uid), map[string]string{"password": "another long secret"})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("change password: %d %s", r.StatusCode, r.body)
		}
		// A user id of another domain is not reachable through this one.
		if r := e.do(admin, "DELETE", fmt.Sprintf("/api/v1/domains/%d/users/%d", d.ID+1, uid), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("delete a user through another domain: %d", r.StatusCode)
		}

		for _, path := range []string{"/api/v1/domains", fmt.Sprintf("/api/v1/domains/%d", d.ID)} {
			r := e.do(viewer, "GET", path, nil)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("GET %s as a user: %d", path, r.StatusCode)
			}
			if !strings.Contains(r.body, `"username":"ops"`) {
				t.Errorf("GET %s does not list the basic-auth user: %s", path, r.body)
			}
			if strings.Contains(r.body, "$6$") || strings.Contains(r.body, "$2") || strings.Contains(strings.ToLower(r.body), "hash\"") {
				t.Errorf("GET %s leaks a password hash: %s", path, r.body)
			}
		}

		// A user may read but not change.
		if r := e.do(viewer, "POST", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "x"}); r.StatusCode != http.StatusForbidden {
			t.Errorf("user creates an upstream: %d", r.StatusCode)
		}

		r = e.do(admin, "POST", "/api/v1/streams", proxyconf.StreamInput{Name: "pg", ListenPort: 5432, Upstream: "app", Servers: []int{web1.ID}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create stream: %d %s", r.StatusCode, r.body)
		}
		st := decode[struct{ Stream streamJSON }](t, r).Stream
		if st.Protocol != "tcp" || st.Upstream != "app" || len(st.Servers) != 1 {
			t.Errorf("created stream: %+v", st)
		}

		// A domain that caches nothing has nothing to purge.
		purge := fmt.Sprintf("/api/v1/domains/%d/cache/purge", d.ID)
		if r := e.do(admin, "POST", purge, nil); r.StatusCode != http.StatusConflict || decode[apiError](t, r).Error.Code != "nothing_cached" {
			t.Errorf("purge of a domain that caches nothing: %d %s", r.StatusCode, r.body)
		}

		// Update round-trips the input shape, compression and cache lifetimes included.
		dom.Routes = dom.Routes[:1]
		dom.Routes[0].CacheTTL = 3600
		dom.Compress = true
		r = e.do(admin, "PUT", fmt.Sprintf("/api/v1/domains/%d", d.ID), dom)
		if got := decode[struct{ Domain domainJSON }](t, r).Domain; r.StatusCode != http.StatusOK || len(got.Routes) != 1 || got.Routes[0].CacheTTL != 3600 || !got.Compress {
			t.Fatalf("update domain: %d %s", r.StatusCode, r.body)
		}

		// Now it caches: an admin purges, a user may not.
		if r := e.do(viewer, "POST", purge, nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("user purges a cache: %d", r.StatusCode)
		}
		r = e.do(admin, "POST", purge, nil)
		if got := decode[struct {
			CacheGeneration int `json:"cache_generation"`
		}](t, r); r.StatusCode != http.StatusOK || got.CacheGeneration != 1 {
			t.Errorf("purge: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(admin, "POST", fmt.Sprintf("/api/v1/domains/%d/cache/purge", d.ID+1000), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("purge of a missing domain: %d", r.StatusCode)
		}

		// An upstream in use is not removed, and says by whom.
		r = e.do(admin, "DELETE", fmt.Sprintf("/api/v1/upstreams/%d", up.ID), nil)
		if ae := decode[apiError](t, r); r.StatusCode != http.StatusConflict || ae.Error.Code != "in_use" || !strings.Contains(ae.Error.Message, "example.com") {
			t.Errorf("delete an upstream in use: %d %s", r.StatusCode, r.body)
		}
		for _, path := range []string{fmt.Sprintf("/api/v1/streams/%d", st.ID), fmt.Sprintf("/api/v1/domains/%d", d.ID), fmt.Sprintf("/api/v1/upstreams/%d", up.ID)} {
			if r := e.do(admin, "DELETE", path, nil); r.StatusCode != http.StatusNoContent {
				t.Errorf("DELETE %s: %d %s", path, r.StatusCode, r.body)
			}
		}
		if c := e.counts(); c != [5]int{} {
			t.Errorf("after deleting everything: %v", c)
		}
		if r := e.do(admin, "GET", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET a deleted domain: %d", r.StatusCode)
		}
	})
}

// TestAPIRefusesHostileValues sends values that would break out of nginx's syntax; each is
// refused with a message under its field and nothing is stored.
func TestAPIRefusesHostileValues(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"))
	admin := e.token(e.createUser("admin", auth.RoleAdmin))
	if r := e.do(admin, "POST", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "app", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 80}}}); r.StatusCode != http.StatusCreated {
		t.Fatalf("create upstream: %d %s", r.StatusCode, r.body)
	}
	route := func(r proxyconf.RouteInput) proxyconf.DomainInput {
		return proxyconf.DomainInput{Name: "example.com", Routes: []proxyconf.RouteInput{{Path: "/", Kind: "proxy", Upstream: "app"}, r}}
	}
	tests := []struct {
		name, path string
		body       any
		field      string
	}{
		{"upstream name with a brace", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "app}", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 80}}}, "name"},
		{"target host with a semicolon", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "b", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1;include /etc/passwd", Port: 80}}}, "targets[0].host"},
		{"target port out of range", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "b", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 70000}}}, "targets[0].port"},
		{"domain name with a newline", "/api/v1/domains", proxyconf.DomainInput{Name: "example.com\nlisten 81"}, "name"},
		{"route path with a quote", "/api/v1/domains", route(proxyconf.RouteInput{Path: `/x"; return 200 "owned`, Kind: "proxy", Upstream: "app"}), "routes[1].path"},
		{"redirect to javascript", "/api/v1/domains", route(proxyconf.RouteInput{Path: "/go", Kind: "redirect", RedirectCode: 302, RedirectTarget: "javascript:alert(1)"}), "routes[1].redirect_target"},
		{"respond body with a newline", "/api/v1/domains", route(proxyconf.RouteInput{Path: "/hi", Kind: "respond", RespondStatus: 200, RespondBody: "a\n}"}), "routes[1].respond_body"},
		{"unknown upstream", "/api/v1/domains", route(proxyconf.RouteInput{Path: "/api", Kind: "proxy", Upstream: "nope"}), "routes[1].upstream"},
		{"header value with a newline", "/api/v1/domains", proxyconf.DomainInput{Name: "example.com", ResponseHeaders: []proxyconf.HeaderInput{{Name: "X-A", Value: "b\r\nSet-Cookie: x"}}}, "response_headers[0].value"},
		{"allow entry that is not an address", "/api/v1/domains", proxyconf.DomainInput{Name: "example.com", Allow: []string{"all; deny none"}}, "allow[0]"},
		{"snippet with a forbidden directive", "/api/v1/domains", proxyconf.DomainInput{Name: "example.com", Snippet: "load_module /tmp/x.so;"}, "snippet"},
		{"unknown server", "/api/v1/domains", proxyconf.DomainInput{Name: "example.com", Servers: []int{4242}}, "servers[0]"},
		{"stream port zero", "/api/v1/streams", proxyconf.StreamInput{Name: "s", ListenPort: 0, Upstream: "app"}, "listen_port"},
	}
	before := e.counts()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(admin, "POST", tc.path, tc.body)
			if r.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", r.StatusCode, r.body)
			}
			ae := decode[apiError](t, r)
			if ae.Error.Code != "invalid" || ae.Error.Fields[tc.field] == "" {
				t.Errorf("error %+v, want code invalid and a message for %s", ae.Error, tc.field)
			}
		})
	}
	if after := e.counts(); after != before {
		t.Errorf("refused requests stored something: %v before, %v after", before, after)
	}
	// Unknown JSON fields are refused rather than ignored.
	if r := e.do(admin, "POST", "/api/v1/upstreams", map[string]any{"name": "x", "password_hash": "y"}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", r.StatusCode, r.body)
	}
}
