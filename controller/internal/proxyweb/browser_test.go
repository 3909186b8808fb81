package proxyweb

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
)

// TestBrowserCreatesUpstreamAndDomain drives the editors in headless Chromium: an admin
// creates an upstream, then a domain with a proxy route and a redirect route, and sees
// both listed.
func TestBrowserCreatesUpstreamAndDomain(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"))
	e.createUser("admin", auth.RoleAdmin)
	e.server("edge-1")
	base := e.http.URL

	b := browsertest.New(t, 25*time.Second)
	b.OnFail = func() string { return "server log:\n" + e.logs.String() }
	ctx := b.Ctx
	type C = browsertest.CSS
	step := b.Do
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	step("sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(C(`input[name=username]`)),
		chromedp.SendKeys(C(`input[name=username]`), "admin"),
		chromedp.SendKeys(C(`input[name=password]`), "admin password"),
		chromedp.Click(C(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(C(`header.topbar`)),
	)

	step("create an upstream",
		chromedp.Click(C(`nav a[href="/upstreams"]`)),
		chromedp.WaitVisible(C(`a[href="/upstreams/new"]`)),
		chromedp.Click(C(`a[href="/upstreams/new"]`)),
		chromedp.WaitVisible(C(`[data-upstream-form] input[name=name]`)),
		chromedp.SendKeys(C(`input[name=name]`), "app"),
		chromedp.SendKeys(C(`input[name="targets[0].host"]`), "10.0.0.1"),
		chromedp.SendKeys(C(`input[name="targets[0].port"]`), "8080"),
		chromedp.Click(C(`[data-upstream-form] .form-actions button[value=save]`)),
		chromedp.WaitVisible(C(`.flash-success`)),
	)
	upFlash := read("upstream flash", chromedp.Text(C(`.flash-success`)))
	step("list upstreams",
		chromedp.Click(C(`nav a[href="/upstreams"]`)),
		chromedp.WaitVisible(C(`tr[data-upstream="app"]`)),
	)
	upRow := read("upstream row", chromedp.Text(C(`tr[data-upstream="app"]`)))

	step("open the domain editor",
		chromedp.Click(C(`nav a[href="/domains"]`)),
		chromedp.WaitVisible(C(`a[href="/domains/new"]`)),
		chromedp.Click(C(`a[href="/domains/new"]`)),
		chromedp.WaitVisible(C(`[data-domain-form] input[name=name]`)),
	)
	// The redirect fields of a proxy route are hidden by the stylesheet alone.
	redirectHidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`getComputedStyle(document.querySelector('li[data-row="0"] .route-redirect')).display === "none"`))
	if err != nil {
		t.Fatal(err)
	}
	step("fill in the domain with two routes",
		chromedp.SendKeys(C(`input[name=name]`), "example.com"),
		chromedp.Click(C(`input[name=servers]`)),
		chromedp.SendKeys(C(`input[name="routes[0].path"]`), "/"),
		chromedp.SetValue(C(`select[name="routes[0].upstream"]`), "app"),
		chromedp.Click(C(`input[name="routes[0].websocket"]`)),
		chromedp.SetValue(C(`select[name="routes[1].match"]`), "exact"),
		chromedp.SendKeys(C(`input[name="routes[1].path"]`), "/old"),
		chromedp.SetValue(C(`select[name="routes[1].kind"]`), "redirect"),
		chromedp.WaitVisible(C(`input[name="routes[1].redirect_target"]`)),
		chromedp.SetValue(C(`select[name="routes[1].redirect_code"]`), "308"),
		chromedp.SendKeys(C(`input[name="routes[1].redirect_target"]`), "https://example.com/new"),
		chromedp.Click(C(`[data-domain-form] .form-actions button[value=save]`)),
		chromedp.WaitVisible(C(`.flash-success`)),
	)
	domFlash := read("domain flash", chromedp.Text(C(`.flash-success`)))
	step("list domains",
		chromedp.Click(C(`nav a[href="/domains"]`)),
		chromedp.WaitVisible(C(`tr[data-domain="example.com"]`)),
	)
	domRow := read("domain row", chromedp.Text(C(`tr[data-domain="example.com"]`)))
	routes := read("route count", chromedp.Text(C(`tr[data-domain="example.com"] [data-routes]`)))

	// The revisions page follows apply outcomes live. Events published before the page's
	// stream is subscribed are lost, so the outcome is published until the page shows it,
	// as the controller publishes every outcome.
	srvID := strconv.Itoa(e.db.Client.Server.Query().OnlyIDX(context.Background()))
	step("open the revisions page",
		chromedp.Navigate(base+"/servers/"+srvID+"/revisions"),
		chromedp.WaitVisible(C(`[data-revisions-empty]`)),
	)
	live := `(() => { const s = document.querySelector('tr[data-revision="1"] [data-field="status"]');
		return !!s && s.textContent === "applied" && document.querySelector("[data-applied]").textContent === "r1"; })()`
	shown := false
	for !shown && ctx.Err() == nil {
		id, _ := strconv.Atoi(srvID)
		e.broker.Publish(events.Event{Topic: "server." + srvID, Name: "revision", Data: map[string]any{"server_id": id, "number": 1, "status": "pending", "outcome": ""}})
		e.broker.Publish(events.Event{Topic: "server." + srvID, Name: "revision", Data: map[string]any{"server_id": id, "number": 1, "status": "applied", "outcome": "applied"}})
		shown, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](live))
		if !shown {
			time.Sleep(50 * time.Millisecond)
		}
	}
	sync := read("sync state", chromedp.Text(C(`[data-sync]`)))
	emptyGone, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("[data-revisions-empty]") === null`))

	if !shown {
		t.Error("the revisions page did not show the applied revision live")
	}
	if !strings.EqualFold(sync, "in sync") || !emptyGone {
		t.Errorf("after the live update: state %q, empty state removed %t", sync, emptyGone)
	}
	if !strings.Contains(upFlash, "Upstream app created") {
		t.Errorf("upstream flash %q", upFlash)
	}
	if !strings.Contains(upRow, "10.0.0.1:8080") {
		t.Errorf("upstream row %q", upRow)
	}
	if !redirectHidden {
		t.Error("a proxy route shows its redirect fields")
	}
	if !strings.Contains(domFlash, "Domain example.com created") {
		t.Errorf("domain flash %q", domFlash)
	}
	if !strings.Contains(domRow, "edge-1") || strings.TrimSpace(routes) != "2" {
		t.Errorf("domain row %q, routes %q", domRow, routes)
	}
	d := e.db.Client.Domain.Query().Where(domain.Name("example.com")).WithRoutes().OnlyX(context.Background())
	if len(d.Edges.Routes) != 2 {
		t.Fatalf("stored routes: %d", len(d.Edges.Routes))
	}
	for _, rt := range d.Edges.Routes {
		if rt.Position == 1 && (rt.Match != "exact" || rt.RedirectCode != 308 || rt.RedirectTarget != "https://example.com/new") {
			t.Errorf("stored redirect route: %+v", rt)
		}
		if rt.Position == 0 && (!rt.Websocket || rt.Path != "/") {
			t.Errorf("stored proxy route: %+v", rt)
		}
	}
}
