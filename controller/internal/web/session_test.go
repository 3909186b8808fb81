package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/auditevent"
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

// TestChangeOwnPassword: any user changes their own password on the account
// page or through the API, proving the current one; wrong guesses are
// throttled like sign-ins; their other sessions end, this one carries on.
func TestChangeOwnPassword(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		dan := e.createUser("dan", "dans password", auth.RoleUser)
		laptop := e.login("dan", "dans password")
		phone := e.login("dan", "dans password")

		r := e.do(req{method: "GET", path: "/account", cookie: laptop})
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>dan</strong>, a user") ||
			!strings.Contains(r.body, `action="/account/password"`) || !strings.Contains(r.body, `href="/account"`) {
			t.Fatalf("account page: %d\n%s", r.StatusCode, r.body)
		}
		change := func(cookie, current, next, confirm string) resp {
			return e.do(req{method: "POST", path: "/account/password", cookie: cookie,
				form: url.Values{"current_password": {current}, "password": {next}, "confirm": {confirm}}})
		}
		for _, tc := range []struct{ current, next, confirm, want string }{
			{"dans password", "dans new password", "dans new passwrd", "does not match the new password"},
			{"not dans password", "dans new password", "dans new password", "is not your current password"},
			{"dans password", "short", "short", "at least 10 characters"},
			{"dans password", "dans password", "dans password", "must differ from the current password"},
		} {
			r := change(laptop, tc.current, tc.next, tc.confirm)
			if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, tc.want) || strings.Contains(r.body, tc.next) {
				t.Fatalf("%q: %d, want 422 saying %q without echoing a password\n%s", tc.want, r.StatusCode, tc.want, r.body)
			}
		}
		if !e.signedIn(phone) || !e.signedIn(laptop) {
			t.Fatal("a refused change ended a session")
		}

		r = change(laptop, "dans password", "dans new password", "dans new password")
		renewed := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || renewed == nil {
			t.Fatalf("change: %d to %q, cookie %v", r.StatusCode, r.Header.Get("Location"), renewed)
		}
		if r := e.do(req{method: "GET", path: "/account", cookie: renewed.Value}); r.StatusCode != http.StatusOK ||
			!strings.Contains(r.body, "Password changed. Your other sessions have ended.") {
			t.Fatalf("after the change: %d", r.StatusCode)
		}
		if e.signedIn(phone) || e.signedIn(laptop) {
			t.Fatal("an older session survived the change")
		}
		if r := e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"dan"}, "password": {"dans password"}}}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old password still signs in: %d", r.StatusCode)
		}
		e.login("dan", "dans new password")

		// Through the API with a token: the current password is still needed,
		// and the token keeps working.
		_, token, err := e.tokens.Create(t.Context(), audit.System("test"), dan.ID, "script", nil)
		if err != nil {
			t.Fatal(err)
		}
		api := func(current, next string) resp {
			return e.do(req{method: "POST", path: "/api/v1/me/password", bearer: token, json: map[string]string{"current_password": current, "new_password": next}})
		}
		if r := api("", "dans third password"); r.StatusCode != http.StatusUnprocessableEntity || apiError(t, r).Fields["current_password"] == "" {
			t.Fatalf("API without the current password: %d %s", r.StatusCode, r.body)
		}
		if r := api("dans new password", "dans third password"); r.StatusCode != http.StatusNoContent {
			t.Fatalf("API change: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", bearer: token}); r.StatusCode != http.StatusOK {
			t.Fatalf("the token stopped working: %d", r.StatusCode)
		}

		// Guessing the current password from a stolen session is throttled
		// like signing in, and audited.
		var last resp
		for range 6 {
			last = api("a wrong guess!!", "dans fourth password")
		}
		if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
			t.Fatalf("after six wrong guesses: %d %s", last.StatusCode, last.body)
		}
		if r := api("dans third password", "dans fourth password"); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("the right password during the lockout: %d", r.StatusCode)
		}
		page, err := e.audit.List(t.Context(), audit.Query{Action: "user.password.failed"})
		if err != nil {
			t.Fatal(err)
		}
		// One on the page, the empty one and five guesses before the lockout.
		if len(page.Events) != 7 || page.Events[0].Target != "user:dan" {
			t.Fatalf("failed changes audited: %+v, want 7", page.Events)
		}
	})
}

// A user signs out of every other browser and stays signed in on this one;
// an admin signs a user out everywhere; other users are untouched, and a
// user cannot sign someone else out.
func TestSignOutEverywhere(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		root := e.createUser("root", "root password", auth.RoleAdmin)
		cat := e.createUser("cat", "cats password", auth.RoleUser)
		e.createUser("dog", "dogs password", auth.RoleUser)
		admin := e.login("root", "root password")
		laptop := e.login("cat", "cats password")
		phone := e.login("cat", "cats password")
		dog := e.login("dog", "dogs password")

		r := e.do(req{method: "POST", path: "/account/sessions/end", cookie: laptop})
		renewed := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" || renewed == nil || renewed.Value == laptop {
			t.Fatalf("sign out elsewhere: %d %v", r.StatusCode, renewed)
		}
		if !e.signedIn(renewed.Value) {
			t.Fatal("this browser was signed out too")
		}
		if e.signedIn(phone) || e.signedIn(laptop) {
			t.Fatal("another session of the same user survived")
		}
		if !e.signedIn(dog) || !e.signedIn(admin) {
			t.Fatal("another user's session ended")
		}

		// A user may not sign anyone out from the admin route.
		if r := e.do(req{method: "POST", path: "/users/" + strconv.Itoa(root.ID) + "/sessions/end", cookie: dog}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("a user signed an admin out: %d", r.StatusCode)
		}
		if !e.signedIn(admin) {
			t.Fatal("the admin was signed out by a user")
		}
		// An admin signs cat out everywhere.
		if r := e.do(req{method: "POST", path: "/users/" + strconv.Itoa(cat.ID) + "/sessions/end", cookie: admin}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("admin signs cat out: %d", r.StatusCode)
		}
		if e.signedIn(renewed.Value) || !e.signedIn(admin) || !e.signedIn(dog) {
			t.Fatal("the admin's sign-out did not end exactly cat's sessions")
		}
		if r := e.do(req{method: "POST", path: "/users/99999/sessions/end", cookie: admin}); r.StatusCode == http.StatusSeeOther && strings.Contains(r.Header.Get("Location"), "/users") {
			// The flash says it no longer exists; nothing else happened.
			if !e.signedIn(admin) {
				t.Fatal("an unknown id ended the admin's session")
			}
		}
		n, err := e.db.Client.AuditEvent.Query().Where(auditevent.Action("user.sessions_ended")).Count(context.Background())
		if err != nil || n != 2 {
			t.Errorf("%d sessions_ended audit events, want 2 (%v)", n, err)
		}
	})
}
