package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
)

// TestIncidentsPageUpdatesLive watches an incident appear on the alerts page
// without a reload when a real agent's CPU crosses a rule, and leave it when
// the CPU drops; and has the rule form explain a rule in words and keep
// refused input beside its message.
func TestIncidentsPageUpdatesLive(t *testing.T) {
	t.Parallel()
	b := browsertest.New(t, 90*time.Second)
	g := startGlancesStandIn(t, 10)
	c := startController(t, "--metrics-interval", "1s", "--alert-interval", "1s")
	token, pin := c.addServer("live-1")
	id := c.serverID("live-1")
	startAgentAs(t, c, token, pin, g.URL, "live-1", t.TempDir())
	eventually(t, 30*time.Second, "the agent reporting", func() bool { _, ok := c.latest(id); return ok })
	base := "http://" + c.httpAddr
	type C = browsertest.CSS
	eval := func(js string) string { t.Helper(); return browsertest.Eval[string](b, js) }

	b.SignIn(base, "admin", c.password)
	// The rule form: refused input stays, with the message beside the field.
	b.Do("open the rule form", chromedp.Navigate(base+"/alerts/rules/new"), chromedp.WaitVisible(C(`input[name="name"]`)))
	if text := b.Text(`#rule-explanation`); !strings.Contains(text, "When the CPU usage averaged over 5 minutes is above 80% (warning) or 95% (critical)") {
		t.Fatalf("the new rule form does not explain its defaults: %q", text)
	}
	set := func(name, value string) {
		t.Helper()
		eval(`document.querySelector('[name="` + name + `"]').value = ` + strconv.Quote(value) + `; "ok"`)
	}
	// Only the fields of the chosen type show, and the line under the type
	// select describes it.
	shown := func() string {
		t.Helper()
		return eval(`["metric", "days", "severity", "window"].filter((n) => document.querySelector('[name="' + n + '"]').offsetParent !== null).join(" ")`)
	}
	if got := shown(); got != "metric window" {
		t.Fatalf("a metric rule shows the fields %q", got)
	}
	choose := func(kind string) {
		t.Helper()
		eval(`(() => { const s = document.querySelector('select[name="kind"]'); s.value = ` + strconv.Quote(kind) +
			`; s.dispatchEvent(new Event("change", {bubbles: true})); return "ok"; })()`)
	}
	choose("cert_expiring")
	if got := shown(); got != "days severity" {
		t.Fatalf("a certificate expiry rule shows the fields %q", got)
	}
	if text := b.Text(`#kind-description`); !strings.Contains(text, "certificate expires within the given number of days") {
		t.Fatalf("the type description reads %q", text)
	}
	if label := eval(`document.querySelector('select[name="kind"]').selectedOptions[0].textContent`); label != "Certificate expiring" {
		t.Fatalf("the chosen type is labelled %q", label)
	}
	choose("metric")
	set("name", "CPU now")
	set("critical", "250")
	set("warning", "")
	set("window", "")
	b.Do("submit a bad rule", chromedp.Submit(C(`input[name="name"]`)), chromedp.WaitVisible(C(`.field-error`)))
	if msg := b.Text(`.field-error`); !strings.Contains(msg, "at most 100") {
		t.Fatalf("field message %q", msg)
	}
	if v := eval(`document.querySelector('input[name="name"]').value`); v != "CPU now" {
		t.Fatalf("the form lost the name: %q", v)
	}
	set("critical", "90")
	b.Do("explain without saving", chromedp.Click(C(`button[name="preview"]`)), chromedp.WaitVisible(C(`#rule-explanation`)))
	if text := b.Text(`#rule-explanation`); !strings.Contains(text, "When the latest CPU usage is above 90% (critical)") {
		t.Fatalf("explanation after Explain: %q", text)
	}
	if n, _ := c.rulesCount(); n != 0 {
		t.Fatal("Explain saved the rule")
	}
	b.Do("fix and save",
		chromedp.Submit(C(`input[name="name"]`)),
		chromedp.WaitVisible(C(`[data-rule-id]`)),
	)
	if text := b.Text(`[data-rule-id]`); !strings.Contains(text, "When the latest CPU usage is above 90% (critical), an incident fires for every server.") {
		t.Fatalf("the rule list does not explain the rule: %q", text)
	}

	b.Do("open the alerts page", chromedp.Navigate(base+"/alerts"), chromedp.WaitVisible(C(`#no-open-incidents`)))
	eval(`window.__gatehouseLoad = "kept"; "ok"`)
	g.setCPU(99)
	b.Do("the incident appears", chromedp.WaitVisible(C(`#open-incidents tr[data-state="firing"]`)))
	if text := b.Text(`#open-incidents tr[data-state="firing"]`); !strings.Contains(text, "CPU now") || !strings.Contains(text, "live-1") {
		t.Fatalf("incident row %q", text)
	}
	if href := eval(`(document.querySelector('#open-incidents tr[data-state="firing"] a[href^="/servers/"]') || {}).getAttribute?.("href") || ""`); !strings.HasPrefix(href, "/servers/") {
		t.Fatalf("the live incident row does not link its server: %q", href)
	}
	g.setCPU(5)
	b.Do("the incident leaves", chromedp.WaitVisible(C(`#no-open-incidents`)))
	if v := eval(`String(window.__gatehouseLoad)`); v != "kept" {
		t.Fatal("the page was reloaded instead of updated")
	}
}
