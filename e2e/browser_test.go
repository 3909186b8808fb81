package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// browser starts a headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required under CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Headless,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// TestDashboardTileAndChartUpdateLive signs in to a real controller with a
// real agent reporting, and watches a dashboard tile change without a reload,
// then the server page draw its charts and extend them live.
func TestDashboardTileAndChartUpdateLive(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	c := startController(t, "--metrics-interval", "1s")
	token, pin := c.addServer("node-live")
	id := c.serverID("node-live")
	startAgent(t, c, token, pin, "http://127.0.0.1:1")
	eventually(t, 20*time.Second, "the agent reporting", func() bool { return c.server(id).Status == "online" })
	base := "http://" + c.httpAddr

	type C = chromedp.CSS
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	step("sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(C(`input[name=username]`)),
		chromedp.SendKeys(C(`input[name=username]`), "admin"),
		chromedp.SendKeys(C(`input[name=password]`), c.password),
		chromedp.Click(C(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(C(fmt.Sprintf(`.tile[data-server-id="%d"]`, id))),
	)
	// Mark this page load; a reload would lose the mark.
	eval(`window.__gatehouseLoad = "kept"; "ok"`)
	tile := fmt.Sprintf(`.tile[data-server-id="%d"]`, id)
	first := eval(`document.querySelector('` + tile + ` [data-field="last_seen"]').getAttribute("datetime")`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		now := eval(`document.querySelector('` + tile + ` [data-field="last_seen"]').getAttribute("datetime")`)
		if now != first && now != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tile did not update live (last_seen stayed %q)", first)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if v := eval(`String(window.__gatehouseLoad)`); v != "kept" {
		t.Fatal("the page was reloaded instead of updated")
	}
	if v := eval(`document.querySelector('` + tile + ` [data-field="cpu"]').textContent`); v == "—" || v == "" {
		t.Fatalf("the tile shows no CPU value: %q", v)
	}

	step("open the server page",
		chromedp.Navigate(fmt.Sprintf("%s/servers/%d", base, id)),
		chromedp.WaitVisible(C(`[data-charts][data-drawn="true"]`)),
	)
	if n := eval(`String(document.querySelectorAll('[data-chart="cpu"] polyline').length)`); n != "1" {
		t.Fatalf("the CPU chart has %s lines", n)
	}
	if pts := eval(`document.querySelector('[data-chart="cpu"] polyline').getAttribute("points")`); len(pts) < 8 {
		t.Fatalf("the CPU chart has no points: %q", pts)
	}
	before := eval(`document.querySelector('[data-charts]').dataset.points || "0"`)
	step("a live sample extends the chart", chromedp.WaitVisible(C(`[data-charts][data-live="true"]`)))
	deadline = time.Now().Add(15 * time.Second)
	for eval(`document.querySelector('[data-charts]').dataset.points`) == before {
		if time.Now().After(deadline) {
			t.Fatal("the chart was not extended by live samples")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
