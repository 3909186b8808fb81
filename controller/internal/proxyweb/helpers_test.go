package proxyweb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// openDB returns a fresh, migrated database of the named dialect.
func openDB(t *testing.T, dialect string) *store.DB {
	t.Helper()
	u := "sqlite:" + filepath.Join(t.TempDir(), "gh.db")
	if dialect == "postgres" {
		u = pgtest.Database(t)
	}
	db, err := store.Open(context.Background(), u, hclog.NewNullLogger())
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
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			body(t, openDB(t, d))
		})
	}
}

// fakeSender plays the hub: agents of the nodes in connected answer every
// ApplyNginxRelease with apply, and every drift check with drift.
type fakeSender struct {
	mu        sync.Mutex
	connected map[string]bool
	apply     *agentv1.ApplyResult
	drift     *agentv1.DriftResult
	sent      []*agentv1.Command
}

var errNotConnected = errors.New("not connected")

func (f *fakeSender) Send(ctx context.Context, node string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.connected[node] {
		return nil, errNotConnected
	}
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("command sent without a deadline")
	}
	f.sent = append(f.sent, cmd)
	switch {
	case cmd.GetApplyNginxRelease() != nil:
		res := &agentv1.ApplyResult{Code: f.apply.GetCode(), Output: f.apply.GetOutput()}
		if res.Code == agentv1.ApplyCode_APPLY_CODE_APPLIED {
			res.Revision = cmd.GetApplyNginxRelease().GetRevision()
		}
		return &agentv1.CommandResult{Result: &agentv1.CommandResult_Apply{Apply: res}}, nil
	case cmd.GetCheckNginxDrift() != nil:
		return &agentv1.CommandResult{Result: &agentv1.CommandResult_Drift{Drift: f.drift}}, nil
	}
	return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, Message: "unexpected command"}}, nil
}

func (f *fakeSender) Connected(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[node]
}

func (f *fakeSender) set(node string, connected bool, apply *agentv1.ApplyResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected[node] = connected
	f.apply = apply
}

func (f *fakeSender) setDrift(d *agentv1.DriftResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drift = d
}

func (f *fakeSender) commands() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// env is a web server with this package's routes over a real database.
type env struct {
	t      *testing.T
	db     *store.DB
	web    *web.Server
	http   *httptest.Server
	users  *auth.Users
	tokens *auth.Tokens
	proxy  *proxyconf.Service
	dep    *deploy.Deployer
	agents *fakeSender
	broker *events.Broker
	logs   *syncbuf.Buffer
}

// newEnv builds the env; opts may change the dependencies before they are
// registered, such as giving the domain list a Status callback.
func newEnv(t *testing.T, db *store.DB, opts ...func(*Deps)) *env {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: logs})
	rec := audit.New(db.Client, log)
	users, err := auth.NewUsers(db.Client, rec, log, auth.UsersOptions{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	broker := events.New(log)
	tokens := auth.NewTokens(db.Client, rec, log, nil)
	ws, err := web.New(web.Options{Log: log, DB: db, Config: config.Config{}, Events: broker, Users: users, Audit: rec, Tokens: tokens, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	agents := &fakeSender{connected: map[string]bool{}}
	dep, err := deploy.New(db, agents, deploy.Config{
		Debounce: time.Hour, // changes are deployed only when a test asks
		OnRevision: func(serverID int, rev *ent.ConfigRevision) {
			broker.Publish(events.Event{Topic: "server." + strconv.Itoa(serverID), Name: "revision",
				Data: map[string]any{"server_id": serverID, "number": rev.Number, "status": rev.Status, "outcome": rev.Outcome}})
		},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	proxy := proxyconf.New(db, proxyconf.Config{Notifier: dep}, log)
	deps := Deps{Proxy: proxy, Deploy: dep, DB: db, Log: log}
	for _, o := range opts {
		o(&deps)
	}
	if err := Register(ws, deps); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ws.Handler())
	t.Cleanup(func() {
		ws.Close()
		broker.Close()
		hs.Close()
	})
	return &env{t: t, db: db, web: ws, http: hs, users: users, tokens: tokens, proxy: proxy, dep: dep, agents: agents, broker: broker, logs: logs}
}

// who is how a request authenticates: session cookies or a bearer token.
type who struct {
	cookies []*http.Cookie
	bearer  string
}

var anonymous = who{}

func (e *env) createUser(name, role string) auth.User {
	e.t.Helper()
	u, err := e.users.Create(context.Background(), audit.System("test"), name, name+" password", role)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// login signs in through the form.
func (e *env) login(name string) who {
	e.t.Helper()
	r := e.do(anonymous, "POST", "/login", url.Values{"username": {name}, "password": {name + " password"}})
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) == 0 {
		e.t.Fatalf("login %s: status %d: %s", name, r.StatusCode, r.body)
	}
	return who{cookies: r.Cookies()}
}

// token issues an API token for the user.
func (e *env) token(u auth.User) who {
	e.t.Helper()
	_, secret, err := e.tokens.Create(context.Background(), audit.System("test"), u.ID, "test", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return who{bearer: secret}
}

// server adds a node to the registry.
func (e *env) server(name string) *ent.Server {
	e.t.Helper()
	s, err := e.db.Client.Server.Create().SetName(name).Save(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

type resp struct {
	*http.Response
	body string
}

// do sends a request: url.Values as a form, anything else as JSON.
func (e *env) do(as who, method, path string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(js), "application/json"
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, c := range as.cookies {
		req.AddCookie(c)
	}
	if as.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+as.bearer)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Response: res, body: string(b)}
}

// follow fetches the page a redirect points to, as the same viewer.
func (e *env) follow(as who, r resp) resp {
	e.t.Helper()
	if r.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("want a redirect, got %d: %s", r.StatusCode, r.body)
	}
	return e.do(as, "GET", r.Header.Get("Location"), nil)
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// counts returns how many upstreams, domains, routes, targets and streams are stored.
func (e *env) counts() [5]int {
	e.t.Helper()
	ctx := context.Background()
	c := e.db.Client
	return [5]int{c.Upstream.Query().CountX(ctx), c.Domain.Query().CountX(ctx), c.Route.Query().CountX(ctx),
		c.UpstreamTarget.Query().CountX(ctx), c.StreamProxy.Query().CountX(ctx)}
}

var adminActor = proxyconf.Actor{Actor: audit.System("test"), Admin: true}

// domainUsing is a domain proxying everything to the upstream.
func domainUsing(name, upstream string, servers ...int) proxyconf.DomainInput {
	return proxyconf.DomainInput{Name: name, Servers: servers, Routes: []proxyconf.RouteInput{{Path: "/", Kind: "proxy", Upstream: upstream}}}
}
