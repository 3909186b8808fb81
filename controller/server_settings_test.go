package controller

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
)

func TestServerSettingsThroughTheAPI(t *testing.T) {
	e := newEditEnv(t)
	type view struct {
		ID      int      `json:"id"`
		Name    string   `json:"name"`
		Address string   `json:"address"`
		Labels  []string `json:"labels"`
	}
	var created struct {
		Server view `json:"server"`
	}
	if code, b := e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "web-1", "address": " 2001:DB8::0:10 ", "labels": []string{"prod", " eu-west ", "prod", ""}}, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	s := created.Server
	if s.Address != "2001:db8::10" || strings.Join(s.Labels, ",") != "prod,eu-west" {
		t.Fatalf("created %+v; want the address in canonical form and labels trimmed without repeats", s)
	}
	path := "/api/v1/servers/" + strconv.Itoa(s.ID)

	// Every hostile value is refused with a message for its field, and
	// nothing is stored, not even a new server.
	for _, bad := range []string{"http://web1.example.com", "web1.example.com:22", "a;b", "a b", "web1.example.com\nlisten 80", "fe80::1%eth0",
		"$host", "'x'", "a\\b", "\x00", "{x}", "#x", strings.Repeat("a", 254), "-lead.example.com", "1.2.3.999"} {
		var out struct {
			Error struct {
				Fields map[string]string `json:"fields"`
			} `json:"error"`
		}
		if code, _ := e.api("PATCH", path, e.admin, map[string]any{"address": bad}, &out); code != http.StatusUnprocessableEntity || out.Error.Fields["address"] == "" {
			t.Errorf("address %q: %d %+v", bad, code, out)
		}
		if code, _ := e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "web-2", "address": bad}, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("create with address %q: %d", bad, code)
		}
	}
	for _, bad := range [][]string{{"-x"}, {"a;b"}, {"{x}"}, {"x#"}, {"$x"}, {"\"q\""}, {"a\\b"}, {"é"}, {strings.Repeat("l", 64)}, {"ok", "also\nbad"},
		strings.Fields("a b c d e f g h i j k l m n o p q")} {
		var out struct {
			Error struct {
				Fields map[string]string `json:"fields"`
			} `json:"error"`
		}
		if code, _ := e.api("PATCH", path, e.admin, map[string]any{"labels": bad}, &out); code != http.StatusUnprocessableEntity || out.Error.Fields["labels"] == "" {
			t.Errorf("labels %q: %d %+v", bad, code, out)
		}
	}
	if code, _ := e.api("GET", "/api/v1/servers/0", e.admin, nil, nil); code != http.StatusNotFound {
		t.Errorf("server 0: %d", code)
	}
	var got view
	e.api("GET", path, e.admin, nil, &got)
	if got.Address != "2001:db8::10" || strings.Join(got.Labels, ",") != "prod,eu-west" {
		t.Fatalf("refused changes were stored: %+v", got)
	}
	var list struct {
		Servers []view `json:"servers"`
	}
	e.api("GET", "/api/v1/servers", e.admin, nil, &list)
	for _, sv := range list.Servers {
		if sv.Name == "web-2" {
			t.Fatal("a create with a bad address created the server")
		}
	}

	// Fields left out are kept; a name is lower-cased; empty clears.
	if code, b := e.api("PATCH", path, e.admin, map[string]any{"address": "Web1.Example.COM."}, &got); code != http.StatusOK || got.Address != "web1.example.com" || len(got.Labels) != 2 {
		t.Fatalf("address only: %d %s %+v", code, b, got)
	}
	if code, _ := e.api("PATCH", path, e.admin, map[string]any{"labels": []string{"role=edge", "dc:fra/1"}}, &got); code != http.StatusOK || got.Address != "web1.example.com" || strings.Join(got.Labels, ",") != "role=edge,dc:fra/1" {
		t.Fatalf("labels only: %d %+v", code, got)
	}
	if code, _ := e.api("PATCH", path, e.admin, map[string]any{"address": "", "labels": []string{}}, &got); code != http.StatusOK || got.Address != "" || len(got.Labels) != 0 {
		t.Fatalf("clear: %d %+v", code, got)
	}
	if ev := e.auditEvents("server.update"); len(ev) != 3 || !strings.Contains(strings.Join(ev, "\n"), "address 2001:db8::10 → web1.example.com") {
		t.Errorf("audit: %q", ev)
	}

	// Renaming: validated, unique, audited.
	if code, _ := e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "web-9"}, nil); code != http.StatusCreated {
		t.Fatal("create web-9")
	}
	var fe struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if code, _ := e.api("PATCH", path, e.admin, map[string]any{"name": "web-9"}, &fe); code != http.StatusUnprocessableEntity || !strings.Contains(fe.Error.Fields["name"], "another server has this name") {
		t.Errorf("rename onto a taken name: %d %+v", code, fe)
	}
	if code, _ := e.api("PATCH", path, e.admin, map[string]any{"name": "Web 1;"}, &fe); code != http.StatusUnprocessableEntity || fe.Error.Fields["name"] == "" {
		t.Errorf("rename to a bad name: %d %+v", code, fe)
	}
	if code, _ := e.api("PATCH", path, e.admin, map[string]any{"name": "web-1b"}, &got); code != http.StatusOK || got.Name != "web-1b" {
		t.Errorf("rename: %d %+v", code, got)
	}
	if ev := e.auditEvents("server.update"); !strings.Contains(strings.Join(ev, "\n"), "name web-1 → web-1b") {
		t.Errorf("rename not audited: %q", ev)
	}

	// Admins only.
	if code, _ := e.api("PATCH", path, e.user, map[string]any{"address": "192.0.2.1"}, nil); code != http.StatusForbidden {
		t.Errorf("a user's token: %d", code)
	}
	if code, _ := e.api("PATCH", path, "", map[string]any{"address": "192.0.2.1"}, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
}

func TestServerSettingsPage(t *testing.T) {
	e := newEditEnv(t)
	var created struct {
		Server struct {
			ID int `json:"id"`
		} `json:"server"`
	}
	e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "web-1"}, &created)
	id := strconv.Itoa(created.Server.ID)
	admin, user := e.browser(e.adminLogin), e.browser(e.userLogin)

	code, _, body := send(t, admin, "GET", e.base+"/servers/"+id+"/settings", nil)
	if code != http.StatusOK || !strings.Contains(body, `name="address"`) || !strings.Contains(body, "has not reported where nginx listens yet") {
		t.Fatalf("settings page: %d\n%s", code, body)
	}
	code, _, body = send(t, admin, "POST", e.base+"/servers/"+id+"/settings", url.Values{"address": {"<script>x</script>"}, "labels": {"prod"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "must be an IP address") || strings.Contains(body, "<script>x") ||
		!strings.Contains(body, "&lt;script&gt;x&lt;/script&gt;") {
		t.Fatalf("hostile address: %d\n%s", code, body)
	}
	if s := e.row(created.Server.ID); s.Address != "" || len(s.Labels) != 0 {
		t.Fatalf("a refused form changed the server: %+v", s)
	}
	code, loc, _ := send(t, admin, "POST", e.base+"/servers/"+id+"/settings", url.Values{"address": {"192.0.2.10"}, "labels": {"prod, eu-west"}})
	if code != http.StatusSeeOther || loc != "/servers/"+id+"/settings" {
		t.Fatalf("save: %d %q", code, loc)
	}
	if s := e.row(created.Server.ID); s.Address != "192.0.2.10" || strings.Join(s.Labels, ",") != "prod,eu-west" {
		t.Fatalf("saved %+v", s)
	}
	if code, _, body := send(t, admin, "POST", e.base+"/servers/"+id+"/settings", url.Values{"name": {""}, "address": {"192.0.2.10"}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "lowercase letters") {
		t.Fatalf("empty name: %d", code)
	}
	if code, _, _ := send(t, admin, "POST", e.base+"/servers/"+id+"/settings", url.Values{"name": {"web-1-renamed"}, "address": {"192.0.2.10"}, "labels": {"prod, eu-west"}}); code != http.StatusSeeOther {
		t.Fatalf("rename on the page: %d", code)
	}
	if s := e.row(created.Server.ID); s.Name != "web-1-renamed" {
		t.Fatalf("renamed %+v", s)
	}
	_, _, body = send(t, admin, "GET", e.base+"/servers/"+id, nil)
	if !strings.Contains(body, `<dd data-server-address>192.0.2.10</dd>`) || !strings.Contains(body, `<span class="badge">eu-west</span>`) {
		t.Fatalf("the server page does not show the settings:\n%s", body)
	}
	_, _, body = send(t, admin, "GET", e.base+"/servers", nil)
	if !strings.Contains(body, `<span class="badge badge-accent">prod</span>`) {
		t.Fatalf("the server list does not show the labels:\n%s", body)
	}

	// Adding a server by hand takes them too, checked before anything is created.
	code, _, body = send(t, admin, "POST", e.base+"/servers", url.Values{"name": {"web-2"}, "address": {"web-2.example.com"}, "labels": {"bad label;"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "each label is 1-63") {
		t.Fatalf("add with a bad label: %d\n%s", code, body)
	}
	code, _, _ = send(t, admin, "POST", e.base+"/servers", url.Values{"name": {"web-2"}, "address": {"web-2.example.com"}, "labels": {"staging"}})
	if code != http.StatusCreated {
		t.Fatalf("add: %d", code)
	}

	// Users may not see or change them.
	if code, _, _ := send(t, user, "GET", e.base+"/servers/"+id+"/settings", nil); code != http.StatusForbidden {
		t.Errorf("user GET: %d", code)
	}
	if code, _, _ := send(t, user, "POST", e.base+"/servers/"+id+"/settings", url.Values{"address": {"192.0.2.99"}}); code != http.StatusForbidden {
		t.Errorf("user POST: %d", code)
	}
	if s := e.row(created.Server.ID); s.Address != "192.0.2.10" {
		t.Errorf("a user changed the address: %+v", s)
	}
}

// Trusted proxies are validated by allowlist, stored in canonical form,
// rendered into the node's nginx configuration, shown on the settings page
// and cleared by an empty list.
func TestServerTrustedProxies(t *testing.T) {
	e := newEditEnv(t)
	var created struct {
		Server struct {
			ID int `json:"id"`
		} `json:"server"`
	}
	e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "edge-1"}, &created)
	id := created.Server.ID
	path := "/api/v1/servers/" + strconv.Itoa(id)
	type view struct {
		RealIPFrom   []string `json:"real_ip_from"`
		RealIPHeader string   `json:"real_ip_header"`
	}
	var fe struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	for _, bad := range []map[string]any{
		{"real_ip_from": []string{"10.0.0.0/8; allow all"}},
		{"real_ip_from": []string{"proxy.example.com"}},
		{"real_ip_from": []string{"10.0.0.0/33"}},
		{"real_ip_from": []string{"10.0.0.1"}, "real_ip_header": "X-Evil"},
		{"real_ip_from": []string{"10.0.0.1"}, "real_ip_header": "X-Forwarded-For\nadd_header x y"},
		{"real_ip_header": "X-Real-IP"},
	} {
		fe.Error.Fields = nil
		if code, _ := e.api("PATCH", path, e.admin, bad, &fe); code != http.StatusUnprocessableEntity || (fe.Error.Fields["real_ip_from"] == "" && fe.Error.Fields["real_ip_header"] == "") {
			t.Errorf("%v: %d %+v", bad, code, fe)
		}
	}
	var got view
	if code, b := e.api("PATCH", path, e.admin, map[string]any{"real_ip_from": []string{" 192.0.2.1 ", "10.1.2.3/8", "192.0.2.1"}, "real_ip_header": "cf-connecting-ip"}, &got); code != http.StatusOK ||
		strings.Join(got.RealIPFrom, ",") != "10.0.0.0/8,192.0.2.1" || got.RealIPHeader != "CF-Connecting-IP" {
		t.Fatalf("set trusted proxies: %d %s", code, b)
	}
	cfg, err := e.c.deployer.NodeConfig(context.Background(), id)
	if err != nil || cfg.RealIP == nil || strings.Join(cfg.RealIP.From, ",") != "10.0.0.0/8,192.0.2.1" || cfg.RealIP.Header != "CF-Connecting-IP" {
		t.Fatalf("rendered for the node: %+v %v", cfg.RealIP, err)
	}
	if ev := e.auditEvents("server.update"); !strings.Contains(strings.Join(ev, "\n"), "trusted proxies (none) → 10.0.0.0/8,192.0.2.1 via CF-Connecting-IP") {
		t.Errorf("audit: %q", ev)
	}
	admin := e.browser(e.adminLogin)
	_, _, body := send(t, admin, "GET", e.base+"/servers/"+strconv.Itoa(id)+"/settings", nil)
	if !strings.Contains(body, ">10.0.0.0/8\n192.0.2.1</textarea>") || !strings.Contains(body, "<option selected>CF-Connecting-IP</option>") {
		t.Fatalf("settings page does not show the trusted proxies:\n%s", body)
	}
	code, _, _ := send(t, admin, "POST", e.base+"/servers/"+strconv.Itoa(id)+"/settings", url.Values{"name": {"edge-1"}, "real_ip_from": {""}, "real_ip_header": {"X-Forwarded-For"}})
	if code != http.StatusSeeOther {
		t.Fatalf("clear through the form: %d", code)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.RealIP != nil {
		t.Errorf("still rendered after clearing: %+v", cfg.RealIP)
	}
	a, err := OpenAdmin(context.Background(), e.c.cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// The command line sets them too, through the same checks; the running
	// controller's nginx.sync deploys them (TestNginxSyncDeploysCommandLineChanges).
	if _, err := a.SetServer(context.Background(), audit.System("cli"), "edge-1", ServerSettings{RealIPFrom: &[]string{"10.0.0.1;"}, RealIPHeader: new("X-Forwarded-For")}); err == nil {
		t.Error("the command line took a hostile proxy address")
	}
	if _, err := a.SetServer(context.Background(), audit.System("cli"), "edge-1", ServerSettings{RealIPFrom: &[]string{"10.0.0.1"}, RealIPHeader: new("X-Real-IP")}); err != nil {
		t.Fatalf("the command line: %v", err)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.RealIP == nil || !slices.Equal(cfg.RealIP.From, []string{"10.0.0.1"}) || cfg.RealIP.Header != "X-Real-IP" {
		t.Errorf("set from the command line: %+v", cfg.RealIP)
	}
}

// The answer to unknown names is chosen from an allowlist, rendered into the
// node's configuration, audited, shown and changed on the settings page, and
// set from the command line through the same checks.
func TestServerUnknownNames(t *testing.T) {
	e := newEditEnv(t)
	var created struct {
		Server struct {
			ID int `json:"id"`
		} `json:"server"`
	}
	e.api("POST", "/api/v1/servers", e.admin, map[string]any{"name": "edge-1"}, &created)
	id := created.Server.ID
	path := "/api/v1/servers/" + strconv.Itoa(id)
	for _, bad := range []string{"redirect", "close;", "CLOSE\n", "444"} {
		if code, _ := e.api("PATCH", path, e.admin, map[string]any{"unknown_names": bad}, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("unknown_names %q: %d", bad, code)
		}
	}
	var got struct {
		UnknownNames string `json:"unknown_names"`
	}
	if code, b := e.api("PATCH", path, e.admin, map[string]any{"unknown_names": "close"}, &got); code != http.StatusOK || got.UnknownNames != "close" {
		t.Fatalf("set: %d %s", code, b)
	}
	if cfg, err := e.c.deployer.NodeConfig(context.Background(), id); err != nil || cfg.UnknownNames != "close" {
		t.Fatalf("rendered for the node: %q %v", cfg.UnknownNames, err)
	}
	if ev := e.auditEvents("server.update"); !strings.Contains(strings.Join(ev, "\n"), "unknown names default → close") {
		t.Errorf("audit: %q", ev)
	}
	admin := e.browser(e.adminLogin)
	settings := e.base + "/servers/" + strconv.Itoa(id) + "/settings"
	if _, _, body := send(t, admin, "GET", settings, nil); !strings.Contains(body, `<option value="close" selected>`) {
		t.Fatalf("settings page does not show the choice")
	}
	if code, _, _ := send(t, admin, "POST", settings, url.Values{"name": {"edge-1"}, "unknown_names": {"not_found"}}); code != http.StatusSeeOther {
		t.Fatalf("change through the form: %d", code)
	}
	if code, _, body := send(t, admin, "POST", settings, url.Values{"name": {"edge-1"}, "unknown_names": {"teapot"}}); code != http.StatusUnprocessableEntity || !strings.Contains(body, "must be &#34;close&#34;") {
		t.Errorf("a choice not offered: %d", code)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.UnknownNames != "not_found" {
		t.Errorf("after the form: %q", cfg.UnknownNames)
	}

	// The cache size: checked, rendered, shown.
	for _, bad := range []string{"1t", "5m", "1g;", "ten"} {
		if code, _ := e.api("PATCH", path, e.admin, map[string]any{"cache_max_size": bad}, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("cache_max_size %q: %d", bad, code)
		}
	}
	if code, b := e.api("PATCH", path, e.admin, map[string]any{"cache_max_size": " 20G "}, nil); code != http.StatusOK {
		t.Fatalf("set the cache size: %d %s", code, b)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.CacheMaxSize != "20g" {
		t.Errorf("cache size rendered for the node: %q", cfg.CacheMaxSize)
	}
	if _, _, body := send(t, admin, "GET", settings, nil); !strings.Contains(body, `name="cache_max_size" maxlength="16" value="20g"`) {
		t.Errorf("settings page does not show the cache size")
	}
	if code, _, _ := send(t, admin, "POST", settings, url.Values{"name": {"edge-1"}, "cache_max_size": {""}}); code != http.StatusSeeOther {
		t.Fatalf("clear the cache size: %d", code)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.CacheMaxSize != "" {
		t.Errorf("cache size after clearing: %q, want empty (the renderer's default)", cfg.CacheMaxSize)
	}
	a, err := OpenAdmin(context.Background(), e.c.cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.SetServer(context.Background(), audit.System("cli"), "edge-1", ServerSettings{UnknownNames: new("444")}); err == nil {
		t.Error("the command line took an answer that is not offered")
	}
	if _, err := a.SetServer(context.Background(), audit.System("cli"), "edge-1", ServerSettings{UnknownNames: new("close"), CacheMaxSize: new("5g")}); err != nil {
		t.Fatalf("the command line: %v", err)
	}
	if cfg, _ := e.c.deployer.NodeConfig(context.Background(), id); cfg.UnknownNames != "close" || cfg.CacheMaxSize != "5g" {
		t.Errorf("set from the command line: %q %q", cfg.UnknownNames, cfg.CacheMaxSize)
	}
}

// Settings changed outside the running controller (here the command line)
// reach the node's configuration with the next nginx.sync: a new revision is
// rendered from the database, and nothing is rendered when nothing changed.
func TestNginxSyncDeploysCommandLineChanges(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	edge := db.Server.Create().SetName("edge-1").SaveX(ctx)
	db.Domain.Create().SetName("shop.example").AddServers(edge).ExecX(ctx)
	revisions := func() []*ent.ConfigRevision {
		return db.ConfigRevision.Query().Where(configrevision.ServerID(edge.ID)).Order(ent.Asc(configrevision.FieldNumber)).AllX(ctx)
	}
	waitRevisions := func(n int) []*ent.ConfigRevision {
		t.Helper()
		if err := e.c.sched.Trigger("nginx.sync"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if revs := revisions(); len(revs) >= n {
				return revs
			}
			if time.Now().After(deadline) {
				t.Fatalf("no revision %d after nginx.sync: %d revisions", n, len(revisions()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := waitRevisions(1)
	if len(first) != 1 {
		t.Fatalf("%d revisions after the first sync", len(first))
	}

	a, err := OpenAdmin(ctx, e.c.cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.SetServer(ctx, audit.System("cli"), "edge-1", ServerSettings{UnknownNames: new("not_found")}); err != nil {
		t.Fatal(err)
	}
	revs := waitRevisions(2)
	text := func(rev *ent.ConfigRevision) string {
		t.Helper()
		files, err := deploy.Files(rev)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range files {
			b.Write(f.Content)
		}
		return b.String()
	}
	if !strings.Contains(text(revs[len(revs)-1]), "default_server") || strings.Contains(text(first[0]), "default_server") {
		t.Errorf("the new revision has no default server answering unknown names (%d revisions)", len(revs))
	}
	if s := db.Server.GetX(ctx, edge.ID); s.DesiredRevision != revs[len(revs)-1].Number {
		t.Errorf("desired revision %d, want %d", s.DesiredRevision, revs[len(revs)-1].Number)
	}

	// Nothing changed: rendering again gives the same files and stores nothing.
	e.c.deployer.Changed(edge.ID)
	e.c.deployer.Flush(ctx)
	if n := len(revisions()); n != len(revs) {
		t.Errorf("%d revisions after a sync with no change, want %d", n, len(revs))
	}
}
