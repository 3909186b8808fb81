package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// openDB returns a fresh, migrated database of the named dialect.
func openDB(t *testing.T, dialect string) *store.DB {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "gh.db")
	if dialect == "postgres" {
		url = pgtest.Database(t)
	}
	db, err := store.Open(context.Background(), url, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// bothDialects runs body against SQLite and PostgreSQL.
func bothDialects(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) { body(t, openDB(t, d)) })
	}
}

type env struct {
	t      *testing.T
	db     *store.DB
	srv    *Server
	http   *httptest.Server
	users  *auth.Users
	tokens *auth.Tokens
	audit  *audit.Recorder
	broker *events.Broker
	logs   *syncbuf.Buffer
}

func newEnv(t *testing.T, db *store.DB, cfg config.Config) *env {
	t.Helper()
	return newEnvWith(t, db, cfg, nil)
}

// newEnvWith is newEnv with a chance to adjust the web layer's options.
func newEnvWith(t *testing.T, db *store.DB, cfg config.Config, adjust func(*Options)) *env {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Trace, Output: logs})
	rec := audit.New(db.Client, log)
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.NewUsers(db.Client, rec, log, auth.UsersOptions{BcryptCost: bcrypt.MinCost, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	broker := events.New(log)
	tokens := auth.NewTokens(db.Client, rec, log, nil)
	opts := Options{Log: log, DB: db, Config: cfg, Events: broker, Users: users, Audit: rec, Tokens: tokens, Version: "test"}
	if adjust != nil {
		adjust(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		broker.Close()
		hs.Close()
	})
	return &env{t: t, db: db, srv: srv, http: hs, users: users, tokens: tokens, audit: rec, broker: broker, logs: logs}
}

func (e *env) createUser(name, password, role string) auth.User {
	e.t.Helper()
	u, err := e.users.Create(context.Background(), audit.System("test"), name, password, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// resp is a finished response with its body read.
type resp struct {
	*http.Response
	body string
}

// req describes one request; cookie is the session cookie value to send.
type req struct {
	method, path string
	form         url.Values
	json         any
	raw          []byte // a body sent as is; set its Content-Type in header
	cookie       string
	cookies      []*http.Cookie // more cookies to send, such as a trusted browser's
	bearer       string
	header       map[string]string
}

func (e *env) do(r req) resp {
	e.t.Helper()
	var body io.Reader
	ct := ""
	switch {
	case r.form != nil:
		body, ct = strings.NewReader(r.form.Encode()), "application/x-www-form-urlencoded"
	case r.json != nil:
		b, _ := json.Marshal(r.json)
		body, ct = bytes.NewReader(b), "application/json"
	case r.raw != nil:
		body = bytes.NewReader(r.raw)
	}
	hr, err := http.NewRequest(r.method, e.http.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: cookieName, Value: r.cookie})
		hr.AddCookie(&http.Cookie{Name: secureCookieName, Value: r.cookie})
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Response: res, body: string(b)}
}

// sessionCookie returns the session cookie a response set, or nil.
func sessionCookie(r resp) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == cookieName || c.Name == secureCookieName {
			return c
		}
	}
	return nil
}

// login signs in through the form and returns the session cookie value.
func (e *env) login(username, password string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/login", form: url.Values{"username": {username}, "password": {password}}})
	if r.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login %s: status %d: %s", username, r.StatusCode, r.body)
	}
	c := sessionCookie(r)
	if c == nil || c.Value == "" {
		e.t.Fatalf("login %s: no session cookie", username)
	}
	return c.Value
}

// apiError decodes a JSON error body.
func apiError(t *testing.T, r resp) APIError {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("not a JSON error (status %d): %q", r.StatusCode, r.body)
	}
	return b.Error
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}
