package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

func TestCrossOriginWritesRefused(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("dora", "doras password", auth.RoleAdmin)
		vic := e.createUser("vic", "vics password", auth.RoleUser)
		admin := e.login("dora", "doras password")
		disable := "/users/" + strconv.Itoa(vic.ID) + "/disable"
		host := strings.TrimPrefix(e.http.URL, "http://")

		tests := []struct {
			name    string
			header  map[string]string
			refused bool
		}{
			{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
			{"same-site other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
			{"foreign Origin without fetch metadata", map[string]string{"Origin": "http://evil.example.test"}, true},
			{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}, false},
		}
		for _, tc := range tests {
			r := e.do(req{method: "POST", path: disable, cookie: admin, header: tc.header})
			u, _ := e.users.Get(context.Background(), vic.ID)
			if tc.refused {
				if r.StatusCode != http.StatusForbidden || u.Disabled {
					t.Fatalf("%s: status %d, disabled %v", tc.name, r.StatusCode, u.Disabled)
				}
				continue
			}
			if r.StatusCode != http.StatusSeeOther || !u.Disabled {
				t.Fatalf("%s: status %d, disabled %v", tc.name, r.StatusCode, u.Disabled)
			}
		}
		// Login CSRF and API writes are covered by the same check.
		r := e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"dora"}, "password": {"doras password"}},
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		if r.StatusCode != http.StatusForbidden || sessionCookie(r) != nil {
			t.Fatalf("cross-site login: %d", r.StatusCode)
		}
		r = e.do(req{method: "POST", path: "/api/v1/tokens", cookie: admin, json: map[string]any{"name": "x"},
			header: map[string]string{"Origin": "http://evil.example.test"}})
		if r.StatusCode != http.StatusForbidden || apiError(t, r).Code != "cross_origin" {
			t.Fatalf("cross-origin API write: %d %s", r.StatusCode, r.body)
		}
		// Reads are not affected.
		if r := e.do(req{method: "GET", path: "/users", cookie: admin, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}); r.StatusCode != http.StatusOK {
			t.Fatalf("cross-site navigation: %d", r.StatusCode)
		}
	})
}

func TestLoginThrottling(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
		e := newEnv(t, db, config.Config{TrustedProxies: trusted})
		e.createUser("eve", "eves password", auth.RoleUser)
		post := func(user, pass, from string) resp {
			return e.do(req{method: "POST", path: "/login", form: url.Values{"username": {user}, "password": {pass}},
				header: map[string]string{"X-Forwarded-For": from}})
		}
		// The same answer for a wrong password and an unknown user.
		wrong := post("eve", "not the password", "198.51.100.1")
		unknown := post("ghost", "not the password", "198.51.100.1")
		if wrong.StatusCode != http.StatusUnauthorized || unknown.StatusCode != wrong.StatusCode {
			t.Fatalf("statuses %d and %d", wrong.StatusCode, unknown.StatusCode)
		}
		if strings.ReplaceAll(wrong.body, "eve", "X") != strings.ReplaceAll(unknown.body, "ghost", "X") {
			t.Fatal("wrong password and unknown user get different pages")
		}
		if sessionCookie(wrong) != nil || sessionCookie(unknown) != nil {
			t.Fatal("failed sign-in set a cookie")
		}

		// Per account: five failures in all, then even the right password is refused.
		for i := range 3 {
			post("eve", "not the password", "198.51.100."+strconv.Itoa(10+i))
		}
		post("ghost", "x", "198.51.100.2")
		post("ghost", "x", "198.51.100.3")
		post("ghost", "x", "198.51.100.4")
		post("ghost", "x", "198.51.100.5")
		fifth := post("eve", "not the password", "198.51.100.20")
		lockedRight := post("eve", "eves password", "198.51.100.21")
		lockedGhost := post("ghost", "eves password", "198.51.100.21")
		if lockedRight.StatusCode != http.StatusTooManyRequests || lockedRight.Header.Get("Retry-After") == "" {
			t.Fatalf("locked account with right password: %d", lockedRight.StatusCode)
		}
		if fifth.StatusCode != http.StatusUnauthorized {
			t.Fatalf("fifth failure answered %d, want 401", fifth.StatusCode)
		}
		if lockedGhost.StatusCode != lockedRight.StatusCode ||
			strings.ReplaceAll(lockedGhost.body, "ghost", "X") != strings.ReplaceAll(lockedRight.body, "eve", "X") {
			t.Fatal("a locked unknown user is answered differently from a locked real one")
		}

		// Per address: twenty failures from one client, spread over names, lock
		// that client out even for an account in good standing.
		e.createUser("fay", "fays password", auth.RoleUser)
		for i := range auth.DefaultThrottle().AddressFailures {
			post("spray"+strconv.Itoa(i), "guess", "203.0.113.7")
		}
		if r := post("fay", "fays password", "203.0.113.7"); r.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("locked address: %d", r.StatusCode)
		}
		if r := post("fay", "fays password", "203.0.113.8"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("another address: %d", r.StatusCode)
		}
	})
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "192.0.2.1:5555", "", "192.0.2.1"},
		{"untrusted peer's header ignored", "192.0.2.1:5555", "203.0.113.9", "192.0.2.1"},
		{"trusted proxy", "10.1.1.1:5555", "203.0.113.9", "203.0.113.9"},
		{"spoofed left part ignored", "10.1.1.1:5555", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"chain of proxies", "10.1.1.1:5555", "203.0.113.9, 10.2.2.2", "203.0.113.9"},
		{"garbage stops the walk", "10.1.1.1:5555", "203.0.113.9, nonsense", "10.1.1.1"},
		{"ipv6 peer", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"mapped ipv4", "[::ffff:192.0.2.1]:80", "", "192.0.2.1"},
	}
	for _, tc := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientAddr(r, trusted); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestAPITokens(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("gus", "guss password", auth.RoleAdmin)
		hal := e.createUser("hal", "hals password", auth.RoleUser)
		halCookie := e.login("hal", "hals password")

		r := e.do(req{method: "POST", path: "/api/v1/tokens", cookie: halCookie, json: map[string]any{"name": "laptop"}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		created := decode[createdTokenJSON](t, r)
		secret := created.Secret
		if !strings.HasPrefix(secret, "gh_") || created.Token.Prefix != secret[:10] {
			t.Fatalf("created %+v", created)
		}
		// Hashed at rest.
		var hash []byte
		if err := db.SQL.QueryRow(db.Rebind("SELECT token_hash FROM api_tokens WHERE id = ?"), created.Token.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256([]byte(secret)); hex.EncodeToString(hash) != hex.EncodeToString(sum[:]) {
			t.Fatal("the stored value is not the token's SHA-256")
		}
		// Shown once: listing never includes it.
		list := e.do(req{method: "GET", path: "/api/v1/tokens", bearer: secret})
		if list.StatusCode != http.StatusOK || strings.Contains(list.body, secret) || !strings.Contains(list.body, created.Token.Prefix) {
			t.Fatalf("list: %d %s", list.StatusCode, list.body)
		}
		me := decode[meJSON](t, e.do(req{method: "GET", path: "/api/v1/me", bearer: secret}))
		if me.User.ID != hal.ID || me.Token == nil || me.Token.ID != created.Token.ID {
			t.Fatalf("me: %+v", me)
		}
		// Same role as the owner: a user's token cannot use admin endpoints.
		if r := e.do(req{method: "GET", path: "/api/v1/users", bearer: secret}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("user token on admin API: %d", r.StatusCode)
		}
		for _, h := range []string{"Basic aGFsOmhhbHM=", "Bearer", "Bearer gh_nope", "bearer " + secret} {
			r := e.do(req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": h}})
			if r.StatusCode != http.StatusUnauthorized || apiError(t, r).Code != "unauthenticated" {
				t.Errorf("Authorization %q: %d", h, r.StatusCode)
			}
		}
		// A bad token is refused even with a valid session: no silent fallback.
		if r := e.do(req{method: "GET", path: "/api/v1/me", cookie: halCookie, bearer: "gh_nope"}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token with a session: %d", r.StatusCode)
		}

		// Disabled owner: 401; enabled again: works.
		gus := e.login("gus", "guss password")
		patch := func(body map[string]any) resp {
			return e.do(req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(hal.ID), cookie: gus, json: body})
		}
		if r := patch(map[string]any{"disabled": true}); r.StatusCode != http.StatusOK {
			t.Fatalf("disable: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", bearer: secret}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled owner's token: %d", r.StatusCode)
		}
		if r := patch(map[string]any{"disabled": false}); r.StatusCode != http.StatusOK {
			t.Fatalf("enable: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", bearer: secret}); r.StatusCode != http.StatusOK {
			t.Fatalf("re-enabled owner's token: %d", r.StatusCode)
		}
		// Another user cannot revoke it; the owner can, with the token itself.
		if r := e.do(req{method: "DELETE", path: "/api/v1/tokens/" + strconv.Itoa(created.Token.ID), cookie: gus}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("revoke by someone else: %d", r.StatusCode)
		}
		if r := e.do(req{method: "DELETE", path: "/api/v1/tokens/" + strconv.Itoa(created.Token.ID), bearer: secret}); r.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/me", bearer: secret}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d", r.StatusCode)
		}
	})
}

func TestAPIValidationErrors(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		root := e.createUser("ida", "idas password", auth.RoleAdmin)
		c := e.login("ida", "idas password")
		tests := []struct {
			name   string
			r      req
			status int
			code   string
			field  string
		}{
			{"bad username", req{method: "POST", path: "/api/v1/users", json: map[string]any{"username": "Bad Name", "password": "long enough pw"}}, 422, "validation_failed", "username"},
			{"short password", req{method: "POST", path: "/api/v1/users", json: map[string]any{"username": "jo", "password": "short"}}, 422, "validation_failed", "password"},
			{"unknown field", req{method: "POST", path: "/api/v1/users", json: map[string]any{"username": "jo", "password": "long enough pw", "admin": true}}, 400, "bad_request", ""},
			{"form body", req{method: "POST", path: "/api/v1/users", form: url.Values{"username": {"jo"}}}, 415, "unsupported_media_type", ""},
			{"unknown user", req{method: "PATCH", path: "/api/v1/users/99999", json: map[string]any{"role": "admin"}}, 404, "not_found", ""},
			{"empty patch", req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(root.ID), json: map[string]any{}}, 400, "bad_request", ""},
			{"last admin", req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(root.ID), json: map[string]any{"disabled": true}}, 409, "last_admin", ""},
			{"bad role", req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(root.ID), json: map[string]any{"role": "owner"}}, 422, "validation_failed", "role"},
			{"bad token name", req{method: "POST", path: "/api/v1/tokens", json: map[string]any{"name": ""}}, 422, "validation_failed", "name"},
			{"bad audit limit", req{method: "GET", path: "/api/v1/audit?limit=0"}, 400, "validation_failed", "limit"},
		}
		for _, tc := range tests {
			tc.r.cookie = c
			r := e.do(tc.r)
			if r.StatusCode != tc.status {
				t.Errorf("%s: status %d, want %d: %s", tc.name, r.StatusCode, tc.status, r.body)
				continue
			}
			ae := apiError(t, r)
			if ae.Code != tc.code || ae.Message == "" || (tc.field != "" && ae.Fields[tc.field] == "") {
				t.Errorf("%s: error %+v", tc.name, ae)
			}
		}
		// Audit through the API: newest first, filtered.
		page := decode[struct {
			Events []struct{ Action, Actor string }
		}](t, e.do(req{method: "GET", path: "/api/v1/audit?action=login", cookie: c}))
		if len(page.Events) == 0 || page.Events[0].Action != "login" || page.Events[0].Actor != "ida" {
			t.Fatalf("audit: %+v", page.Events)
		}
	})
}

// TestNoSecretsLeak runs a session through every credential path and checks
// that no password, token or hash appears in any response or log line.
func TestNoSecretsLeak(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		const (
			adminPW = "Admin-Secret-Passw0rd"
			userPW  = "User-Secret-Passw0rd"
			newPW   = "Changed-Secret-Passw0rd"
			wrongPW = "Wrong-Secret-Passw0rd"
		)
		e.createUser("kai", adminPW, auth.RoleAdmin)
		var bodies []string
		keep := func(r resp) resp {
			bodies = append(bodies, r.body+strings.Join(r.Header.Values("Location"), ""))
			return r
		}

		keep(e.do(req{method: "POST", path: "/login", form: url.Values{"username": {"kai"}, "password": {wrongPW}}}))
		keep(e.do(req{method: "POST", path: "/login", form: url.Values{"username": {wrongPW}, "password": {wrongPW}}}))
		c := e.login("kai", adminPW)
		created := keep(e.do(req{method: "POST", path: "/api/v1/users", cookie: c, json: map[string]any{"username": "lee", "password": userPW}}))
		lee := decode[struct{ User userJSON }](t, created).User
		keep(e.do(req{method: "POST", path: "/api/v1/users", cookie: c, json: map[string]any{"username": "lee", "password": userPW}}))
		keep(e.do(req{method: "PATCH", path: "/api/v1/users/" + strconv.Itoa(lee.ID), cookie: c, json: map[string]any{"password": newPW}}))
		keep(e.do(req{method: "POST", path: "/users", cookie: c, form: url.Values{"username": {"mo"}, "password": {"short"}}}))
		leeCookie := e.login("lee", newPW)
		tokResp := e.do(req{method: "POST", path: "/api/v1/tokens", cookie: leeCookie, json: map[string]any{"name": "ci"}})
		secret := decode[createdTokenJSON](t, tokResp).Secret
		pageTok := e.do(req{method: "POST", path: "/tokens", cookie: leeCookie, form: url.Values{"name": {"page"}, "expires": {"30"}}})
		if !strings.Contains(pageTok.body, "gh_") {
			t.Fatal("the tokens page did not show the new token")
		}
		for _, p := range []string{"/api/v1/me", "/api/v1/tokens", "/tokens"} {
			keep(e.do(req{method: "GET", path: p, bearer: secret, cookie: leeCookie}))
		}
		keep(e.do(req{method: "GET", path: "/api/v1/me", bearer: secret + "x"}))
		for _, p := range []string{"/api/v1/users", "/api/v1/audit", "/users", "/audit", "/"} {
			keep(e.do(req{method: "GET", path: p, cookie: c}))
		}
		sum := sha256.Sum256([]byte(secret))
		secrets := map[string]string{
			"admin password": adminPW, "user password": userPW, "new password": newPW, "wrong password": wrongPW,
			"token": secret, "token body": secret[10:], "token hash": hex.EncodeToString(sum[:]), "bcrypt hash": "$2a$",
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "sign-in failed") {
			t.Fatal("log capture is not working")
		}
		for what, s := range secrets {
			for i, b := range bodies {
				if strings.Contains(b, s) {
					t.Errorf("response %d contains the %s", i, what)
				}
			}
			if strings.Contains(logs, s) {
				t.Errorf("logs contain the %s", what)
			}
		}
		// The audit log, which admins read, holds none either.
		rows, _ := db.Client.AuditEvent.Query().All(context.Background())
		for _, ev := range rows {
			for what, s := range secrets {
				if strings.Contains(ev.Detail+ev.Target+ev.Actor, s) {
					t.Errorf("audit event %s contains the %s", ev.Action, what)
				}
			}
		}
	})
}

// TestRequestBodiesAreBounded: a route that reads its form with the standard
// library's defaults still cannot be fed more than MaxBody bytes, as a form or
// as a multipart upload that would otherwise spill to disk.
func TestRequestBodiesAreBounded(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	e.srv.MustRegister(Route{Method: "POST", Pattern: "/test/form", Policy: PolicyUser, Kind: KindPage,
		Handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strconv.Itoa(len(r.PostFormValue("x"))))
		}})
	e.createUser("paula", "paulas password", auth.RoleUser)
	c := e.login("paula", "paulas password")
	big := strings.Repeat("a", MaxBody+1)

	if r := e.do(req{method: "POST", path: "/test/form", cookie: c, form: url.Values{"x": {"small"}}}); r.body != "5" {
		t.Fatalf("small form: %d %q", r.StatusCode, r.body)
	}
	if r := e.do(req{method: "POST", path: "/test/form", cookie: c, form: url.Values{"x": {big}}}); r.body != "0" {
		t.Fatalf("oversized form was read: %d, %s bytes", r.StatusCode, r.body)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "big.bin")
	io.WriteString(fw, big)
	mw.WriteField("x", "after the file")
	mw.Close()
	r := e.do(req{method: "POST", path: "/test/form", cookie: c, raw: mp.Bytes(), header: map[string]string{"Content-Type": mw.FormDataContentType()}})
	if r.body != "0" {
		t.Fatalf("oversized multipart body was read: %d %q", r.StatusCode, r.body)
	}
}

// A read-only token reads with its owner's role and changes nothing, even
// an admin's; the token list and the API say which tokens are read-only.
func TestReadOnlyToken(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	admin := e.createUser("ro-admin", "ro-admin password", auth.RoleAdmin)
	_, secret, err := e.tokens.CreateWith(context.Background(), audit.System("test"), admin.ID, auth.TokenSpec{Name: "prometheus", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		json         any
		want         int
	}{
		{"GET", "/api/v1/me", nil, http.StatusOK},
		{"GET", "/api/v1/users", nil, http.StatusOK},
		{"GET", "/api/v1/audit", nil, http.StatusOK},
		{"POST", "/api/v1/users", map[string]any{"username": "sneaky", "password": "sneaky password", "role": "admin"}, http.StatusForbidden},
		{"POST", "/api/v1/tokens", map[string]any{"name": "escalate"}, http.StatusForbidden},
		{"DELETE", "/api/v1/tokens/1", nil, http.StatusForbidden},
		{"GET", "/api/v1/tokens", nil, http.StatusOK},
	} {
		r := e.do(req{method: tc.method, path: tc.path, json: tc.json, bearer: secret})
		if r.StatusCode != tc.want || (tc.want == http.StatusForbidden && !strings.Contains(r.body, "read_only_token")) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.StatusCode, r.body)
		}
	}
	if _, err := e.users.Lookup(context.Background(), "sneaky"); err == nil {
		t.Fatal("a read-only token created a user")
	}
	if r := e.do(req{method: "GET", path: "/api/v1/tokens", bearer: secret}); !strings.Contains(r.body, `"read_only":true`) {
		t.Errorf("the token list in the API does not say read-only: %s", r.body)
	}
	c := e.login("ro-admin", "ro-admin password")
	list := e.do(req{method: "GET", path: "/tokens", cookie: c})
	if !strings.Contains(list.body, "data-token-read-only") {
		t.Error("the token list does not mark the read-only token")
	}
	created := e.do(req{method: "POST", path: "/tokens", cookie: c, form: url.Values{"name": {"dashboard"}, "expires": {"never"}, "read_only": {"1"}}})
	if created.StatusCode != http.StatusOK {
		t.Fatalf("create a read-only token from the page: %d", created.StatusCode)
	}
	toks, err := e.tokens.List(context.Background(), admin.ID)
	if err != nil || len(toks) != 2 || !toks[0].ReadOnly || toks[0].Name != "dashboard" {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
}

// TestSessionlessWritesAndSecretPaths: a route without a session (a push
// URL) carries no ambient credentials, so a cross-site POST reaches it; a
// route whose path holds a secret is logged by its pattern, never its path.
func TestSessionlessWritesAndSecretPaths(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	var calls int
	e.srv.MustRegister(
		Route{Method: "POST", Pattern: "/hook/{token}", Policy: PolicyPublic, Kind: KindPage, NoSession: true, SecretPath: true,
			Handler: func(w http.ResponseWriter, r *http.Request) { calls++; panic("boom") }},
		Route{Method: "POST", Pattern: "/open/{token}", Policy: PolicyPublic, Kind: KindPage, NoSession: true,
			Handler: func(w http.ResponseWriter, r *http.Request) { calls++; w.WriteHeader(http.StatusNoContent) }},
	)
	const token = "s3cret-token-in-the-path"
	cross := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example.test"}
	if r := e.do(req{method: "POST", path: "/open/" + token, header: cross}); r.StatusCode != http.StatusNoContent || calls != 1 {
		t.Errorf("cross-site POST to a sessionless route: %d, %d calls", r.StatusCode, calls)
	}
	if r := e.do(req{method: "POST", path: "/hook/" + token, header: cross}); r.StatusCode != http.StatusInternalServerError || calls != 2 {
		t.Errorf("panicking secret route: %d, %d calls", r.StatusCode, calls)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "/hook/{token}") || strings.Contains(logs, "/hook/"+token) {
		t.Errorf("the secret route's log line shows its path, or no pattern:\n%s", logs)
	}
}
