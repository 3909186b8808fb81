// Package browsertest runs a real headless Chromium for UI tests and wraps
// chromedp with helpers that fail the test with a readable message.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is where Debian installs the browser.
const Chromium = "/usr/bin/chromium"

// Browser is one headless Chromium tab bound to a test.
type Browser struct {
	t   testing.TB
	Ctx context.Context
	// OnFail, when set, adds context (e.g. a server log) to failure messages.
	OnFail func() string
}

// CSS selects by CSS selector.
type CSS = chromedp.CSS

// New starts Chromium with a fresh profile; the test is skipped when it is
// not installed, except under CI=true, where that is a failure. Everything
// the tab does must finish within timeout.
func New(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	if _, err := exec.LookPath(Chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required under CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Headless,
		// The machine has no network beyond loopback; without these Chromium
		// keeps trying to reach update and metrics servers.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		// Even so it looks up Google's autofill, password leak check,
		// account and update hosts as soon as a page has a login form. Only
		// localhost and 127.0.0.1 resolve, and whatever is not loopback
		// (which Chromium never sends to a proxy) goes to a closed loopback
		// port, so a test's browser neither reaches nor queries beyond it.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:1"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return &Browser{t: t, Ctx: ctx}
}

func (b *Browser) fail(what string, err error) {
	b.t.Helper()
	extra := ""
	if b.OnFail != nil {
		extra = "\n" + b.OnFail()
	}
	b.t.Fatalf("%s: %v%s", what, err, extra)
}

// Do runs actions in order and fails the test naming what was being done.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// Text returns the text of the first element matching sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Text(CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return v
}

// Eval evaluates JavaScript and returns its result.
func Eval[T any](b *Browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.fail(js, err)
	}
	return v
}

// SignIn logs in through the login form and waits for the signed-in layout.
func (b *Browser) SignIn(base, user, password string) {
	b.t.Helper()
	b.Do("sign in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(CSS(`input[name=username]`)),
		chromedp.SendKeys(CSS(`input[name=username]`), user),
		chromedp.SendKeys(CSS(`input[name=password]`), password),
		chromedp.Click(CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(CSS(`header.topbar`)),
	)
}
