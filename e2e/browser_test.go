package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
)

// TestDashboardTileAndChartUpdateLive signs in to a real controller with a
// real agent reporting, and watches a dashboard tile change without a reload,
// then the server page draw its charts and extend them live.
func TestDashboardTileAndChartUpdateLive(t *testing.T) {
	t.Parallel()
	b := browsertest.New(t, 90*time.Second)
	c := startController(t, "--metrics-interval", "1s")
	token, pin := c.addServer("node-live")
	id := c.serverID("node-live")
	startAgent(t, c, token, pin, "http://127.0.0.1:1")
	eventually(t, 20*time.Second, "the agent reporting", func() bool { return c.server(id).Status == "online" })
	base := "http://" + c.httpAddr

	type C = browsertest.CSS
	step := b.Do
	eval := func(js string) string { t.Helper(); return browsertest.Eval[string](b, js) }
	b.SignIn(base, "admin", c.password)
	step("see the tile", chromedp.WaitVisible(C(fmt.Sprintf(`.tile[data-server-id="%d"]`, id))))
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
	// The axis names the span and the peak; pointing at the chart reads the
	// value at that moment into the caption, and leaving it restores the
	// newest value.
	if axis := eval(`document.querySelector('[data-chart="cpu"] .chart-axis').textContent`); !strings.HasPrefix(axis, "1 h ago") ||
		!strings.Contains(axis, "peak ") || !strings.HasSuffix(axis, "now") {
		t.Fatalf("the CPU chart's axis reads %q", axis)
	}
	latest := eval(`document.querySelector('[data-chart="cpu"] figcaption b').textContent`)
	reading := eval(`(() => {
		const svg = document.querySelector('[data-chart="cpu"] svg');
		const r = svg.getBoundingClientRect();
		svg.dispatchEvent(new PointerEvent("pointermove", {clientX: r.right - 1, clientY: r.top + r.height / 2, bubbles: true}));
		return document.querySelector('[data-chart="cpu"] figcaption b').textContent;
	})()`)
	if !regexp.MustCompile(`^[0-9]{2}:[0-9]{2} · [0-9.]+%$`).MatchString(reading) {
		t.Fatalf("pointing at the CPU chart reads %q", reading)
	}
	restored := eval(`(() => {
		document.querySelector("main h1").dispatchEvent(new PointerEvent("pointermove", {bubbles: true}));
		return document.querySelector('[data-chart="cpu"] figcaption b').textContent;
	})()`)
	if restored != eval(`document.querySelector('[data-chart="cpu"]').latest`) || restored == "" {
		t.Fatalf("after pointing elsewhere the caption reads %q (newest %q)", restored, latest)
	}
	// A stretch without samples breaks the line instead of bridging it: 10 s
	// steps, then nothing for 10 minutes, then 10 s steps again (1 h chart).
	if runs := eval(`(() => {
		const pts = [];
		for (let t = 0; t <= 60000; t += 10000) pts.push({t});
		for (let t = 660000; t <= 720000; t += 10000) pts.push({t});
		return window.gatehouseCharts.splitRuns(pts, 3600000).map((r) => r.length).join(",");
	})()`); runs != "7,7" {
		t.Fatalf("a 10-minute gap split the points into runs of %s, want 7,7", runs)
	}
	if runs := eval(`(() => {
		const pts = [];
		for (let t = 0; t <= 60000; t += 10000) pts.push({t: t + (t === 30000 ? 9000 : 0)});
		return window.gatehouseCharts.splitRuns(pts, 3600000).map((r) => r.length).join(",");
	})()`); runs != "7" {
		t.Fatalf("jitter split the points into runs of %s, want one run of 7", runs)
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
