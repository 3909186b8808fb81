package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type revisionView struct {
	Number  int64  `json:"number"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
	Output  string `json:"output"`
	Applied bool   `json:"applied"`
}

type deployView struct {
	Applied  bool          `json:"applied"`
	Revision *revisionView `json:"revision"`
}

type driftView struct {
	Drift struct {
		Added    []string `json:"added"`
		Removed  []string `json:"removed"`
		Modified []string `json:"modified"`
	} `json:"drift"`
	Drifted bool `json:"drifted"`
}

// proxyAPI calls the API and fails unless it answers want.
func (c *controllerProc) proxyAPI(want int, method, path string, body, out any) {
	c.t.Helper()
	var raw map[string]any
	if out == nil {
		out = &raw
	}
	if code := c.api(method, path, body, out); code != want {
		c.t.Fatalf("%s %s: status %d, want %d (%v)", method, path, code, want, out)
	}
}

func (c *controllerProc) proxyDeploy(id int) deployView {
	c.t.Helper()
	var d deployView
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/servers/%d/deploy", id), nil, &d)
	if d.Revision == nil {
		c.t.Fatalf("deploy of server %d returned no revision", id)
	}
	return d
}

// TestProxyThroughRealNginx applies domains, upstreams, routes and a stream through a
// real agent to a real nginx and checks what clients see: round robin over two
// backends, a redirect, a WebSocket echo, basic auth, a deny list and a TCP stream. A
// release nginx refuses at `nginx -t`, and one whose reload fails, leave the previous
// revision serving; a hand edit is reported as drift and a redeploy restores it.
func TestProxyThroughRealNginx(t *testing.T) {
	t.Parallel()
	// Backends on loopback.
	aHost, aPort := startNamedBackend(t, "backend-a")
	bHost, bPort := startNamedBackend(t, "backend-b")
	wsHost, wsPort := startWebSocketEcho(t)
	echoHost, echoPort := startTCPEcho(t)

	// The node: a private nginx master and an agent driving it.
	ngx := startNodeNginx(t)
	httpPort, httpsPort, streamPort := proxyFreePort(t), proxyFreePort(t), proxyFreePort(t)
	node := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	c := startController(t, "--metrics-interval", "1s")
	token, pin := c.addServer("edge")
	agent := startAgent(t, c, token, pin, "http://127.0.0.1:1", ngx.agentEnv(httpPort, httpsPort)...)
	id := c.serverID("edge")
	eventually(t, 30*time.Second, "the agent to connect", func() bool { return c.server(id).Connected })

	// A server that serves nothing has no revision and got no command.
	var revs struct {
		Revisions []revisionView `json:"revisions"`
		Drifted   bool           `json:"drifted"`
	}
	c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions", id), nil, &revs)
	if len(revs.Revisions) != 0 {
		t.Fatalf("a server serving nothing has revisions: %+v", revs.Revisions)
	}
	if _, err := os.Stat(filepath.Join(ngx.dir, "current")); !os.IsNotExist(err) {
		t.Fatalf("the agent has a current release before any domain: %v", err)
	}

	target := func(h string, p int) map[string]any { return map[string]any{"host": h, "port": p} }
	// A backup server nothing listens on: nginx never needs it while both
	// backends answer, and the node's probe reports it refused.
	deadPort := proxyFreePort(t)
	var appUp struct {
		Upstream struct {
			ID int `json:"id"`
		} `json:"upstream"`
	}
	c.proxyAPI(201, "POST", "/api/v1/upstreams", map[string]any{"name": "app", "targets": []any{target(aHost, aPort), target(bHost, bPort),
		map[string]any{"host": "127.0.0.1", "port": deadPort, "backup": true}}}, &appUp)
	c.proxyAPI(201, "POST", "/api/v1/upstreams", map[string]any{"name": "ws", "targets": []any{target(wsHost, wsPort)}}, nil)
	c.proxyAPI(201, "POST", "/api/v1/upstreams", map[string]any{"name": "echo", "targets": []any{target(echoHost, echoPort)}}, nil)
	appDomain := map[string]any{"name": "app.test", "servers": []int{id}, "routes": []any{
		map[string]any{"path": "/", "kind": "proxy", "upstream": "app"},
		map[string]any{"path": "/ws", "kind": "proxy", "upstream": "ws", "websocket": true},
		map[string]any{"path": "/cached/", "kind": "proxy", "upstream": "app", "cache_ttl": 300},
		map[string]any{"path": "/old", "match": "exact", "kind": "redirect", "redirect_code": 301, "redirect_target": "https://new.example.com/landing"},
	}}
	var created struct {
		Domain struct {
			ID int `json:"id"`
		} `json:"domain"`
	}
	c.proxyAPI(201, "POST", "/api/v1/domains", appDomain, &created)
	appID := created.Domain.ID
	c.proxyAPI(201, "POST", "/api/v1/domains", map[string]any{"name": "auth.test", "servers": []int{id},
		"routes": []any{map[string]any{"path": "/", "kind": "proxy", "upstream": "app"}}}, &created)
	c.proxyAPI(201, "POST", fmt.Sprintf("/api/v1/domains/%d/users", created.Domain.ID), map[string]any{"username": "carol", "password": "correct horse battery"}, nil)
	c.proxyAPI(201, "POST", "/api/v1/domains", map[string]any{"name": "deny.test", "servers": []int{id}, "deny": []string{"127.0.0.1"},
		"routes": []any{map[string]any{"path": "/", "kind": "proxy", "upstream": "app"}}}, &created)
	denyID := created.Domain.ID
	c.proxyAPI(201, "POST", "/api/v1/streams", map[string]any{"name": "echo", "listen_port": streamPort, "protocol": "tcp", "upstream": "echo", "servers": []int{id}}, nil)

	d := c.proxyDeploy(id)
	if !d.Applied || d.Revision.Outcome != "applied" {
		t.Fatalf("deploy: %+v %+v", d, d.Revision)
	}
	good := d.Revision.Number

	// Round robin over both targets. Right after a reload an old worker may still
	// answer a request or two, so each check polls until it holds.
	roundRobin := func(what string) {
		t.Helper()
		eventually(t, 15*time.Second, what, func() bool {
			seen := map[string]int{}
			for range 6 {
				h := nodeGet(node, "app.test", "/x", "", "")
				if h.code != 200 {
					return false
				}
				seen[h.body]++
			}
			return seen["backend-a /x"] >= 2 && seen["backend-b /x"] >= 2
		})
	}
	roundRobin("app.test to reach both backends round robin")
	// The cached route: nginx creates the cache beside the releases and its
	// workers fill it, so round robin stops at the first answer kept.
	eventually(t, 15*time.Second, "the cached route to answer from the cache", func() bool {
		return nodeGet(node, "app.test", "/cached/page", "", "").cache == "HIT"
	})
	first := nodeGet(node, "app.test", "/cached/page", "", "")
	for range 4 {
		if h := nodeGet(node, "app.test", "/cached/page", "", ""); h.code != 200 || h.cache != "HIT" || h.body != first.body {
			t.Errorf("cached route: %v (cache %q), first answer %q", h, h.cache, first.body)
		}
	}
	if h := nodeGet(node, "app.test", "/x", "", ""); h.cache != "" {
		t.Errorf("a route that does not cache says X-Cache-Status %q", h.cache)
	}
	if fi, err := os.Stat(filepath.Join(ngx.dir, "cache")); err != nil || !fi.IsDir() {
		t.Errorf("the cache directory beside the releases: %v", err)
	}
	// A purge: the next revision keys the domain's answers anew, so the
	// next request misses what was kept.
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/cache/purge", appID), nil, nil)
	if d = c.proxyDeploy(id); !d.Applied || d.Revision.Outcome != "applied" {
		t.Fatalf("deploy after the purge: %+v %+v", d, d.Revision)
	}
	good = d.Revision.Number
	eventually(t, 15*time.Second, "the purged route to miss the cache", func() bool {
		return nodeGet(node, "app.test", "/cached/page", "", "").cache == "MISS"
	})
	// Upstream reachability: the node dials the servers of the release it
	// runs and the controller shows what it found.
	type targetHealth struct {
		Address string `json:"address"`
		Servers []struct {
			Server string `json:"server"`
			OK     bool   `json:"ok"`
			Error  string `json:"error"`
		} `json:"servers"`
	}
	eventually(t, 30*time.Second, "the node's probe of the upstream servers", func() bool {
		var h struct {
			Targets []targetHealth `json:"targets"`
		}
		c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/upstreams/%d/health", appUp.Upstream.ID), nil, &h)
		want := map[string]string{net.JoinHostPort(aHost, strconv.Itoa(aPort)): "", net.JoinHostPort(bHost, strconv.Itoa(bPort)): "",
			net.JoinHostPort("127.0.0.1", strconv.Itoa(deadPort)): "connection refused"}
		for _, tg := range h.Targets {
			if len(tg.Servers) != 1 || tg.Servers[0].Server != "edge" || tg.Servers[0].OK != (want[tg.Address] == "") || tg.Servers[0].Error != want[tg.Address] {
				c.api("POST", "/api/v1/jobs/upstreams.probe/run", nil, nil) // 202, or 409 while a run is on
				return false
			}
			delete(want, tg.Address)
		}
		return len(want) == 0
	})
	// An upstream rule turns what the probe found into an incident about the
	// refused server alone, naming the node and nginx-free error words.
	var upRule struct{ ID int }
	c.proxyAPI(201, "POST", "/api/v1/alerts/rules", map[string]any{"name": "Backends", "kind": "upstream_down", "enabled": true,
		"severity": "critical", "window": "0s"}, &upRule)
	deadAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(deadPort))
	eventually(t, 30*time.Second, "an incident about the refused upstream server", func() bool {
		var out struct {
			Incidents []struct{ Upstream, Address, State, Summary string }
		}
		c.proxyAPI(200, "GET", "/api/v1/alerts/incidents", nil, &out)
		found := false
		for _, inc := range out.Incidents {
			if inc.Upstream == "" {
				continue
			}
			if inc.Upstream != "app" || inc.Address != deadAddr {
				t.Fatalf("an incident about a server that answers: %+v", inc)
			}
			found = inc.State == "firing" && strings.Contains(inc.Summary, "edge since") && strings.Contains(inc.Summary, "connection refused")
		}
		if !found {
			c.api("POST", "/api/v1/jobs/upstreams.probe/run", nil, nil)
			c.api("POST", "/api/v1/jobs/alerts.evaluate/run", nil, nil)
		}
		return found
	})
	// Removing the rule closes its incident.
	c.proxyAPI(204, "DELETE", fmt.Sprintf("/api/v1/alerts/rules/%d", upRule.ID), nil, nil)
	eventually(t, 15*time.Second, "the upstream incident to close with its rule", func() bool {
		for _, inc := range c.incidents() {
			if inc.State != "resolved" {
				c.api("POST", "/api/v1/jobs/alerts.evaluate/run", nil, nil)
				return false
			}
		}
		return true
	})

	// The agent reported nginx's version from nginx -V; the server's API and
	// its revisions page show it.
	var srvView struct {
		Nginx struct{ Version string }
	}
	c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d", id), nil, &srvView)
	if v := srvView.Nginx.Version; !strings.HasPrefix(v, "nginx/1.") {
		t.Errorf("the server's nginx version: %q", v)
	} else if page := c.page(fmt.Sprintf("/servers/%d/revisions", id)); !strings.Contains(page, "<span data-nginx-version>"+v+"</span>") {
		t.Errorf("the revisions page does not show nginx's version %q", v)
	}

	// The agent found stub_status in nginx -V, so the release carries the
	// status block, and nginx's counters reach the server's metrics.
	if _, err := os.Stat(filepath.Join(ngx.dir, "current", "http", "zz-gatehouse-status.conf")); err != nil {
		t.Errorf("the release has no status block: %v", err)
	}
	eventually(t, 20*time.Second, "nginx's counters in the server's metrics", func() bool {
		var series struct {
			Points []struct {
				RPS   float64 `json:"rps"`
				Conns float64 `json:"conns"`
			} `json:"points"`
		}
		c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d/metrics?range=1h", id), nil, &series)
		for _, p := range series.Points {
			if p.RPS > 0 && p.Conns >= 1 {
				return true
			}
		}
		return false
	})
	if h := nodeGet(node, "app.test", "/old", "", ""); h.code != 301 || h.location != "https://new.example.com/landing" {
		t.Errorf("redirect route: %v", h)
	}
	if got, err := wsEcho(node, "app.test", "/ws", "hello over websocket"); err != nil || got != "hello over websocket" {
		t.Errorf("websocket echo: %q %v", got, err)
	}
	if h := nodeGet(node, "auth.test", "/", "", ""); h.code != 401 {
		t.Errorf("basic auth without credentials: %v", h)
	}
	if h := nodeGet(node, "auth.test", "/", "carol", "wrong"); h.code != 401 {
		t.Errorf("basic auth with a wrong password: %v", h)
	}
	if h := nodeGet(node, "auth.test", "/in", "carol", "correct horse battery"); h.code != 200 || !strings.HasSuffix(h.body, " /in") {
		t.Errorf("basic auth with credentials: %v", h)
	}
	if h := nodeGet(node, "deny.test", "/", "", ""); h.code != 403 {
		t.Errorf("deny list holding 127.0.0.1: %v", h)
	}
	streamAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(streamPort))
	if got, err := tcpEcho(streamAddr, "ping through the stream\n"); err != nil || got != "ping through the stream\n" {
		t.Errorf("tcp stream: %q %v", got, err)
	}

	// Health checks go through the node's nginx with the domain's name: the
	// app answers, the deny list answers 403, which counts as down.
	type healthView struct {
		Uptime map[string]struct {
			Up, Down int
			Label    string
		} `json:"uptime"`
		Hours []struct {
			Class string `json:"class"`
		} `json:"hours"`
		Days []struct {
			Class string `json:"class"`
		} `json:"days"`
		Check   *struct{ Path string } `json:"check"`
		Servers []struct {
			Server  string `json:"server"`
			OK      bool   `json:"ok"`
			Status  int    `json:"status"`
			Message string `json:"message"`
			URL     string `json:"url"`
		} `json:"servers"`
		Outages []struct {
			Server  string     `json:"server"`
			EndedAt *time.Time `json:"ended_at"`
			Checks  int        `json:"checks"`
			Message string     `json:"message"`
		} `json:"outages"`
	}
	var hv healthView
	c.proxyAPI(422, "PUT", fmt.Sprintf("/api/v1/domains/%d/health", appID), map[string]any{"path": "no-slash"}, nil)
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d/health", appID), map[string]any{"path": "/health-probe"}, nil)
	// The agent reports nginx on loopback. The controller does not take a
	// node's word for that: nothing is dialled until an admin enters it as
	// the server's address.
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/health/check", appID), nil, &hv)
	if len(hv.Servers) != 1 || hv.Servers[0].OK || hv.Servers[0].URL != "" ||
		!strings.Contains(hv.Servers[0].Message, "reports nginx only on 127.0.0.1, which the controller does not dial") {
		t.Fatalf("health of app.test before the address was entered: %+v", hv)
	}
	if page := c.page(fmt.Sprintf("/servers/%d/settings", id)); !strings.Contains(page, "which the controller does not dial for a node") {
		t.Fatalf("the settings page does not say why the node is not probed:\n%s", page)
	}
	if out := c.cli("server", "set", "edge", "--address", "127.0.0.1", "--labels", "edge,eu"); !strings.Contains(out, "address 127.0.0.1, labels edge,eu") {
		t.Fatalf("server set: %s", out)
	}
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/health/check", appID), nil, &hv)
	if hv.Check == nil || hv.Check.Path != "/health-probe" || len(hv.Servers) != 1 || !hv.Servers[0].OK || hv.Servers[0].Status != 200 ||
		hv.Servers[0].Server != "edge" || !strings.HasPrefix(hv.Servers[0].URL, "http://app.test/health-probe via 127.0.0.1:") {
		t.Fatalf("health of app.test: %+v", hv)
	}
	// Uptime counts only the probes that were dialled: the one up just now.
	if u := hv.Uptime["24h"]; u.Up != 1 || u.Down != 0 || u.Label != "100 %" || len(hv.Hours) != 48 || hv.Hours[47].Class != "up" ||
		len(hv.Days) != 30 || hv.Days[29].Class != "up" {
		t.Fatalf("uptime of app.test: %+v, last hour %+v", hv.Uptime, hv.Hours[len(hv.Hours)-1])
	}
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d/health", denyID), map[string]any{"path": "/"}, nil)
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/domains/%d/health/check", denyID), nil, &hv)
	if len(hv.Servers) != 1 || hv.Servers[0].OK || hv.Servers[0].Status != 403 || hv.Servers[0].Message != "answered 403 Forbidden" {
		t.Fatalf("health of deny.test: %+v", hv)
	}
	// The failure opened an outage through the node; the scheduled probe
	// may have counted more than one failed probe into it.
	if len(hv.Outages) != 1 || hv.Outages[0].Server != "edge" || hv.Outages[0].EndedAt != nil || hv.Outages[0].Checks < 1 ||
		hv.Outages[0].Message != "answered 403 Forbidden" {
		t.Fatalf("outages of deny.test: %+v", hv.Outages)
	}
	if page := c.page(fmt.Sprintf("/domains/%d/health", denyID)); !strings.Contains(page, "answered 403 Forbidden") || !strings.Contains(page, "status-offline") ||
		!strings.Contains(page, "data-outage-open") ||
		!strings.Contains(page, `<dd data-uptime="24h">0.00 %</dd>`) || !strings.Contains(page, `class="uptime-hour uptime-down"`) {
		t.Fatalf("the health page does not show the node down:\n%s", page)
	}
	if page := c.page("/domains"); !strings.Contains(page, fmt.Sprintf(`<a class="status status-bad" href="/domains/%d/health">down</a>`, denyID)) ||
		!strings.Contains(page, fmt.Sprintf(`<a class="status status-ok" href="/domains/%d/health">up</a>`, appID)) {
		t.Fatalf("the domain list does not show health:\n%s", page)
	}
	if page := c.page("/"); !strings.Contains(page, `href="/domains"><strong>1</strong> domain down</a>`) ||
		!strings.Contains(page, `href="/alerts"><strong>0</strong> incidents firing</a>`) {
		t.Fatalf("the dashboard does not sum up what needs a look:\n%s", page)
	}

	// A snippet the allowlist accepts but nginx refuses: TEST_FAILED with nginx's own
	// message, and the previous revision still current and serving.
	broken := map[string]any{}
	for k, v := range appDomain {
		broken[k] = v
	}
	broken["snippet"] = "gzip maybe;"
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d", appID), broken, nil)
	d = c.proxyDeploy(id)
	if d.Applied || d.Revision.Outcome != "test_failed" || !strings.Contains(d.Revision.Output, `invalid value "maybe"`) {
		t.Fatalf("refused snippet: applied=%v %+v", d.Applied, d.Revision)
	}
	if srv := c.server(id); !srv.Connected {
		t.Fatal("agent disconnected after a refused release")
	}
	proxyAssertCurrent(t, ngx.dir, good)
	roundRobin("the previous revision to keep serving after nginx -t refused the next")
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d", appID), appDomain, nil)

	// A reload that fails (the stream's port is taken by another socket; `nginx -t`
	// cannot see that) is rolled back, and the node keeps serving.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	c.proxyAPI(201, "POST", "/api/v1/streams", map[string]any{"name": "clash", "listen_port": takenPort, "protocol": "tcp", "upstream": "echo", "servers": []int{id}}, &created)
	d = c.proxyDeploy(id)
	if d.Applied || d.Revision.Outcome != "reload_failed" || !strings.Contains(d.Revision.Output, "Address already in use") {
		t.Fatalf("reload onto a taken port: applied=%v %+v", d.Applied, d.Revision)
	}
	proxyAssertCurrent(t, ngx.dir, good)
	roundRobin("the previous revision to keep serving after a failed reload")

	// nginx's logs, read through the agent: the access log has the requests
	// made above, the error log the refused reload, and the page shows them.
	type logView struct {
		Path  string   `json:"path"`
		Lines []string `json:"lines"`
	}
	probe, err := net.Dial("tcp", node)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(probe, "GET /logs-probe HTTP/1.1\r\nHost: app.test\r\nUser-Agent: <b>x</b>\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, probe)
	probe.Close()
	var access, errs logView
	eventually(t, 10*time.Second, "the probe in the access log", func() bool {
		c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d/logs/access?q=logs-probe", id), nil, &access)
		return len(access.Lines) == 1
	})
	if access.Path != ngx.accessLog || !strings.Contains(access.Lines[0], "GET /logs-probe HTTP/1.1") || !strings.Contains(access.Lines[0], "<b>x</b>") {
		t.Fatalf("access log: %+v", access)
	}
	c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d/logs/error?q=address+already+in+use", id), nil, &errs)
	if errs.Path != ngx.errorLog || len(errs.Lines) == 0 || !strings.Contains(errs.Lines[0], "[emerg]") {
		t.Fatalf("error log: %+v", errs)
	}
	c.proxyAPI(404, "GET", fmt.Sprintf("/api/v1/servers/%d/logs/passwd", id), nil, nil)
	if page := c.page(fmt.Sprintf("/servers/%d/logs?log=access&q=logs-probe", id)); !strings.Contains(page, "&lt;b&gt;x&lt;/b&gt;") ||
		strings.Contains(page, "<b>x</b>") || !strings.Contains(page, ngx.accessLog) {
		t.Fatalf("the logs page does not show the access log escaped:\n%s", page)
	}
	// The server list shows the failure at a glance, linking to the revisions.
	if page := c.proxyPage("/servers"); !strings.Contains(page, fmt.Sprintf(`r%d failed: reload failed`, d.Revision.Number)) ||
		!strings.Contains(page, fmt.Sprintf(`href="/servers/%d/revisions"`, id)) {
		t.Errorf("the server list does not show the failed apply:\n%s", page)
	}
	if got, err := tcpEcho(streamAddr, "still streaming\n"); err != nil || got != "still streaming\n" {
		t.Errorf("tcp stream after the rollback: %q %v", got, err)
	}
	var streams struct {
		Streams []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"streams"`
	}
	c.proxyAPI(200, "GET", "/api/v1/streams", nil, &streams)
	for _, s := range streams.Streams {
		if s.Name == "clash" {
			c.proxyAPI(204, "DELETE", fmt.Sprintf("/api/v1/streams/%d", s.ID), nil, nil)
		}
	}
	d = c.proxyDeploy(id)
	if !d.Applied {
		t.Fatalf("deploy after removing the clash: %+v", d.Revision)
	}
	good = d.Revision.Number
	proxyAssertCurrent(t, ngx.dir, good)

	// Drift: a hand edit is reported, shown on the revisions page, and undone by a
	// redeploy of the same revision.
	edited := filepath.Join(ngx.dir, "current", "http", "domain-app.test.conf")
	orig, err := os.ReadFile(edited)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edited, append(append([]byte{}, orig...), "# edited by hand\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	var drift driftView
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/servers/%d/drift", id), nil, &drift)
	if !drift.Drifted || len(drift.Drift.Modified) != 1 || drift.Drift.Modified[0] != "http/domain-app.test.conf" {
		t.Fatalf("drift after a hand edit: %+v", drift)
	}
	page := c.proxyPage(fmt.Sprintf("/servers/%d/revisions", id))
	if !strings.Contains(page, "changed outside Gatehouse") || !strings.Contains(page, "http/domain-app.test.conf") {
		t.Errorf("revisions page does not show the drift:\n%s", page)
	}
	// The page names the nginx the agent reported, which revisions are rendered for.
	if !strings.Contains(page, ngx.dir) || !strings.Contains(page, fmt.Sprintf("port %d / %d", httpPort, httpsPort)) {
		t.Errorf("revisions page does not show the node's nginx (%s, ports %d/%d):\n%s", ngx.dir, httpPort, httpsPort, page)
	}
	d = c.proxyDeploy(id)
	if !d.Applied || d.Revision.Number != good {
		t.Fatalf("redeploy: %+v", d.Revision)
	}
	if now, _ := os.ReadFile(edited); string(now) != string(orig) {
		t.Errorf("redeploy left the hand edit in place:\n%s", now)
	}
	c.proxyAPI(200, "POST", fmt.Sprintf("/api/v1/servers/%d/drift", id), nil, &drift)
	if drift.Drifted {
		t.Errorf("drift after the redeploy: %+v", drift)
	}
	roundRobin("app.test to serve after the redeploy")

	// Restarted, the agent reconnects with its release intact, which stays the applied one.
	agent.stop()
	eventually(t, 15*time.Second, "the agent to go offline", func() bool { return !c.server(id).Connected })
	agent = proxyRestart(t, agent)
	eventually(t, 30*time.Second, "the agent to reconnect", func() bool { return c.server(id).Connected })
	c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions", id), nil, &revs)
	if len(revs.Revisions) == 0 || revs.Revisions[0].Number != good || !revs.Revisions[0].Applied {
		t.Errorf("after reconnect: %+v", revs.Revisions)
	}

	// Last, as it renders a new revision: in maintenance mode a node answering 503 is expected, and said so.
	c.proxyAPI(200, "PUT", fmt.Sprintf("/api/v1/domains/%d", denyID), map[string]any{"name": "deny.test", "servers": []int{id}, "deny": []string{"127.0.0.1"},
		"maintenance": true, "routes": []any{map[string]any{"path": "/", "kind": "proxy", "upstream": "app"}}}, nil)
	if page := c.page("/domains"); !strings.Contains(page, fmt.Sprintf(`<a class="status status-warn" href="/domains/%d/health">maintenance</a>`, denyID)) {
		t.Fatalf("the domain list does not show maintenance:\n%s", page)
	}
	if page := c.page(fmt.Sprintf("/domains/%d/health", denyID)); !strings.Contains(page, "data-health-maintenance") {
		t.Fatal("the health page does not explain maintenance mode")
	}
}

// proxyRestart starts a stopped process again with the same program, arguments and
// environment (an agent keeps its identity in its state dir).
func proxyRestart(t *testing.T, p *proc) *proc {
	t.Helper()
	return startProc(t, p.name, p.cmd.Env[len(os.Environ()):], p.cmd.Path, p.cmd.Args[1:]...)
}

// proxyAssertCurrent checks which release the node's current link names.
func proxyAssertCurrent(t *testing.T, dir string, rev int64) {
	t.Helper()
	got, err := os.Readlink(filepath.Join(dir, "current"))
	if want := "releases/" + strconv.FormatInt(rev, 10); err != nil || got != want {
		t.Fatalf("current -> %q (%v), want %q", got, err, want)
	}
}

// proxyPage signs in as the admin and returns a page's HTML.
func (c *controllerProc) proxyPage(path string) string {
	c.t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.PostForm("http://"+c.httpAddr+"/login", url.Values{"username": {"admin"}, "password": {c.password}})
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = browser.Get("http://" + c.httpAddr + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}
