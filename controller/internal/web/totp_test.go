package web

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// phone computes authenticator codes from the key the set-up page shows,
// as an app does (RFC 6238, SHA-1, 30 s, six digits).
type phone struct{ key []byte }

func (p phone) code(step int64) string {
	mac := hmac.New(sha1.New, p.key)
	binary.Write(mac, binary.BigEndian, step)
	sum := mac.Sum(nil)
	off := sum[19] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(sum[off:])&0x7fffffff)%1_000_000)
}

var (
	shownSecret   = regexp.MustCompile(`data-totp-secret>([A-Z2-7 ]+)<`)
	recoveryShown = regexp.MustCompile(`<li><code>([a-z2-7]{5}-[a-z2-7]{5})</code></li>`)
)

// TestTwoFactorSignIn: a user turns two-factor sign-in on from their
// account page; signing in then takes the password and a fresh code, a
// half-signed-in session opens nothing, a code works once, and an admin's
// reset lets a user with a lost phone in with the password alone.
func TestTwoFactorSignIn(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("root", "root password", auth.RoleAdmin)
		zoe := e.createUser("zoe", "zoes password", auth.RoleUser)
		c := e.login("zoe", "zoes password")

		r := e.do(req{method: "POST", path: "/account/2fa/setup", cookie: c})
		m := shownSecret.FindStringSubmatch(r.body)
		if r.StatusCode != http.StatusOK || m == nil || !strings.Contains(r.body, "<svg") || !strings.Contains(r.body, `d="M`) {
			t.Fatalf("set-up page: %d\n%s", r.StatusCode, r.body)
		}
		key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		p := phone{key}
		step := time.Now().Unix() / 30

		// A mistyped first code shows the same key again.
		r = e.do(req{method: "POST", path: "/account/2fa/confirm", cookie: c, form: url.Values{"code": {"000000"}}})
		if again := shownSecret.FindStringSubmatch(r.body); r.StatusCode != http.StatusUnprocessableEntity || again == nil || again[1] != m[1] || !strings.Contains(r.body, "does not match") {
			t.Fatalf("wrong first code: %d\n%s", r.StatusCode, r.body)
		}
		r = e.do(req{method: "POST", path: "/account/2fa/confirm", cookie: c, form: url.Values{"code": {p.code(step)}}})
		codes := recoveryShown.FindAllStringSubmatch(r.body, -1)
		if r.StatusCode != http.StatusOK || len(codes) != 10 || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("confirm: %d, %d recovery codes shown\n%s", r.StatusCode, len(codes), r.body)
		}
		if r := e.do(req{method: "GET", path: "/account", cookie: c}); !strings.Contains(r.body, `data-totp="on"`) || !strings.Contains(r.body, "10 of 10 unused") ||
			strings.Contains(r.body, codes[0][1]) {
			t.Fatal("the account page does not say two-factor sign-in is on with 10 recovery codes, or shows one")
		}

		// The password alone now opens nothing but the code page.
		r = e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"zoe"}, "password": {"zoes password"}, "next": {"/tokens"}}})
		half := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/code" || half == nil {
			t.Fatalf("password step: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
		if e.signedIn(half.Value) {
			t.Fatal("a session signed in on the password alone")
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: half.Value}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the API answered a half-signed-in session: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/login/code", cookie: half.Value}); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `name="code"`) {
			t.Fatalf("code page: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/login/code"}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
			t.Fatalf("the code page without a right password: %d", r.StatusCode)
		}
		r = e.do(req{method: "POST", path: "/login/code", cookie: half.Value, form: url.Values{"code": {p.code(step)}}})
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, "wrong or was used already") {
			t.Fatalf("the code that turned it on, again: %d", r.StatusCode)
		}
		next := p.code(step + 1) // the app's next code, within the accepted drift
		r = e.do(req{method: "POST", path: "/login/code", cookie: half.Value, form: url.Values{"code": {next[:3] + " " + next[3:]}}})
		full := sessionCookie(r)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/tokens" || full == nil || full.Value == half.Value {
			t.Fatalf("code step: %d to %q (new session token: %v)", r.StatusCode, r.Header.Get("Location"), full != nil && full.Value != half.Value)
		}
		if !e.signedIn(full.Value) {
			t.Fatal("not signed in after the code")
		}
		// The same code cannot sign in another session.
		r = e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"zoe"}, "password": {"zoes password"}}})
		other := sessionCookie(r)
		if r := e.do(req{method: "POST", path: "/login/code", cookie: other.Value, form: url.Values{"code": {next}}}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a code accepted twice: %d", r.StatusCode)
		}

		// A recovery code stands in for the phone, once.
		r = e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"zoe"}, "password": {"zoes password"}}})
		rec := sessionCookie(r)
		if r := e.do(req{method: "POST", path: "/login/code", cookie: rec.Value, form: url.Values{"code": {codes[0][1]}}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("a recovery code: %d", r.StatusCode)
		}
		r = e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"zoe"}, "password": {"zoes password"}}})
		rec = sessionCookie(r)
		if r := e.do(req{method: "POST", path: "/login/code", cookie: rec.Value, form: url.Values{"code": {codes[0][1]}}}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a recovery code used twice: %d", r.StatusCode)
		}
		// New codes need the password and replace the old ones.
		if r := e.do(req{method: "POST", path: "/account/2fa/recovery", cookie: full.Value, form: url.Values{"current_password": {"nope"}}}); r.StatusCode != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, "is not your current password") {
			t.Fatalf("renew with a wrong password: %d", r.StatusCode)
		}
		r = e.do(req{method: "POST", path: "/account/2fa/recovery", cookie: full.Value, form: url.Values{"current_password": {"zoes password"}}})
		if fresh := recoveryShown.FindAllStringSubmatch(r.body, -1); r.StatusCode != http.StatusOK || len(fresh) != 10 || fresh[0][1] == codes[1][1] {
			t.Fatalf("renewed codes: %d %v", r.StatusCode, fresh)
		}

		// Turning it off asks for the password and a code.
		r = e.do(req{method: "POST", path: "/account/2fa/disable", cookie: full.Value, form: url.Values{"current_password": {"not it"}, "code": {"123456"}}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, "is not your current password") {
			t.Fatalf("disable with a wrong password: %d", r.StatusCode)
		}

		// An admin turns it off for a lost phone.
		admin := e.login("root", "root password")
		if r := e.do(req{method: "GET", path: "/users", cookie: admin}); !strings.Contains(r.body, "/users/"+strconv.Itoa(zoe.ID)+"/2fa/reset") {
			t.Fatal("the users page offers no reset for a user with two-factor sign-in")
		}
		if r := e.do(req{method: "POST", path: "/users/" + strconv.Itoa(zoe.ID) + "/2fa/reset", cookie: admin}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("reset: %d", r.StatusCode)
		}
		e.login("zoe", "zoes password")
	})
}

// With require_two_factor, a covered user's browser session opens only the
// account page and the set-up steps until two-factor sign-in is on, and it
// cannot be turned off; their API tokens and uncovered users are not held.
func TestRequireTwoFactor(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{RequireTwoFactor: "admins"})
		root := e.createUser("root", "root password", auth.RoleAdmin)
		e.createUser("zoe", "zoes password", auth.RoleUser)
		c := e.login("root", "root password")
		_, token, err := e.tokens.Create(t.Context(), audit.System("test"), root.ID, "ci", nil)
		if err != nil {
			t.Fatal(err)
		}

		for _, p := range []string{"/", "/users", "/tokens", "/audit"} {
			if r := e.do(req{method: "GET", path: p, cookie: c}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
				t.Errorf("GET %s before set-up: %d to %q", p, r.StatusCode, r.Header.Get("Location"))
			}
		}
		if r := e.do(req{method: "POST", path: "/users", cookie: c, form: url.Values{"username": {"eve"}, "password": {"eves password 1"}, "role": {"admin"}}}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
			t.Errorf("POST /users before set-up: %d", r.StatusCode)
		}
		if _, err := e.users.Lookup(t.Context(), "eve"); err == nil {
			t.Error("a held session created a user")
		}
		r := e.do(req{method: "GET", path: "/api/v1/users", cookie: c, header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
		if r.StatusCode != http.StatusForbidden || apiError(t, r).Code != "two_factor_required" {
			t.Errorf("API with the session before set-up: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: c}); r.StatusCode != http.StatusOK {
			t.Errorf("who am I before set-up: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/users", bearer: token}); r.StatusCode != http.StatusOK {
			t.Errorf("API token before set-up: %d", r.StatusCode)
		}
		r = e.do(req{method: "GET", path: "/account", cookie: c})
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "data-two-factor-required") {
			t.Fatalf("account page before set-up: %d\n%s", r.StatusCode, r.body)
		}
		// A user is not covered by "admins".
		z := e.login("zoe", "zoes password")
		if r := e.do(req{method: "GET", path: "/tokens", cookie: z}); r.StatusCode != http.StatusOK {
			t.Errorf("a user under admins-only: %d", r.StatusCode)
		}

		// Set it up; then everything opens, and it cannot be turned off.
		r = e.do(req{method: "POST", path: "/account/2fa/setup", cookie: c})
		m := shownSecret.FindStringSubmatch(r.body)
		if r.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("set-up page: %d", r.StatusCode)
		}
		key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
		p := phone{key}
		step := time.Now().Unix() / 30
		if r := e.do(req{method: "POST", path: "/account/2fa/confirm", cookie: c, form: url.Values{"code": {p.code(step)}}}); r.StatusCode != http.StatusOK {
			t.Fatalf("confirm: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/users", cookie: c}); r.StatusCode != http.StatusOK {
			t.Errorf("GET /users after set-up: %d", r.StatusCode)
		}
		r = e.do(req{method: "POST", path: "/account/2fa/disable", cookie: c, form: url.Values{"current_password": {"root password"}, "code": {p.code(step + 1)}}})
		if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "cannot be turned off") {
			t.Errorf("turning a required second factor off: %d", r.StatusCode)
		}
		if u, _ := e.users.Get(t.Context(), root.ID); !u.TOTP {
			t.Error("a required second factor was turned off")
		}

		// Under "all", users are held too.
		e2 := newEnv(t, db, config.Config{RequireTwoFactor: "all"})
		z2 := e2.login("zoe", "zoes password")
		if r := e2.do(req{method: "GET", path: "/tokens", cookie: z2}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
			t.Errorf("a user under all: %d", r.StatusCode)
		}
	})
}
