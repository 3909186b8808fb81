package proxyweb

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// Incidents name domains, not ids: /domains/lookup?name= finds the domain's
// TLS page for any signed-in user, and answers 404 for anything else.
func TestDomainLookup(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.createUser("viewer", auth.RoleUser)
		viewer := e.login("viewer")
		d := e.db.Client.Domain.Create().SetName("shop.example.test").SaveX(t.Context())

		r := e.do(viewer, "GET", "/domains/lookup?name=shop.example.test", nil)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != fmt.Sprintf("/domains/%d/tls", d.ID) {
			t.Fatalf("lookup: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		for _, name := range []string{"", "other.example.test", "<script>alert(1)</script>", strings.Repeat("a", 300)} {
			r := e.do(viewer, "GET", "/domains/lookup?name="+url.QueryEscape(name), nil)
			if r.StatusCode != http.StatusNotFound || strings.Contains(r.body, "<script>alert") {
				t.Errorf("lookup of %.20q: %d", name, r.StatusCode)
			}
		}
		if r := e.do(who{}, "GET", "/domains/lookup?name=shop.example.test", nil); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Errorf("anonymous lookup: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
	})
}

// Upstream incidents name upstreams: /upstreams/lookup?name= finds the
// upstream's page for any signed-in user, and answers 404 for anything else.
func TestUpstreamLookup(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.createUser("viewer", auth.RoleUser)
		viewer := e.login("viewer")
		u := e.db.Client.Upstream.Create().SetName("app-pool").SaveX(t.Context())

		r := e.do(viewer, "GET", "/upstreams/lookup?name=app-pool", nil)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != fmt.Sprintf("/upstreams/%d", u.ID) {
			t.Fatalf("lookup: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		for _, name := range []string{"", "other-pool", "<script>alert(1)</script>", strings.Repeat("a", 300)} {
			r := e.do(viewer, "GET", "/upstreams/lookup?name="+url.QueryEscape(name), nil)
			if r.StatusCode != http.StatusNotFound || strings.Contains(r.body, "<script>alert") {
				t.Errorf("lookup of %.20q: %d", name, r.StatusCode)
			}
		}
		if r := e.do(who{}, "GET", "/upstreams/lookup?name=app-pool", nil); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Errorf("anonymous lookup: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
	})
}
