package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// signedIn reports whether cookie still opens a page (not a redirect to /login).
func (e *env) signedIn(cookie string) bool {
	e.t.Helper()
	r := e.do(req{method: "GET", path: "/", cookie: cookie})
	switch {
	case r.StatusCode == http.StatusOK:
		return true
	case r.StatusCode == http.StatusSeeOther && strings.HasPrefix(r.Header.Get("Location"), "/login"):
		return false
	}
	e.t.Fatalf("dashboard answered %d: %s\n%s", r.StatusCode, r.body, e.logs.String())
	return false
}

func TestLoginRenewsToken(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("ann", "anns password", auth.RoleUser)
		first := e.login("ann", "anns password")
		// Signing in again from the same browser issues a new token and ends the old one.
		r := e.do(req{method: "POST", path: "/login", cookie: first, form: url.Values{"username": {"ann"}, "password": {"anns password"}}})
		second := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || second == nil || second.Value == first {
			t.Fatalf("second sign-in: %d, cookie %v", r.StatusCode, second)
		}
		if e.signedIn(first) {
			t.Fatal("the pre-login token still works")
		}
		if !e.signedIn(second.Value) {
			t.Fatal("the new token does not work")
		}
		// A token planted by someone else is never adopted.
		planted := "attacker-chosen-token-value-0123456789abcdef"
		r = e.do(req{method: "POST", path: "/login", cookie: planted, form: url.Values{"username": {"ann"}, "password": {"anns password"}}})
		if c := sessionCookie(r); c == nil || c.Value == planted {
			t.Fatalf("planted token kept: %v", c)
		}
		// The store keeps hashes of tokens, not the tokens.
		var n int
		if err := db.SQL.QueryRow(db.Rebind("SELECT COUNT(*) FROM sessions WHERE token = ?"), second.Value).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatal("session token stored in clear")
		}
		// next= brings you back to where you were, but only on this site.
		for next, want := range map[string]string{"/tokens": "/tokens", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
			r := e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"ann"}, "password": {"anns password"}, "next": {next}}})
			if got := r.Header.Get("Location"); got != want {
				t.Errorf("next=%q redirected to %q, want %q", next, got, want)
			}
		}
	})
}

func TestLogoutEndsSessionServerSide(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("ben", "bens password", auth.RoleUser)
		cookie := e.login("ben", "bens password")
		before := db.Client.Session.Query().CountX(context.Background())
		r := e.do(req{method: "POST", path: "/logout", cookie: cookie})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Fatalf("logout: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		if c := sessionCookie(r); c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout did not clear the cookie: %v", c)
		}
		if after := db.Client.Session.Query().CountX(context.Background()); after != before-1 {
			t.Fatalf("sessions %d -> %d", before, after)
		}
		// Replaying the old cookie, as a thief would, fails on pages and the API.
		if e.signedIn(cookie) {
			t.Fatal("old cookie still signed in")
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: cookie}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("old cookie on API: %d", r.StatusCode)
		}
	})
}

func TestPasswordChangeAndDisableRevokeSessions(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("root", "root password", auth.RoleAdmin)
		e.createUser("root2", "root2 password", auth.RoleAdmin)
		cat := e.createUser("cat", "cats password", auth.RoleUser)
		admin := e.login("root", "root password")
		laptop := e.login("cat", "cats password")
		phone := e.login("cat", "cats password")

		// Password change through the API ends both of cat's sessions, not the admin's.
		r := e.do(req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(cat.ID), cookie: admin, json: map[string]any{"password": "cats new password"},
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("password change: %d %s", r.StatusCode, r.body)
		}
		if e.signedIn(laptop) || e.signedIn(phone) {
			t.Fatal("session survived a password change")
		}
		if !e.signedIn(admin) {
			t.Fatal("the admin's own session ended")
		}

		// Disabling through the page ends the new session too.
		fresh := e.login("cat", "cats new password")
		r = e.do(req{method: "POST", path: "/users/" + strconv.Itoa(cat.ID) + "/disable", cookie: admin})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("disable: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: fresh}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled user's session on API: %d", r.StatusCode)
		}
		if e.signedIn(fresh) {
			t.Fatal("disabled user's session survived")
		}

		// An admin resetting their own password stays signed in here, while
		// their other sessions end.
		other := e.login("root", "root password")
		root, _ := e.users.Lookup(context.Background(), "root")
		r = e.do(req{method: "POST", path: "/users/" + strconv.Itoa(root.ID) + "/password", cookie: admin, form: url.Values{"password": {"root new password"}}})
		renewed := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || renewed == nil {
			t.Fatalf("own password: %d %v", r.StatusCode, renewed)
		}
		if !e.signedIn(renewed.Value) {
			t.Fatal("own session ended by own password change")
		}
		if e.signedIn(other) || e.signedIn(admin) {
			t.Fatal("other session survived own password change")
		}
	})
}

func TestCookieFlags(t *testing.T) {
	tests := []struct {
		name     string
		cfg      config.Config
		cookie   string
		secure   bool
		hstsWant bool
	}{
		{"plain http", config.Config{}, "gatehouse_session", false, false},
		{"https public url", config.Config{PublicURL: "https://gate.example.test"}, "__Host-gatehouse_session", true, true},
		{"tls", config.Config{TLSCert: "cert.pem", TLSKey: "key.pem"}, "__Host-gatehouse_session", true, true},
	}
	db := openDB(t, "sqlite")
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, db, tc.cfg)
			name := "flags" + strconv.Itoa(i)
			e.createUser(name, "flags password", auth.RoleUser)
			r := e.do(req{method: "POST", path: "/login", form: url.Values{"username": {name}, "password": {"flags password"}}})
			c := sessionCookie(r)
			if c == nil {
				t.Fatalf("no cookie: %v", r.Header["Set-Cookie"])
			}
			if c.Name != tc.cookie || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.secure || c.Domain != "" {
				t.Fatalf("cookie %q", r.Header.Get("Set-Cookie"))
			}
			if got := r.Header.Get("Strict-Transport-Security") != ""; got != tc.hstsWant {
				t.Fatalf("HSTS present: %v", got)
			}
		})
	}
}
