package auth

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/user"
)

func TestCreateValidation(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.mustCreate(t, "alice", "correct horse battery", RoleAdmin)
		tests := []struct {
			name, username, password, role string
			field                          string // the field that must be reported
		}{
			{"uppercase", "Alice", "long enough pw", RoleUser, "username"},
			{"too short name", "a", "long enough pw", RoleUser, "username"},
			{"too long name", strings.Repeat("a", 33), "long enough pw", RoleUser, "username"},
			{"leading dot", ".bob", "long enough pw", RoleUser, "username"},
			{"space", "bo b", "long enough pw", RoleUser, "username"},
			{"markup", "<script>", "long enough pw", RoleUser, "username"},
			{"short password", "bob", "123456789", RoleUser, "password"},
			{"password too long for bcrypt", "bob", strings.Repeat("x", 73), RoleUser, "password"},
			{"password is username", "bobbybobby", "BobbyBobby", RoleUser, "password"},
			{"bad role", "bob", "long enough pw", "root", "role"},
			{"taken", "alice", "long enough pw", RoleUser, "username"},
		}
		for _, tc := range tests {
			_, err := f.users.Create(context.Background(), cli, tc.username, tc.password, tc.role)
			fe, ok := IsFieldErrors(err)
			if !ok {
				t.Errorf("%s: got %v, want field errors", tc.name, err)
				continue
			}
			if fe[tc.field] == "" {
				t.Errorf("%s: no message for %s in %v", tc.name, tc.field, fe)
			}
		}
		list, err := f.users.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Username != "alice" || !list[0].IsAdmin() {
			t.Fatalf("users after invalid creates: %+v", list)
		}
		// The password is stored as a bcrypt hash, never in clear.
		row := db.Client.User.Query().Where(user.UsernameEQ("alice")).OnlyX(context.Background())
		if !strings.HasPrefix(row.PasswordHash, "$2a$") || strings.Contains(row.PasswordHash, "correct horse") {
			t.Fatalf("password stored as %q", row.PasswordHash)
		}
		if got := f.actions(t); !slices.Equal(got, []string{"user.create"}) {
			t.Fatalf("audit actions %v", got)
		}
	})
}

func TestPasswordChangeAndDisableBumpEpoch(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		admin := f.mustCreate(t, "admin", "first password", RoleAdmin)
		bob := f.mustCreate(t, "bob", "bobs password", RoleUser)
		by := admin.Actor("192.0.2.9")

		if err := f.users.SetPassword(ctx, by, bob.ID, "short"); err == nil {
			t.Fatal("short password accepted")
		}
		if err := f.users.SetPassword(ctx, by, bob.ID, "bobs new password"); err != nil {
			t.Fatal(err)
		}
		got, _ := f.users.Get(ctx, bob.ID)
		if got.SessionEpoch != bob.SessionEpoch+1 {
			t.Fatalf("epoch %d after password change, want %d", got.SessionEpoch, bob.SessionEpoch+1)
		}
		if _, err := f.users.Authenticate(ctx, "bob", "bobs password", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("old password: %v", err)
		}
		if _, err := f.users.Authenticate(ctx, "bob", "bobs new password", "192.0.2.1"); err != nil {
			t.Fatalf("new password: %v", err)
		}

		if err := f.users.SetDisabled(ctx, by, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		got, _ = f.users.Get(ctx, bob.ID)
		if !got.Disabled || got.SessionEpoch != bob.SessionEpoch+2 {
			t.Fatalf("after disable: %+v", got)
		}
		if _, err := f.users.Authenticate(ctx, "bob", "bobs new password", "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("disabled user signed in: %v", err)
		}
		if err := f.users.SetDisabled(ctx, by, bob.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.users.Authenticate(ctx, "bob", "bobs new password", "192.0.2.1"); err != nil {
			t.Fatalf("enabled user: %v", err)
		}
		if err := f.users.SetPassword(ctx, by, 9999, "whatever long"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}

		p, _ := f.audit.List(ctx, audit.Query{Action: "user.password"})
		if len(p.Events) != 1 || p.Events[0].Actor != "admin" || p.Events[0].RemoteAddr != "192.0.2.9" || p.Events[0].Target != "user:bob" {
			t.Fatalf("password change audit: %+v", p.Events)
		}
		for _, a := range []string{"user.disable", "user.enable", "login", "login.failed"} {
			if !slices.Contains(f.actions(t), a) {
				t.Errorf("no %s in audit log %v", a, f.actions(t))
			}
		}
	})
}

func TestLastAdminProtected(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		a := f.mustCreate(t, "root", "first password", RoleAdmin)
		if err := f.users.SetDisabled(ctx, cli, a.ID, true); !errors.Is(err, ErrLastAdmin) {
			t.Fatalf("disable last admin: %v", err)
		}
		if err := f.users.SetRole(ctx, cli, a.ID, RoleUser); !errors.Is(err, ErrLastAdmin) {
			t.Fatalf("demote last admin: %v", err)
		}
		b := f.mustCreate(t, "second", "second password", RoleUser)
		if err := f.users.SetRole(ctx, cli, b.ID, RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if err := f.users.SetRole(ctx, cli, a.ID, RoleUser); err != nil {
			t.Fatalf("demote with another admin present: %v", err)
		}
		if err := f.users.SetRole(ctx, cli, b.ID, "superuser"); err == nil {
			t.Fatal("invalid role accepted")
		}
		got, _ := f.users.Get(ctx, a.ID)
		if got.Role != RoleUser {
			t.Fatalf("role %q", got.Role)
		}
	})
}

func TestAuthenticateUniformAnswers(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.mustCreate(t, "carol", "carols password", RoleUser)
		off := f.mustCreate(t, "dave", "daves password", RoleUser)
		f.mustCreate(t, "admin", "admin password", RoleAdmin)
		if err := f.users.SetDisabled(ctx, cli, off.ID, true); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, user, pass string }{
			{"wrong password", "carol", "not her password"},
			{"unknown user", "nobody", "not her password"},
			{"invalid username", "../etc", "x"},
			{"disabled user, right password", "dave", "daves password"},
		} {
			_, err := f.users.Authenticate(ctx, tc.user, tc.pass, "198.51.100.1")
			if err != ErrInvalidCredentials {
				t.Errorf("%s: got %v, want exactly ErrInvalidCredentials", tc.name, err)
			}
		}
		u, err := f.users.Authenticate(ctx, "  Carol ", "carols password", "198.51.100.1")
		if err != nil || u.Username != "carol" || u.LastLoginAt == nil {
			t.Fatalf("sign-in with padded, capitalised name: %+v %v", u, err)
		}
	})
}

func TestThrottlePerAccount(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.mustCreate(t, "erin", "erins password", RoleUser)
		fail := func(user, addr string) error {
			_, err := f.users.Authenticate(ctx, user, "wrong password", addr)
			return err
		}
		// Five failures from five addresses lock the account, for the real
		// user and for an unknown name alike, with the same answer.
		for i := range 5 {
			if err := fail("erin", addrN(i)); err != ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i, err)
			}
			if err := fail("ghost", addrN(i)); err != ErrInvalidCredentials {
				t.Fatalf("unknown failure %d: %v", i, err)
			}
		}
		_, errReal := f.users.Authenticate(ctx, "erin", "erins password", "203.0.113.200")
		_, errGhost := f.users.Authenticate(ctx, "ghost", "erins password", "203.0.113.200")
		var te *ThrottledError
		if !errors.As(errReal, &te) || te.RetryAfter != time.Minute {
			t.Fatalf("locked account with right password: %v", errReal)
		}
		if errGhost == nil || errGhost.Error() != errReal.Error() {
			t.Fatalf("unknown user answer %q differs from real user %q", errGhost, errReal)
		}
		// Another account from the same addresses is unaffected.
		f.mustCreate(t, "frank", "franks password", RoleUser)
		if _, err := f.users.Authenticate(ctx, "frank", "franks password", addrN(0)); err != nil {
			t.Fatalf("other account: %v", err)
		}
		// The lockout ends; the next failure locks for twice as long.
		f.clock.Add(time.Minute)
		if err := fail("erin", addrN(0)); err != ErrInvalidCredentials {
			t.Fatalf("after lockout: %v", err)
		}
		_, err := f.users.Authenticate(ctx, "erin", "erins password", addrN(0))
		if !errors.As(err, &te) || te.RetryAfter != 2*time.Minute {
			t.Fatalf("second lockout: %v", err)
		}
		f.clock.Add(2 * time.Minute)
		if _, err := f.users.Authenticate(ctx, "erin", "erins password", addrN(0)); err != nil {
			t.Fatalf("after second lockout: %v", err)
		}
		// Success forgot the account's failures: one failure does not lock.
		if err := fail("erin", addrN(0)); err != ErrInvalidCredentials {
			t.Fatal(err)
		}
		if _, err := f.users.Authenticate(ctx, "erin", "erins password", addrN(0)); err != nil {
			t.Fatalf("after reset: %v", err)
		}
	})
}

func TestThrottlePerAddress(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.mustCreate(t, "gina", "ginas password", RoleUser)
		limit := DefaultThrottle().AddressFailures
		// A different username each time: no account reaches its limit.
		for i := range limit {
			if _, err := f.users.Authenticate(ctx, "spray"+string(rune('a'+i)), "guess guess", "2001:db8:1:2::10"); err != ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		var te *ThrottledError
		// Another address in the same /64 is locked out too...
		if _, err := f.users.Authenticate(ctx, "gina", "ginas password", "2001:db8:1:2::99"); !errors.As(err, &te) {
			t.Fatalf("same /64: %v", err)
		}
		// ...a different network is not.
		if _, err := f.users.Authenticate(ctx, "gina", "ginas password", "2001:db8:1:3::10"); err != nil {
			t.Fatalf("other network: %v", err)
		}
	})
}

func addrN(i int) string { return "203.0.113." + string(rune('1'+i)) }

func TestThrottleMemoryBounded(t *testing.T) {
	th := newThrottle(DefaultThrottle())
	now := time.Now()
	for i := range maxThrottleKeys + 10 {
		th.fail(now, accountKey("user"+strconv.Itoa(i)), addressKey("192.0.2.1"))
	}
	th.mu.Lock()
	n := len(th.entries)
	th.mu.Unlock()
	if n > maxThrottleKeys {
		t.Fatalf("%d entries kept, bound is %d", n, maxThrottleKeys)
	}
	if th.wait(now, addressKey("192.0.2.1")) == 0 {
		t.Fatal("pruning forgot a locked address")
	}
}
