package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

func TestTokens(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		hana := f.mustCreate(t, "hana", "hanas password", RoleUser)
		ivan := f.mustCreate(t, "ivan", "ivans password", RoleAdmin)
		by := hana.Actor("192.0.2.5")

		tok, raw, err := f.tokens.Create(ctx, by, hana.ID, "ci deploy", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(raw, TokenPrefix) || len(raw) != 46 || tok.Prefix != raw[:10] {
			t.Fatalf("token %q (prefix %q)", raw, tok.Prefix)
		}

		// At rest there is only the SHA-256 of the token.
		var hash []byte
		var prefix string
		if err := db.SQL.QueryRowContext(ctx, db.Rebind("SELECT token_hash, prefix FROM api_tokens WHERE id = ?"), tok.ID).Scan(&hash, &prefix); err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(raw))
		if !bytes.Equal(hash, want[:]) || prefix != raw[:10] {
			t.Fatalf("row holds hash %x prefix %q", hash, prefix)
		}
		if bytes.Contains(hash, []byte(raw[10:])) {
			t.Fatal("row holds the token in clear")
		}

		u, got, err := f.tokens.Authenticate(ctx, raw)
		if err != nil || u.ID != hana.ID || got.ID != tok.ID || got.LastUsedAt == nil {
			t.Fatalf("authenticate: %+v %+v %v", u, got, err)
		}
		// last_used_at is written at most once a minute.
		first := *got.LastUsedAt
		f.clock.Add(30 * time.Second)
		f.tokens.Authenticate(ctx, raw)
		list, _ := f.tokens.List(ctx, hana.ID)
		if !list[0].LastUsedAt.Equal(first) {
			t.Fatalf("last use rewritten within a minute: %v -> %v", first, list[0].LastUsedAt)
		}
		f.clock.Add(31 * time.Second)
		f.tokens.Authenticate(ctx, raw)
		list, _ = f.tokens.List(ctx, hana.ID)
		if !list[0].LastUsedAt.After(first) {
			t.Fatalf("last use not updated after a minute: %v", list[0].LastUsedAt)
		}

		for _, bad := range []string{"", "gh_", raw[:45], raw + "A", "Bearer " + raw, strings.ToUpper(raw), "gh_" + strings.Repeat("A", 43)} {
			if _, _, err := f.tokens.Authenticate(ctx, bad); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("token %q: %v", bad, err)
			}
		}

		// Another user can neither see nor revoke it.
		if err := f.tokens.Revoke(ctx, ivan.Actor(""), ivan.ID, tok.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke someone else's token: %v", err)
		}
		if l, _ := f.tokens.List(ctx, ivan.ID); len(l) != 0 {
			t.Fatalf("ivan sees %d tokens", len(l))
		}
		if err := f.tokens.Revoke(ctx, by, hana.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.tokens.Authenticate(ctx, raw); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("revoked token: %v", err)
		}

		// Expiry.
		exp := f.clock.Now().Add(time.Hour)
		_, raw2, err := f.tokens.Create(ctx, by, hana.ID, "short lived", &exp)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.tokens.Authenticate(ctx, raw2); err != nil {
			t.Fatalf("fresh token: %v", err)
		}
		f.clock.Add(time.Hour)
		if _, _, err := f.tokens.Authenticate(ctx, raw2); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("expired token: %v", err)
		}

		// A disabled owner's token stops working, and works again on enable.
		_, raw3, _ := f.tokens.Create(ctx, by, hana.ID, "third", nil)
		if err := f.users.SetDisabled(ctx, cli, hana.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.tokens.Authenticate(ctx, raw3); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("disabled owner: %v", err)
		}
		if err := f.users.SetDisabled(ctx, cli, hana.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.tokens.Authenticate(ctx, raw3); err != nil {
			t.Fatalf("re-enabled owner: %v", err)
		}

		past := f.clock.Now().Add(-time.Second)
		for _, tc := range []struct {
			name string
			exp  *time.Time
			fld  string
		}{
			{"", nil, "name"},
			{"line\nbreak", nil, "name"},
			{strings.Repeat("n", 65), nil, "name"},
			{"ok", &past, "expires_at"},
		} {
			_, _, err := f.tokens.Create(ctx, by, hana.ID, tc.name, tc.exp)
			if fe, ok := IsFieldErrors(err); !ok || fe[tc.fld] == "" {
				t.Errorf("create %q: %v", tc.name, err)
			}
		}
		if got := strings.Join(f.actions(t), ","); !strings.Contains(got, "token.create") || !strings.Contains(got, "token.revoke") {
			t.Fatalf("audit log %s", got)
		}
	})
}

func TestSessionStore(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewSessionStore(db.Client, hclogNull())
		c := newClock()
		s.now = c.Now

		if _, found, err := s.FindCtx(ctx, "missing"); found || err != nil {
			t.Fatalf("missing token: %v %v", found, err)
		}
		if err := s.CommitCtx(ctx, "tok1", []byte("one"), c.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Commit again replaces data and expiry.
		if err := s.CommitCtx(ctx, "tok1", []byte("uno"), c.Now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit("tok2", []byte("two"), c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		b, found, err := s.Find("tok1")
		if err != nil || !found || string(b) != "uno" {
			t.Fatalf("find tok1: %q %v %v", b, found, err)
		}
		c.Add(90 * time.Minute)
		if _, found, _ := s.FindCtx(ctx, "tok2"); found {
			t.Fatal("expired session found")
		}
		if _, found, _ := s.FindCtx(ctx, "tok1"); !found {
			t.Fatal("extended session not found")
		}
		n, err := s.Cleanup(ctx)
		if err != nil || n != 1 {
			t.Fatalf("cleanup removed %d: %v", n, err)
		}
		if err := s.Delete("tok1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCtx(ctx, "tok1"); err != nil {
			t.Fatalf("deleting a missing session: %v", err)
		}
		if left := db.Client.Session.Query().CountX(ctx); left != 0 {
			t.Fatalf("%d sessions left", left)
		}
	})
}
