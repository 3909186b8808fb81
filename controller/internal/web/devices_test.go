package web

import (
	"context"
	"encoding/base32"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/trusteddevice"
)

// twoFactorUser is a user with two-factor sign-in on: their phone and
// their unused recovery codes, each good for one code step.
type twoFactorUser struct {
	auth.User
	password string
	phone    phone
	step     int64 // the step the second factor was confirmed with
	codes    []string
}

// withTOTP creates a user and turns their second factor on.
func (e *env) withTOTP(name string) *twoFactorUser {
	e.t.Helper()
	ctx := context.Background()
	pw := name + " password"
	u := e.createUser(name, pw, auth.RoleUser)
	setup, err := e.users.BeginTOTP(ctx, u.ID, "Gatehouse")
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(setup.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	tf := &twoFactorUser{password: pw, phone: phone{key}, step: time.Now().Unix() / 30}
	tf.codes, err = e.users.ConfirmTOTP(ctx, audit.System("test"), u.ID, tf.phone.code(tf.step))
	if err != nil {
		e.t.Fatal(err)
	}
	tf.User, err = e.users.Get(ctx, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return tf
}

// recovery hands out the user's next unused recovery code.
func (u *twoFactorUser) recovery() string {
	c := u.codes[0]
	u.codes = u.codes[1:]
	return c
}

// deviceCookieOf returns the trusted-browser cookie a response set, or nil.
func deviceCookieOf(r resp) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == deviceCookieName || c.Name == secureDeviceCookieName {
			return c
		}
	}
	return nil
}

// passwordStep posts the sign-in form with device (may be nil) and
// returns the answer.
func (e *env) passwordStep(name, password string, device *http.Cookie) resp {
	e.t.Helper()
	var cookies []*http.Cookie
	if device != nil {
		cookies = []*http.Cookie{{Name: device.Name, Value: device.Value}}
	}
	return e.do(req{method: "POST", path: "/login", cookies: cookies,
		form: url.Values{"username": {name}, "password": {password}, "next": {"/tokens"}}})
}

// codeSignIn signs u in with the password and code, ticking "Remember
// this browser" when remember is set, and returns the code step's answer.
func (e *env) codeSignIn(u *twoFactorUser, code string, remember bool) resp {
	e.t.Helper()
	r := e.passwordStep(u.Username, u.password, nil)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/code" {
		e.t.Fatalf("password step of %s: %d to %q", u.Username, r.StatusCode, r.Header.Get("Location"))
	}
	form := url.Values{"code": {code}}
	if remember {
		form.Set("remember", "1")
	}
	r = e.do(req{method: "POST", path: "/login/code", cookie: sessionCookie(r).Value, form: form,
		header: map[string]string{"User-Agent": "Testzilla/1.0 <b>bold</b>"}})
	if r.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("code step of %s: %d\n%s", u.Username, r.StatusCode, r.body)
	}
	return r
}

// remember signs u in with a recovery code and "Remember this browser",
// and returns the device cookie.
func (e *env) remember(u *twoFactorUser) *http.Cookie {
	e.t.Helper()
	c := deviceCookieOf(e.codeSignIn(u, u.recovery(), true))
	if c == nil || c.Value == "" {
		e.t.Fatalf("no trusted-browser cookie for %s", u.Username)
	}
	return c
}

func (e *env) deviceCount(userID int) int {
	e.t.Helper()
	n, err := e.db.Client.TrustedDevice.Query().Where(trusteddevice.UserID(userID)).Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) lastAudit() audit.Event {
	e.t.Helper()
	p, err := e.audit.List(context.Background(), audit.Query{Limit: 1})
	if err != nil || len(p.Events) == 0 {
		e.t.Fatalf("audit: %v", err)
	}
	return p.Events[0]
}

// TestTrustedBrowserSkipsCode: after a code with "Remember this browser",
// the next sign-in from that browser takes the password alone; without the
// box, with another user's cookie, an unknown or an expired one, the code
// is asked as before, and a wrong password looks the same with or without
// a cookie.
func TestTrustedBrowserSkipsCode(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		zoe, ann := e.withTOTP("zoe"), e.withTOTP("ann")

		// The box unticked: no cookie, nothing stored.
		if r := e.codeSignIn(zoe, zoe.phone.code(zoe.step+1), false); deviceCookieOf(r) != nil || e.deviceCount(zoe.ID) != 0 {
			t.Fatalf("remembered without the box: %v", r.Header["Set-Cookie"])
		}
		r := e.codeSignIn(zoe, zoe.recovery(), true)
		dev := deviceCookieOf(r)
		if dev == nil || len(dev.Value) < 43 || !dev.HttpOnly || dev.SameSite != http.SameSiteLaxMode || dev.Path != "/" ||
			dev.MaxAge != 30*24*3600 || dev.Secure || dev.Domain != "" || dev.Name != "gatehouse_device" {
			t.Fatalf("trusted-browser cookie: %v", r.Header["Set-Cookie"])
		}
		if r.Header.Get("Location") != "/tokens" || !e.signedIn(sessionCookie(r).Value) {
			t.Fatal("remembering the browser got in the way of signing in")
		}

		// Next time: password only.
		r = e.passwordStep("zoe", zoe.password, dev)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/tokens" || !e.signedIn(sessionCookie(r).Value) {
			t.Fatalf("password with a trusted browser: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
		if ev := e.lastAudit(); ev.Action != "login" || !strings.Contains(ev.Detail, "trusted browser") {
			t.Fatalf("audit of the trusted sign-in: %s %q", ev.Action, ev.Detail)
		}
		// The password is still required: a wrong one answers exactly as without a cookie.
		with, without := e.passwordStep("zoe", "wrong password", dev), e.passwordStep("zoe", "wrong password", nil)
		if with.StatusCode != http.StatusUnauthorized || with.StatusCode != without.StatusCode || with.body != without.body ||
			sessionCookie(with) != nil || !strings.Contains(with.body, "Wrong username or password") {
			t.Fatalf("a wrong password with a trusted browser: %d vs %d", with.StatusCode, without.StatusCode)
		}

		// Ann's browser does not skip Zoe's code, and keeps working for Ann.
		annDev := e.remember(ann)
		expired := &http.Cookie{Name: dev.Name, Value: dev.Value}
		for _, tc := range []struct {
			name   string
			cookie *http.Cookie
		}{
			{"another user's", annDev},
			{"unknown", &http.Cookie{Name: deviceCookieName, Value: strings.Repeat("A", 43)}},
			{"garbage", &http.Cookie{Name: deviceCookieName, Value: strings.Repeat("x", 300)}},
		} {
			r := e.passwordStep("zoe", zoe.password, tc.cookie)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/code" {
				t.Errorf("%s cookie: %d to %q", tc.name, r.StatusCode, r.Header.Get("Location"))
			}
		}
		if r := e.passwordStep("ann", ann.password, annDev); r.Header.Get("Location") != "/tokens" {
			t.Fatalf("ann's own browser after zoe tried it: %q", r.Header.Get("Location"))
		}

		// Expired: the code is asked again, and the row is gone.
		ctx := context.Background()
		if err := db.Client.TrustedDevice.Update().Where(trusteddevice.UserID(zoe.ID)).SetExpiresAt(time.Now().Add(-time.Minute)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if r := e.passwordStep("zoe", zoe.password, expired); r.Header.Get("Location") != "/login/code" {
			t.Fatalf("expired browser: to %q", r.Header.Get("Location"))
		}
		if n := e.deviceCount(zoe.ID); n != 0 {
			t.Fatalf("%d expired rows kept", n)
		}
		if e.deviceCount(ann.ID) != 1 {
			t.Fatal("ann's browser went with zoe's")
		}
	})
}

// TestTrustedBrowserCookieOverTLS: behind TLS the cookie is Secure and
// __Host- named, like the session cookie, and is read under that name only.
func TestTrustedBrowserCookieOverTLS(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{PublicURL: "https://gate.example.test"})
	zoe := e.withTOTP("zoe")
	dev := e.remember(zoe)
	if dev.Name != "__Host-gatehouse_device" || !dev.Secure || !dev.HttpOnly || dev.Path != "/" || dev.Domain != "" ||
		dev.SameSite != http.SameSiteLaxMode || dev.MaxAge != 30*24*3600 {
		t.Fatalf("cookie over TLS: %+v", dev)
	}
	if r := e.passwordStep("zoe", zoe.password, &http.Cookie{Name: deviceCookieName, Value: dev.Value}); r.Header.Get("Location") != "/login/code" {
		t.Fatal("the unprefixed name was honoured over TLS")
	}
	if r := e.passwordStep("zoe", zoe.password, dev); r.Header.Get("Location") != "/tokens" {
		t.Fatalf("the __Host- cookie: to %q", r.Header.Get("Location"))
	}
}

// TestTrustedBrowsersListAndForget: the account page and the API list a
// user's own browsers; Forget, Forget all and DELETE remove only the
// user's own, and never another user's by id.
func TestTrustedBrowsersListAndForget(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		zoe, ann := e.withTOTP("zoe"), e.withTOTP("ann")
		laptop, phoneDev := e.remember(zoe), e.remember(zoe)
		annDev := e.remember(ann)
		session := sessionCookie(e.passwordStep("zoe", zoe.password, laptop)).Value
		ctx := context.Background()
		rows, err := db.Client.TrustedDevice.Query().Order(trusteddevice.ByID()).All(ctx)
		if err != nil || len(rows) != 3 {
			t.Fatalf("rows %v %v", rows, err)
		}
		laptopID, phoneID, annID := rows[0].ID, rows[1].ID, rows[2].ID

		page := e.do(req{method: "GET", path: "/account", cookie: session, cookies: []*http.Cookie{laptop}})
		if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "Testzilla/1.0 &lt;b&gt;bold&lt;/b&gt;") || strings.Contains(page.body, "<b>bold") ||
			!strings.Contains(page.body, `action="/account/devices/`+strconv.Itoa(laptopID)+`/forget"`) ||
			!strings.Contains(page.body, `action="/account/devices/`+strconv.Itoa(phoneID)+`/forget"`) ||
			strings.Contains(page.body, `/account/devices/`+strconv.Itoa(annID)+`/`) ||
			strings.Count(page.body, "data-device-current") != 1 || !strings.Contains(page.body, "making new recovery codes keeps them") {
			t.Fatalf("account page:\n%s", page.body)
		}
		type listed struct {
			Devices []map[string]any `json:"devices"`
		}
		api := decode[listed](t, e.do(req{method: "GET", path: "/api/v1/me/devices", cookie: session, cookies: []*http.Cookie{laptop}}))
		if len(api.Devices) != 2 {
			t.Fatalf("API lists %d browsers, want zoe's 2", len(api.Devices))
		}
		for _, d := range api.Devices {
			if _, leak := d["token_hash"]; leak || d["ip"] != "127.0.0.1" || d["current"] != (int(d["id"].(float64)) == laptopID) {
				t.Fatalf("API browser %v", d)
			}
		}

		// Another user's browser cannot be forgotten by id, on the page or the API.
		r := e.do(req{method: "POST", path: "/account/devices/" + strconv.Itoa(annID) + "/forget", cookie: session})
		if r.StatusCode != http.StatusSeeOther || e.deviceCount(ann.ID) != 1 {
			t.Fatalf("zoe forgetting ann's browser: %d, ann has %d", r.StatusCode, e.deviceCount(ann.ID))
		}
		if f := e.do(req{method: "GET", path: "/account", cookie: session}); !strings.Contains(f.body, "no longer exists") {
			t.Fatal("refusing another user's browser says nothing")
		}
		if r := e.do(req{method: "DELETE", path: "/api/v1/me/devices/" + strconv.Itoa(annID), cookie: session}); r.StatusCode != http.StatusNotFound || e.deviceCount(ann.ID) != 1 {
			t.Fatalf("API delete of ann's browser by zoe: %d", r.StatusCode)
		}
		_, tok, err := e.tokens.Create(ctx, audit.System("test"), zoe.ID, "script", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.do(req{method: "DELETE", path: "/api/v1/me/devices/" + strconv.Itoa(annID), bearer: tok}); r.StatusCode != http.StatusNotFound || e.deviceCount(ann.ID) != 1 {
			t.Fatalf("API delete of ann's browser with zoe's token: %d", r.StatusCode)
		}

		// Forget this browser: it is gone, and so is its cookie.
		r = e.do(req{method: "POST", path: "/account/devices/" + strconv.Itoa(laptopID) + "/forget", cookie: session, cookies: []*http.Cookie{laptop}})
		if c := deviceCookieOf(r); r.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
			t.Fatalf("forget this browser: %d %v", r.StatusCode, r.Header["Set-Cookie"])
		}
		if r := e.passwordStep("zoe", zoe.password, laptop); r.Header.Get("Location") != "/login/code" {
			t.Fatal("a forgotten browser still skips the code")
		}
		// The API forgets the other one.
		if r := e.do(req{method: "DELETE", path: "/api/v1/me/devices/" + strconv.Itoa(phoneID), bearer: tok}); r.StatusCode != http.StatusNoContent {
			t.Fatalf("API delete: %d %s", r.StatusCode, r.body)
		}
		if r := e.passwordStep("zoe", zoe.password, phoneDev); r.Header.Get("Location") != "/login/code" {
			t.Fatal("a browser forgotten through the API still skips the code")
		}

		// Forget all takes every one of zoe's and none of ann's.
		e.remember(zoe)
		e.remember(zoe)
		if r := e.do(req{method: "POST", path: "/account/devices/forget", cookie: session}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("forget all: %d", r.StatusCode)
		}
		if e.deviceCount(zoe.ID) != 0 || e.deviceCount(ann.ID) != 1 {
			t.Fatalf("after forget all: zoe %d, ann %d", e.deviceCount(zoe.ID), e.deviceCount(ann.ID))
		}
		if r := e.do(req{method: "GET", path: "/account", cookie: session}); !strings.Contains(r.body, "data-devices-none") {
			t.Fatal("the account page still lists browsers")
		}
		if r := e.passwordStep("ann", ann.password, annDev); r.Header.Get("Location") != "/tokens" {
			t.Fatal("zoe's forgetting stopped ann's browser")
		}
	})
}

// TestTrustedBrowsersForgottenOnChanges: a password change (own, admin's
// page, API), turning the second factor off, an admin's reset and
// disabling the user each forget all of the user's trusted browsers.
func TestTrustedBrowsersForgottenOnChanges(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("root", "root password", auth.RoleAdmin)
		admin := e.login("root", "root password")
		for _, tc := range []struct {
			name   string
			change func(u *twoFactorUser, session string) resp
		}{
			{"own password", func(u *twoFactorUser, session string) resp {
				return e.do(req{method: "POST", path: "/account/password", cookie: session,
					form: url.Values{"current_password": {u.password}, "password": {"a new password"}, "confirm": {"a new password"}}})
			}},
			{"admin sets password", func(u *twoFactorUser, _ string) resp {
				return e.do(req{method: "POST", path: "/users/" + strconv.Itoa(u.ID) + "/password", cookie: admin, form: url.Values{"password": {"a new password"}}})
			}},
			{"api sets password", func(u *twoFactorUser, _ string) resp {
				return e.do(req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(u.ID), cookie: admin, json: map[string]string{"password": "a new password"}})
			}},
			{"own 2fa off", func(u *twoFactorUser, session string) resp {
				return e.do(req{method: "POST", path: "/account/2fa/disable", cookie: session,
					form: url.Values{"current_password": {u.password}, "code": {u.phone.code(u.step + 1)}}})
			}},
			{"admin reset", func(u *twoFactorUser, _ string) resp {
				return e.do(req{method: "POST", path: "/users/" + strconv.Itoa(u.ID) + "/2fa/reset", cookie: admin})
			}},
			{"disabled", func(u *twoFactorUser, _ string) resp {
				return e.do(req{method: "POST", path: "/users/" + strconv.Itoa(u.ID) + "/disable", cookie: admin})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u := e.withTOTP(strings.ReplaceAll(tc.name, " ", "-"))
				dev := e.remember(u)
				e.remember(u)
				session := sessionCookie(e.passwordStep(u.Username, u.password, dev)).Value
				if r := tc.change(u, session); r.StatusCode >= 400 || strings.Contains(r.body, "flash-error") {
					t.Fatalf("change: %d\n%s", r.StatusCode, r.body)
				}
				if n := e.deviceCount(u.ID); n != 0 {
					t.Fatalf("%d trusted browsers left", n)
				}
			})
		}
		// A new password with the old browser's cookie still asks for the code.
		u := e.withTOTP("last")
		dev := e.remember(u)
		if err := e.users.SetPassword(context.Background(), audit.System("test"), u.ID, "a new password"); err != nil {
			t.Fatal(err)
		}
		if r := e.passwordStep("last", "a new password", dev); r.Header.Get("Location") != "/login/code" {
			t.Fatalf("the old browser after a password change: to %q", r.Header.Get("Location"))
		}
	})
}
