package auth

import (
	"context"
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// RFC 6238 appendix B (SHA-1), cut to six digits.
func TestTOTPCodeVectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := totpCode(secret, totpStep(time.Unix(tc.unix, 0))); got != tc.want {
			t.Errorf("code at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestMatchStep(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	step := totpStep(now)
	for _, tc := range []struct {
		name string
		code string
		last int64
		want int64
	}{
		{"now", totpCode(secret, step), 0, step},
		{"typed with a space", totpCode(secret, step)[:3] + " " + totpCode(secret, step)[3:], 0, step},
		{"one step early", totpCode(secret, step-1), 0, step - 1},
		{"one step late", totpCode(secret, step+1), 0, step + 1},
		{"two steps old", totpCode(secret, step-2), 0, 0},
		{"used already", totpCode(secret, step), step, 0},
		{"an older one after a newer one", totpCode(secret, step-1), step, 0},
		{"letters", "12a456", 0, 0},
		{"too short", "12345", 0, 0},
		{"empty", "", 0, 0},
	} {
		got, ok := matchStep(secret, tc.code, now, tc.last)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("%s: matchStep(%q) = %d %v, want %d", tc.name, tc.code, got, ok, tc.want)
		}
	}
}

// codeFor computes the current code from a setup, as a phone would.
func codeFor(t *testing.T, setup TOTPSetup, at time.Time) string {
	t.Helper()
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(setup.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return totpCode(secret, totpStep(at))
}

func TestTOTPLifecycle(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.mustCreate(t, "tess", "tess password", RoleUser)
		if _, err := f.users.CheckTOTP(ctx, u.ID, "123456", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("a code for a user without a second factor: %v", err)
		}

		setup, err := f.users.BeginTOTP(ctx, u.ID, "Gatehouse")
		if err != nil {
			t.Fatal(err)
		}
		uri, err := url.Parse(setup.URI)
		if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") != setup.Secret || uri.Query().Get("issuer") != "Gatehouse" ||
			!strings.HasSuffix(uri.Path, "Gatehouse:tess") {
			t.Fatalf("setup URI %q", setup.URI)
		}
		row, _ := db.Client.User.Get(ctx, u.ID)
		if row.TotpEnabled || len(row.TotpSecret) == 0 || strings.Contains(string(row.TotpSecret), setup.Secret) {
			t.Fatal("the pending secret is not stored sealed, or is already in force")
		}
		// Until confirmed, signing in needs no code.
		if got, err := f.users.Authenticate(ctx, "tess", "tess password", "192.0.2.1"); err != nil || got.TOTP {
			t.Fatalf("sign-in while setting up: %+v %v", got, err)
		}
		if _, err := f.users.ConfirmTOTP(ctx, cli, u.ID, "000000"); err == nil {
			t.Fatal("a wrong first code turned the second factor on")
		}
		now := f.clock.Now()
		recovery, err := f.users.ConfirmTOTP(ctx, cli, u.ID, codeFor(t, setup, now))
		if err != nil {
			t.Fatal(err)
		}
		if len(recovery) != 10 || len(recovery[0]) != 11 || recovery[0][5] != '-' || recovery[0] == recovery[1] {
			t.Fatalf("recovery codes %v", recovery)
		}
		got, err := f.users.Authenticate(ctx, "tess", "tess password", "192.0.2.1")
		if err != nil || !got.TOTP {
			t.Fatalf("after turning it on, the password step: %+v %v", got, err)
		}
		// The code that confirmed the setup cannot sign in; the next one can, once.
		if _, err := f.users.CheckTOTP(ctx, u.ID, codeFor(t, setup, now), "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("the confirming code signed in: %v", err)
		}
		f.clock.Add(30 * time.Second)
		next := codeFor(t, setup, f.clock.Now())
		if got, err := f.users.CheckTOTP(ctx, u.ID, next, "192.0.2.1"); err != nil || got.LastLoginAt == nil {
			t.Fatalf("the next code: %+v %v", got, err)
		}
		if _, err := f.users.CheckTOTP(ctx, u.ID, next, "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("a code accepted twice: %v", err)
		}
		// A recovery code signs in once, typed any way.
		if left, _ := f.users.RecoveryCodesLeft(ctx, u.ID); left != 10 {
			t.Fatalf("%d recovery codes left, want 10", left)
		}
		if _, err := f.users.CheckTOTP(ctx, u.ID, " "+strings.ToUpper(recovery[3])+" ", "192.0.2.1"); err != nil {
			t.Fatalf("a recovery code: %v", err)
		}
		if _, err := f.users.CheckTOTP(ctx, u.ID, recovery[3], "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("a recovery code accepted twice: %v", err)
		}
		if left, _ := f.users.RecoveryCodesLeft(ctx, u.ID); left != 9 {
			t.Fatalf("%d recovery codes left, want 9", left)
		}
		renewed, err := f.users.RenewRecoveryCodes(ctx, cli, u.ID, "tess password", "192.0.2.1")
		if err != nil || len(renewed) != 10 {
			t.Fatalf("renew: %v %v", renewed, err)
		}
		if _, err := f.users.CheckTOTP(ctx, u.ID, recovery[4], "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("an old recovery code after renewing: %v", err)
		}
		if n, _ := db.Client.RecoveryCode.Query().Count(ctx); n != 10 {
			t.Fatalf("%d recovery code rows, want the 10 new ones", n)
		}

		// Guessing is throttled like passwords.
		var last error
		for range 6 {
			_, last = f.users.CheckTOTP(ctx, u.ID, "111111", "192.0.2.1")
		}
		var te *ThrottledError
		if !errors.As(last, &te) {
			t.Fatalf("after six wrong codes: %v", last)
		}
		f.clock.Add(2 * time.Hour)

		// Turning it off needs the password and a fresh code.
		f.clock.Add(30 * time.Second)
		fresh := codeFor(t, setup, f.clock.Now())
		err = f.users.DisableTOTP(ctx, cli, u.ID, "wrong password", fresh, "192.0.2.1")
		if fe, ok := IsFieldErrors(err); !ok || fe["current_password"] == "" {
			t.Fatalf("disable with a wrong password: %v", err)
		}
		f.clock.Add(2 * time.Hour) // that failure locked the account again, for longer
		if err := f.users.DisableTOTP(ctx, cli, u.ID, "tess password", codeFor(t, setup, f.clock.Now()), "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.users.Authenticate(ctx, "tess", "tess password", "192.0.2.1"); got.TOTP {
			t.Fatal("still asks for a code after turning it off")
		}

		// An admin's reset clears a set-up second factor.
		setup, _ = f.users.BeginTOTP(ctx, u.ID, "Gatehouse")
		if _, err := f.users.ConfirmTOTP(ctx, cli, u.ID, codeFor(t, setup, f.clock.Now())); err != nil {
			t.Fatal(err)
		}
		if err := f.users.ResetTOTP(ctx, cli, u.ID); err != nil {
			t.Fatal(err)
		}
		row, _ = db.Client.User.Get(ctx, u.ID)
		if row.TotpEnabled || len(row.TotpSecret) != 0 {
			t.Fatal("reset left the second factor")
		}
		if n, _ := db.Client.RecoveryCode.Query().Count(ctx); n != 0 {
			t.Fatalf("reset left %d recovery codes", n)
		}
		acts := strings.Join(f.actions(t), " ")
		for _, want := range []string{"user.2fa.enable", "login.password", "login.2fa.failed", "login.recovery_code", "user.2fa.recovery_codes", "login", "user.2fa.disable", "user.2fa.reset"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit lacks %s: %s", want, acts)
			}
		}
	})
}
