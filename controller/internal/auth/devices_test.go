package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/trusteddevice"
)

// withTOTP creates a user with two-factor sign-in on and returns them with
// their set-up, to compute codes from.
func (f *fixture) withTOTP(t *testing.T, name string) (User, TOTPSetup) {
	t.Helper()
	ctx := context.Background()
	u := f.mustCreate(t, name, name+" password", RoleUser)
	setup, err := f.users.BeginTOTP(ctx, u.ID, "Gatehouse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.ConfirmTOTP(ctx, cli, u.ID, codeFor(t, setup, f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	u, err = f.users.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u, setup
}

// lastAudit returns the newest audit event.
func (f *fixture) lastAudit(t *testing.T) audit.Event {
	t.Helper()
	p, err := f.audit.List(context.Background(), audit.Query{Limit: 1})
	if err != nil || len(p.Events) == 0 {
		t.Fatalf("audit: %v", err)
	}
	return p.Events[0]
}

// TestTrustedDeviceSkipsCode: a browser remembered after the second factor
// signs its user in with the password alone until it expires; the password
// is still checked and throttled, and another user's token, an unknown one
// and an expired one change nothing.
func TestTrustedDeviceSkipsCode(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		amy, _ := f.withTOTP(t, "amy")
		bob, _ := f.withTOTP(t, "bob")
		plain := f.mustCreate(t, "cat", "cat password", RoleUser)

		if _, _, err := f.users.TrustDevice(ctx, plain.ID, "Firefox", "192.0.2.9"); err == nil {
			t.Fatal("a browser was remembered for a user without a second factor")
		}
		const ua = "Mozilla/5.0 (X11; Linux x86_64)\x1b[31m\r\nSet-Cookie: x=1"
		token, d, err := f.users.TrustDevice(ctx, amy.ID, ua, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if len(token) < 43 || d.UserAgent != "Mozilla/5.0 (X11; Linux x86_64)[31mSet-Cookie: x=1" || d.Address != "192.0.2.1" ||
			!d.ExpiresAt.Equal(f.clock.Now().Add(TrustedDeviceLifetime)) {
			t.Fatalf("remembered %q %+v", token, d)
		}
		if acts := f.actions(t); acts[len(acts)-1] != "user.device.trust" {
			t.Fatalf("audit after remembering: %v", acts)
		}
		row, err := db.Client.TrustedDevice.Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(token))
		if !bytes.Equal(row.TokenHash, sum[:]) || bytes.Contains(row.TokenHash, []byte(token)) {
			t.Fatal("the token is not stored as its SHA-256")
		}
		other, _, err := f.users.TrustDevice(ctx, bob.ID, "Chromium", "192.0.2.2")
		if err != nil {
			t.Fatal(err)
		}

		f.clock.Add(time.Hour)
		u, needCode, err := f.users.AuthenticateDevice(ctx, "amy", "amy password", token, "198.51.100.7")
		if err != nil || needCode || u.ID != amy.ID || u.LastLoginAt == nil {
			t.Fatalf("password with a trusted browser: %+v need code %v, %v", u, needCode, err)
		}
		if ev := f.lastAudit(t); ev.Action != "login" || !strings.Contains(ev.Detail, "trusted browser") {
			t.Fatalf("audit of a trusted sign-in: %s %q", ev.Action, ev.Detail)
		}
		row, _ = db.Client.TrustedDevice.Get(ctx, d.ID)
		if !row.LastUsedAt.Equal(f.clock.Now()) || row.IP != "198.51.100.7" {
			t.Fatalf("use not recorded: last used %v from %q", row.LastUsedAt, row.IP)
		}

		// The password is still needed, and wrong ones still count.
		for range 5 {
			if _, _, err := f.users.AuthenticateDevice(ctx, "amy", "wrong password", token, "198.51.100.7"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("a wrong password with a trusted browser: %v", err)
			}
		}
		var te *ThrottledError
		if _, _, err := f.users.AuthenticateDevice(ctx, "amy", "amy password", token, "198.51.100.7"); !errors.As(err, &te) {
			t.Fatalf("a trusted browser passed the throttle: %v", err)
		}
		f.clock.Add(2 * time.Hour)

		for _, tc := range []struct{ name, token string }{
			{"none", ""},
			{"another user's", other},
			{"unknown", strings.Repeat("A", 43)},
			{"too long", token + strings.Repeat("x", 200)},
		} {
			u, needCode, err := f.users.AuthenticateDevice(ctx, "amy", "amy password", tc.token, "198.51.100.7")
			if err != nil || !needCode || u.ID != amy.ID {
				t.Errorf("%s token: need code %v, %v", tc.name, needCode, err)
			}
			if ev := f.lastAudit(t); ev.Action != "login.password" {
				t.Errorf("%s token: audit %s", tc.name, ev.Action)
			}
		}
		// Amy's token does not open Bob's account, and is not spent by trying.
		if _, needCode, err := f.users.AuthenticateDevice(ctx, "bob", "bob password", token, "198.51.100.7"); err != nil || !needCode {
			t.Fatalf("bob with amy's browser: need code %v, %v", needCode, err)
		}
		if n := db.Client.TrustedDevice.Query().CountX(ctx); n != 2 {
			t.Fatalf("%d trusted browsers, want 2", n)
		}

		// Expired: asks for the code again, and the row goes.
		f.clock.Add(TrustedDeviceLifetime)
		if _, needCode, err := f.users.AuthenticateDevice(ctx, "amy", "amy password", token, "198.51.100.7"); err != nil || !needCode {
			t.Fatalf("an expired browser: need code %v, %v", needCode, err)
		}
		if _, err := db.Client.TrustedDevice.Get(ctx, d.ID); err == nil {
			t.Fatal("the expired browser was kept")
		}
		if list, err := f.users.TrustedDevices(ctx, bob.ID, ""); err != nil || len(list) != 0 {
			t.Fatalf("bob's expired browser is listed: %v %v", list, err)
		}
		if n, err := f.users.PruneTrustedDevices(ctx); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
}

// TestTrustedDevicesListForgetAndLimit: a user lists and forgets their own
// browsers only; the 21st remembered browser forgets the oldest.
func TestTrustedDevicesListForgetAndLimit(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		amy, _ := f.withTOTP(t, "amy")
		bob, _ := f.withTOTP(t, "bob")

		var tokens []string
		var ids []int
		for range MaxTrustedDevices + 1 {
			f.clock.Add(time.Minute)
			tok, d, err := f.users.TrustDevice(ctx, amy.ID, "Firefox", "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			tokens, ids = append(tokens, tok), append(ids, d.ID)
		}
		list, err := f.users.TrustedDevices(ctx, amy.ID, tokens[5])
		if err != nil || len(list) != MaxTrustedDevices {
			t.Fatalf("%d browsers listed (%v), want %d", len(list), err, MaxTrustedDevices)
		}
		if list[0].ID != ids[len(ids)-1] {
			t.Fatalf("newest first: got %d, want %d", list[0].ID, ids[len(ids)-1])
		}
		for _, d := range list {
			if d.ID == ids[0] {
				t.Fatal("the oldest browser was kept beyond the limit")
			}
			if d.Current != (d.ID == ids[5]) {
				t.Fatalf("browser %d marked current %v", d.ID, d.Current)
			}
		}
		if _, needCode, _ := f.users.AuthenticateDevice(ctx, "amy", "amy password", tokens[0], "192.0.2.1"); !needCode {
			t.Fatal("the forgotten oldest browser still skips the code")
		}

		bobTok, bobDev, err := f.users.TrustDevice(ctx, bob.ID, "Chromium", "192.0.2.2")
		if err != nil {
			t.Fatal(err)
		}
		me := amy.Actor("192.0.2.1")
		if err := f.users.ForgetDevice(ctx, me, amy.ID, bobDev.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("amy forgot bob's browser: %v", err)
		}
		if _, needCode, _ := f.users.AuthenticateDevice(ctx, "bob", "bob password", bobTok, "192.0.2.2"); needCode {
			t.Fatal("bob's browser stopped working after amy's attempt")
		}
		if err := f.users.ForgetDevice(ctx, me, amy.ID, ids[5]); err != nil {
			t.Fatal(err)
		}
		if _, needCode, _ := f.users.AuthenticateDevice(ctx, "amy", "amy password", tokens[5], "192.0.2.1"); !needCode {
			t.Fatal("a forgotten browser still skips the code")
		}
		if err := f.users.ForgetDevice(ctx, me, amy.ID, ids[5]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("forgetting twice: %v", err)
		}
		n, err := f.users.ForgetDevices(ctx, me, amy.ID)
		if err != nil || n != MaxTrustedDevices-1 {
			t.Fatalf("forget all: %d %v", n, err)
		}
		if left := db.Client.TrustedDevice.Query().Where(trusteddevice.UserID(bob.ID)).CountX(ctx); left != 1 {
			t.Fatalf("forgetting all of amy's took bob's: %d left", left)
		}
		acts := strings.Join(f.actions(t), " ")
		for _, want := range []string{"user.device.trust", "user.device.forget", "user.device.forget_all"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit lacks %s", want)
			}
		}
	})
}

// TestTrustedDevicesForgottenOnChanges: a password change (own, admin,
// command line), turning the second factor off or resetting it, and
// disabling the user each forget all of the user's browsers; new recovery
// codes keep them.
func TestTrustedDevicesForgottenOnChanges(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		for _, tc := range []struct {
			name   string
			change func(u User, setup TOTPSetup) error
			keep   bool
		}{
			{"own password", func(u User, _ TOTPSetup) error {
				return f.users.ChangeOwnPassword(ctx, u.Actor(""), u.ID, u.Username+" password", "a new password", "192.0.2.1")
			}, false},
			{"set password", func(u User, _ TOTPSetup) error { return f.users.SetPassword(ctx, cli, u.ID, "a new password") }, false},
			{"turn off", func(u User, setup TOTPSetup) error {
				f.clock.Add(30 * time.Second)
				return f.users.DisableTOTP(ctx, u.Actor(""), u.ID, u.Username+" password", codeFor(t, setup, f.clock.Now()), "192.0.2.1")
			}, false},
			{"reset", func(u User, _ TOTPSetup) error { return f.users.ResetTOTP(ctx, cli, u.ID) }, false},
			{"disable", func(u User, _ TOTPSetup) error { return f.users.SetDisabled(ctx, cli, u.ID, true) }, false},
			{"recovery codes", func(u User, _ TOTPSetup) error {
				_, err := f.users.RenewRecoveryCodes(ctx, u.Actor(""), u.ID, u.Username+" password", "192.0.2.1")
				return err
			}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := strings.ReplaceAll(tc.name, " ", "-")
				u, setup := f.withTOTP(t, name)
				bystander, _ := f.withTOTP(t, name+"-2")
				for range 3 {
					if _, _, err := f.users.TrustDevice(ctx, u.ID, "Firefox", "192.0.2.1"); err != nil {
						t.Fatal(err)
					}
				}
				if _, _, err := f.users.TrustDevice(ctx, bystander.ID, "Firefox", "192.0.2.1"); err != nil {
					t.Fatal(err)
				}
				if err := tc.change(u, setup); err != nil {
					t.Fatal(err)
				}
				want := 0
				if tc.keep {
					want = 3
				}
				if n := db.Client.TrustedDevice.Query().Where(trusteddevice.UserID(u.ID)).CountX(ctx); n != want {
					t.Errorf("%d browsers left, want %d", n, want)
				}
				if n := db.Client.TrustedDevice.Query().Where(trusteddevice.UserID(bystander.ID)).CountX(ctx); n != 1 {
					t.Errorf("another user's browser went too: %d left", n)
				}
			})
		}
	})
}

func TestCleanUserAgent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"},
		{"  a\tb\nc\x00d\x7fe\u0085f  ", "abcdef"},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"bad \xff utf8", "bad  utf8"},
		{strings.Repeat("x", 250), strings.Repeat("x", 200)},
		{strings.Repeat("x", 199) + "é", strings.Repeat("x", 199)},
	} {
		if got := CleanUserAgent(tc.in); got != tc.want {
			t.Errorf("CleanUserAgent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
