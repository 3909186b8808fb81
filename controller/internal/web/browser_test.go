package web

import (
	"context"
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
)

// TestBrowserAdminCreatesUser drives the UI in real headless Chromium: an
// admin signs in, creates a user in the modal dialog and signs out; the new
// user signs in and is shown the forbidden page on /users.
func TestBrowserAdminCreatesUser(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	e.createUser("admin", "admin password", auth.RoleAdmin)
	base := e.http.URL

	b := browsertest.New(t, 20*time.Second)
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
	signIn := func(user, pass string) { t.Helper(); b.SignIn(base, user, pass) }

	signIn("admin", "admin password")
	step("dashboard", chromedp.WaitVisible(C(`section.empty`)))
	heading := read("heading", chromedp.Text(C(`main h1`)))
	empty := read("empty state", chromedp.Text(C(`section.empty`)))

	step("open the dialog",
		chromedp.Click(C(`nav details[data-nav-menu] summary`)),
		chromedp.WaitVisible(C(`nav a[href="/users"]`)),
		chromedp.Click(C(`nav a[href="/users"]`)),
		chromedp.WaitVisible(C(`a[data-dialog="create-user"]`)),
		chromedp.Click(C(`a[data-dialog="create-user"]`)),
		chromedp.WaitVisible(C(`#create-user input[name=username]`)),
	)
	modal, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("create-user").matches(":modal")`))
	if err != nil {
		t.Fatal(err)
	}
	// The System menu holds the page shown; Escape and a click elsewhere close it.
	menuOpen := func() bool {
		t.Helper()
		open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("details[data-nav-menu]").open`))
		if err != nil {
			t.Fatal(err)
		}
		return open
	}
	step("close the dialog and open the menu",
		chromedp.Click(C(`#create-user [data-dialog-close]`)),
		chromedp.WaitVisible(C(`nav summary.nav-current`)),
		chromedp.Click(C(`nav details[data-nav-menu] summary`)),
		chromedp.WaitVisible(C(`nav a[href="/audit"]`)),
	)
	openedByClick := menuOpen()
	step("escape", chromedp.KeyEvent("\x1b"))
	openAfterEscape := menuOpen()
	step("open it again and click elsewhere",
		chromedp.Click(C(`nav details[data-nav-menu] summary`)),
		chromedp.WaitVisible(C(`nav a[href="/audit"]`)),
		chromedp.Click(C(`footer.foot`)), // below the open menu's list
	)
	if !openedByClick || openAfterEscape || menuOpen() {
		t.Errorf("menu open after a click on it: %v; after Escape: %v; after a click elsewhere: %v", openedByClick, openAfterEscape, menuOpen())
	}
	step("open the dialog again",
		chromedp.Click(C(`a[data-dialog="create-user"]`)),
		chromedp.WaitVisible(C(`#create-user input[name=username]`)),
	)
	step("create the user",
		chromedp.SendKeys(C(`#create-user input[name=username]`), "newbie"),
		chromedp.SendKeys(C(`#create-user input[name=password]`), "newbie password"),
		chromedp.SetValue(C(`#create-user select[name=role]`), "user"),
		chromedp.Click(C(`#create-user button[type=submit]`)),
		chromedp.WaitVisible(C(`.flash-success`)),
	)
	flash := read("flash", chromedp.Text(C(`.flash-success`)))
	listed := read("user table", chromedp.Text(C(`table.table`)))

	step("sign out",
		chromedp.Click(C(`form[action="/logout"] button`)),
		chromedp.WaitVisible(C(`form[action="/login"]`)),
	)
	signInTitle := read("title", chromedp.Title())

	signIn("newbie", "newbie password")
	res, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+"/users"))
	if err != nil {
		t.Fatalf("open /users as a user: %v", err)
	}
	forbidden := read("forbidden heading", chromedp.Text(C(`main h1`)))
	nav := read("navigation", chromedp.Text(C(`nav.nav`)))

	if res.Status != 403 {
		t.Errorf("/users answered %d to a user, want 403", res.Status)
	}
	if strings.Contains(nav, "Users") || strings.Contains(nav, "Audit") {
		t.Errorf("a user's navigation offers admin pages: %q", nav)
	}
	if !strings.Contains(listed, "newbie") {
		t.Errorf("user table after create: %q", listed)
	}
	if heading != "Dashboard" || !strings.Contains(empty, "adding a server") {
		t.Errorf("admin dashboard: heading %q, empty state %q", heading, empty)
	}
	if !modal {
		t.Error("the create-user dialog did not open as a modal")
	}
	if !strings.Contains(flash, "newbie") {
		t.Errorf("flash after create: %q", flash)
	}
	if !strings.HasPrefix(signInTitle, "Sign in") {
		t.Errorf("after sign-out the title is %q", signInTitle)
	}
	if !strings.Contains(forbidden, "don't have access") {
		t.Errorf("user on /users sees %q", forbidden)
	}
	u, err := e.users.Lookup(context.Background(), "newbie")
	if err != nil || u.Role != auth.RoleUser {
		t.Fatalf("created user: %+v %v", u, err)
	}
}

// TestBrowserTwoFactor: in Chromium, a user turns two-factor sign-in on from
// the account page (reading the key beside the QR code, as a phone would
// scan it), signs out, and signs in again with the password and a code,
// ticking "Remember this browser"; signing in a third time takes the
// password alone, and the account page lists this browser.
func TestBrowserTwoFactor(t *testing.T) {
	e := newEnv(t, openDB(t, "sqlite"), config.Config{})
	e.createUser("vera", "veras password", auth.RoleUser)
	base := e.http.URL
	b := browsertest.New(t, 20*time.Second)
	b.OnFail = func() string { return "server log:\n" + e.logs.String() }
	type C = browsertest.CSS

	b.SignIn(base, "vera", "veras password")
	b.Do("open the set-up",
		chromedp.Click(C(`a.who-link`)),
		chromedp.WaitVisible(C(`[data-totp-setup]`)),
		chromedp.Click(C(`[data-totp-setup]`)),
		chromedp.WaitVisible(C(`[data-totp-qr] svg`)),
	)
	secret, err := chromedp.Run(b.Ctx, chromedp.Text(C(`[data-totp-secret]`)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(secret, " ", ""))
	if err != nil {
		t.Fatalf("the key shown %q: %v", secret, err)
	}
	p := phone{key}
	step := time.Now().Unix() / 30
	b.Do("turn it on",
		chromedp.SendKeys(C(`input[name=code]`), p.code(step)),
		chromedp.Click(C(`form[action="/account/2fa/confirm"] button`)),
		chromedp.WaitVisible(C(`[data-recovery-codes]`)),
		chromedp.Click(C(`a[href="/account"].btn-primary`)),
		chromedp.WaitVisible(C(`[data-totp="on"]`)),
		chromedp.Click(C(`form[action="/logout"] button`)),
		chromedp.WaitVisible(C(`form[action="/login"]`)),
	)
	b.Do("sign in with a code",
		chromedp.SendKeys(C(`input[name=username]`), "vera"),
		chromedp.SendKeys(C(`input[name=password]`), "veras password"),
		chromedp.Click(C(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(C(`form[action="/login/code"] input[name=code]`)),
		chromedp.SendKeys(C(`input[name=code]`), p.code(step+1)),
		chromedp.Click(C(`form[action="/login/code"] input[name=remember]`)),
		chromedp.Click(C(`form[action="/login/code"] button`)),
		chromedp.WaitVisible(C(`header.topbar`)),
	)
	heading, err := chromedp.Run(b.Ctx, chromedp.Text(C(`main h1`)))
	if err != nil || heading != "Dashboard" {
		t.Fatalf("after the code: %q %v", heading, err)
	}
	script, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(script, "gatehouse_device") {
		t.Fatalf("the trusted-browser cookie is readable by scripts: %q %v", script, err)
	}

	b.Do("sign out and in again with the password alone",
		chromedp.Click(C(`form[action="/logout"] button`)),
		chromedp.WaitVisible(C(`form[action="/login"]`)),
		chromedp.SendKeys(C(`input[name=username]`), "vera"),
		chromedp.SendKeys(C(`input[name=password]`), "veras password"),
		chromedp.Click(C(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(C(`header.topbar`)),
	)
	where, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil || strings.Contains(where, "/login") {
		t.Fatalf("the second sign-in ended at %q (%v), not past the code step", where, err)
	}
	b.Do("see this browser on the account page",
		chromedp.Click(C(`a.who-link`)),
		chromedp.WaitVisible(C(`[data-devices] [data-device-current]`)),
	)
	listed, err := chromedp.Run(b.Ctx, chromedp.Text(C(`[data-devices] tbody`)))
	if err != nil || !strings.Contains(strings.ToLower(listed), "this browser") || !strings.Contains(listed, "127.0.0.1") {
		t.Fatalf("trusted browsers listed: %q %v", listed, err)
	}
}
