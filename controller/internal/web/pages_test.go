package web

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/server"
)

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	if r := e.do(req{method: "GET", path: "/healthz"}); r.StatusCode != 200 || r.body != "ok\n" {
		t.Fatalf("healthz: %d %q", r.StatusCode, r.body)
	}
	if r := e.do(req{method: "GET", path: "/readyz"}); r.StatusCode != 200 || !strings.Contains(r.body, `"ready"`) {
		t.Fatalf("readyz: %d %q", r.StatusCode, r.body)
	}

	// An unmigrated database is not ready, and says why.
	raw, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "new.db"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	e2 := newEnv(t, raw, config.Config{})
	r := e2.do(req{method: "GET", path: "/readyz"})
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(decode[readiness](t, r).Reason, "migrations are pending") {
		t.Fatalf("unmigrated readyz: %d %q", r.StatusCode, r.body)
	}
	// A database that is gone is not ready.
	raw.Close()
	r = e2.do(req{method: "GET", path: "/readyz"})
	if r.StatusCode != http.StatusServiceUnavailable || decode[readiness](t, r).Reason == "" {
		t.Fatalf("closed database readyz: %d %q", r.StatusCode, r.body)
	}
}

func TestDashboard(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("ops", "ops password", auth.RoleAdmin)
		e.createUser("viewer", "viewer password", auth.RoleUser)
		admin, viewer := e.login("ops", "ops password"), e.login("viewer", "viewer password")

		if r := e.do(req{method: "GET", path: "/", cookie: admin}); !strings.Contains(r.body, "No servers yet") || !strings.Contains(r.body, "adding a server") {
			t.Fatalf("admin empty state missing")
		}
		if r := e.do(req{method: "GET", path: "/", cookie: viewer}); !strings.Contains(r.body, "administrator has not added") {
			t.Fatalf("user empty state missing")
		}

		ctx := context.Background()
		seen := time.Now().Add(-3 * time.Minute)
		web1 := db.Client.Server.Create().SetName("web-1").SetAddress("10.0.0.5").SetStatus(server.StatusOnline).
			SetLastSeenAt(seen).SetOs("debian").SetArch("amd64").SetLabels([]string{"edge"}).SaveX(ctx)
		db.Client.Server.Create().SetName("db-<1>").SetStatus(server.StatusPending).SaveX(ctx)
		db.Client.Server.Create().SetName("old").SetStatus(server.StatusRemoved).SaveX(ctx)

		r := e.do(req{method: "GET", path: "/", cookie: viewer})
		if strings.Contains(r.body, "No servers yet") || strings.Contains(r.body, ">old<") {
			t.Fatal("dashboard shows the empty state or a removed server")
		}
		for _, want := range []string{
			`data-server-id="` + itoa(web1.ID) + `"`, `data-status="online"`, ">web-1<", "3 minutes ago", "debian · amd64", ">edge<",
			"db-&lt;1&gt;", "2 servers · 1 online · 0 offline · 1 pending", `data-live="servers"`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("dashboard lacks %q", want)
			}
		}
		// db-<1> sorts before web-1.
		if strings.Index(r.body, "db-&lt;1&gt;") > strings.Index(r.body, ">web-1<") {
			t.Error("tiles not sorted by name")
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestUsersPageForms(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, config.Config{})
		e.createUser("adm", "adm password", auth.RoleAdmin)
		c := e.login("adm", "adm password")

		// Without JavaScript, ?dialog= renders the dialog open.
		if r := e.do(req{method: "GET", path: "/users?dialog=create-user", cookie: c}); !strings.Contains(r.body, `id="create-user" aria-labelledby="create-user-title" open`) {
			t.Fatal("?dialog=create-user did not open the dialog")
		}
		// Invalid input re-renders the open dialog with per-field messages and keeps the typed name.
		r := e.do(req{method: "POST", path: "/users", cookie: c, form: url.Values{"username": {"new.person"}, "password": {"short"}, "role": {"user"}}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(r.body, "at least 10 characters") ||
			!strings.Contains(r.body, `value="new.person"`) || !strings.Contains(r.body, `aria-labelledby="create-user-title" open`) {
			t.Fatalf("invalid create: %d", r.StatusCode)
		}
		// A name that cannot be a username is not reflected.
		r = e.do(req{method: "POST", path: "/users", cookie: c, form: url.Values{"username": {`"><script>x()</script>`}, "password": {"long enough password"}, "role": {"user"}}})
		if r.StatusCode != http.StatusUnprocessableEntity || strings.Contains(r.body, "x()") {
			t.Fatalf("invalid username reflected (%d)", r.StatusCode)
		}
		// Success redirects with a flash, shown once.
		r = e.do(req{method: "POST", path: "/users", cookie: c, form: url.Values{"username": {"new.person"}, "password": {"long enough password"}, "role": {"admin"}}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("create: %d", r.StatusCode)
		}
		if r := e.do(req{method: "GET", path: "/users", cookie: c}); !strings.Contains(r.body, "User new.person created as admin.") {
			t.Fatal("flash not shown")
		}
		if r := e.do(req{method: "GET", path: "/users", cookie: c}); strings.Contains(r.body, "created as admin") {
			t.Fatal("flash shown twice")
		}
		// Refusing to disable the last admin is explained.
		adm, _ := e.users.Lookup(context.Background(), "adm")
		np, _ := e.users.Lookup(context.Background(), "new.person")
		e.do(req{method: "POST", path: "/users/" + itoa(np.ID) + "/disable", cookie: c})
		e.do(req{method: "POST", path: "/users/" + itoa(adm.ID) + "/disable", cookie: c})
		if r := e.do(req{method: "GET", path: "/users", cookie: c}); !strings.Contains(r.body, "At least one enabled admin must remain") {
			t.Fatal("last-admin refusal not explained")
		}
		if r := e.do(req{method: "POST", path: "/users/abc/enable", cookie: c}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("bad id: %d", r.StatusCode)
		}
	})
}

func TestAuditPage(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	e.createUser("aud", "aud password", auth.RoleAdmin)
	c := e.login("aud", "aud password")
	for i := range 3 {
		e.createUser("u"+itoa(i)+"x", "some password", auth.RoleUser)
	}
	r := e.do(req{method: "GET", path: "/audit?action=user.create&limit=2", cookie: c})
	if r.StatusCode != 200 || strings.Count(r.body, "<code>user.create</code>") != 2 || strings.Contains(r.body, "<code>login</code>") {
		t.Fatalf("filtered audit page: %d", r.StatusCode)
	}
	if !strings.Contains(r.body, `rel="next"`) || !strings.Contains(r.body, "action=user.create&amp;before=") {
		t.Fatal("no link to older events")
	}
	if r := e.do(req{method: "GET", path: "/audit?before=-1", cookie: c}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad cursor: %d", r.StatusCode)
	}
	// A target links to everything done to it; a kind ending in ":" to all of that kind.
	r = e.do(req{method: "GET", path: "/audit?target=user:u1x", cookie: c})
	if r.StatusCode != 200 || strings.Count(r.body, "<code>user.create</code>") != 1 || !strings.Contains(r.body, `<a href="/audit?target=user%3au1x">user:u1x</a>`) ||
		!strings.Contains(r.body, `value="user:u1x"`) {
		t.Fatalf("audit page by target: %d", r.StatusCode)
	}
	r = e.do(req{method: "GET", path: "/audit?target=user:&action=user.create", cookie: c})
	if r.StatusCode != 200 || strings.Count(r.body, "<code>user.create</code>") != 4 {
		t.Fatalf("audit page by target kind: %d, %d events", r.StatusCode, strings.Count(r.body, "<code>user.create</code>"))
	}
	if r := e.do(req{method: "GET", path: "/audit?target=" + strings.Repeat("x", 256), cookie: c}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized target: %d", r.StatusCode)
	}
}

func TestEventStreamNeedsSessionAndStreams(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	e.createUser("sse", "sse password", auth.RoleUser)
	c := e.login("sse", "sse password")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/events?topic=servers", nil)
	hr.AddCookie(&http.Cookie{Name: cookieName, Value: c})
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if line, _ := rd.ReadString('\n'); line != "retry: 5000\n" {
		t.Fatalf("stream start %q (status %d)", line, res.StatusCode)
	}
	e.broker.Publish(events.Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": 1, "status": "offline"}})
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"status":"offline"`) {
				t.Fatalf("event %q", line)
			}
			break
		}
	}
	// Close ends open streams so the HTTP server can shut down.
	e.srv.Close()
	for {
		if _, err := rd.ReadString('\n'); err != nil {
			break
		}
	}
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	r := e.do(req{method: "GET", path: "/static/app.css?v=" + e.srv.ui.Asset()})
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("app.css: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
	if r := e.do(req{method: "GET", path: "/static/"}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("directory listing: %d", r.StatusCode)
	}
	if r := e.do(req{method: "GET", path: "/static/../web.go"}); r.StatusCode == 200 && strings.Contains(r.body, "package web") {
		t.Fatal("path traversal")
	}
}

func TestEventStreamAdminTopics(t *testing.T) {
	e := newEnvWith(t, openDB(t, "sqlite"), config.Config{}, func(o *Options) { o.AdminTopics = []string{"provision."} })
	e.createUser("viewer", "viewer password", auth.RoleUser)
	e.createUser("boss", "boss password", auth.RoleAdmin)
	user, admin := e.login("viewer", "viewer password"), e.login("boss", "boss password")
	for _, tc := range []struct {
		name, cookie, query string
		want                int
	}{
		{"user, own topics", user, "?topic=servers&topic=task.7", http.StatusOK},
		{"user, admin topic", user, "?topic=servers&topic=provision.7", http.StatusForbidden},
		{"user, every topic", user, "", http.StatusForbidden},
		{"admin, admin topic", admin, "?topic=provision.7", http.StatusOK},
		{"admin, every topic", admin, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hr, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/events"+tc.query, nil)
			hr.AddCookie(&http.Cookie{Name: cookieName, Value: tc.cookie})
			res, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

// The dashboard's summary shows each count with its link and class, and
// escapes what it is given.
func TestDashboardAttention(t *testing.T) {
	db := openDB(t, "sqlite")
	e := newEnvWith(t, db, config.Config{}, func(o *Options) {
		o.Attention = func(context.Context) []Attention {
			return []Attention{{Label: "incidents firing", Count: 2, Href: "/alerts", Class: "bad"}, {Label: "<b>odd</b>", Count: 0, Href: "/domains", Class: "ok"}}
		}
	})
	e.createUser("viewer", "viewer password", auth.RoleUser)
	r := e.do(req{method: "GET", path: "/", cookie: e.login("viewer", "viewer password")})
	for _, want := range []string{`data-attention`, `<a class="attention-item attention-bad" href="/alerts"><strong>2</strong> incidents firing</a>`,
		`<strong>0</strong> &lt;b&gt;odd&lt;/b&gt;`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	// Without a provider, no summary.
	plain := newEnv(t, db, config.Config{})
	if r := plain.do(req{method: "GET", path: "/", cookie: plain.login("viewer", "viewer password")}); strings.Contains(r.body, "data-attention") {
		t.Error("a summary without a provider")
	}
}
