package nginx

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChallengeServedByNginx(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	conf := fmt.Sprintf(`server {
    listen 127.0.0.1:%d;
    server_name a.test;
    location ^~ /.well-known/acme-challenge/ { root %s; default_type text/plain; }
    location / { return 200 "site"; }
}
`, f.port, f.a.ChallengeRoot())
	f.mustApply(release(1, "http/a.conf", conf))
	f.settle()

	token := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	keyAuth := token + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	path := "/.well-known/acme-challenge/" + token
	if code, _ := get(t, f.port, "a.test", path); code != http.StatusNotFound {
		t.Fatalf("before placing: status %d, want 404", code)
	}
	if err := f.a.PlaceChallenge(token, keyAuth); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, f.port, "a.test", path); code != http.StatusOK || body != keyAuth {
		t.Fatalf("GET challenge = %d %q, want 200 %q", code, body, keyAuth)
	}
	// Placing again replaces it.
	keyAuth2 := token + ".other"
	if err := f.a.PlaceChallenge(token, keyAuth2); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, f.port, "a.test", path); code != http.StatusOK || body != keyAuth2 {
		t.Fatalf("GET replaced challenge = %d %q", code, body)
	}
	if err := f.a.RemoveChallenge(token); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, f.port, "a.test", path); code != http.StatusNotFound {
		t.Fatalf("after removing: status %d, want 404", code)
	}
	if err := f.a.RemoveChallenge(token); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	// Applying releases leaves the challenge webroot alone.
	if err := f.a.PlaceChallenge(token, keyAuth); err != nil {
		t.Fatal(err)
	}
	f.mustApply(release(2, "http/a.conf", conf+"# r2\n"))
	f.settle()
	if code, body := get(t, f.port, "a.test", path); code != http.StatusOK || body != keyAuth {
		t.Fatalf("challenge after a new release = %d %q", code, body)
	}
}

func TestChallengeRefusesHostileInput(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "gatehouse")
	a, err := New(nil, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	good := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	cases := []struct {
		name, token, keyAuth, want string
	}{
		{"traversal", "../../../../../../etc/passwd", "x", "only base64url"},
		{"traversal long", "..%2F..%2F..%2F..%2Fetc%2Fpasswd%2Fxxxxx", "x", "only base64url"},
		{"slash", "aaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbb", "x", "only base64url"},
		{"dot", "aaaaaaaaaaaaaaaaaaaaaaaaa.conf", "x", "only base64url"},
		{"short", "abc", "abc.x", "must be 22 to 128"},
		{"long", strings.Repeat("a", 129), "x", "must be 22 to 128"},
		{"padding", good + "=", good + "=.x", "only base64url"},
		{"keyauth for another token", good, "zzzzzzzzzzzzzzzzzzzzzzzzzz.thumb", "must be the token, a dot"},
		{"keyauth without thumbprint", good, good + ".", "thumbprint after the dot"},
		{"keyauth with newline", good, good + ".abc\n<script>", "thumbprint after the dot"},
		{"keyauth too long", good, good + "." + strings.Repeat("a", 600), "longer than 512"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.PlaceChallenge(tc.token, tc.keyAuth)
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PlaceChallenge(%q, %q) = %v, want %q", tc.token, tc.keyAuth, err, tc.want)
			}
		})
	}
	if err := a.RemoveChallenge("../../etc/passwd"); err == nil {
		t.Fatal("RemoveChallenge accepted a traversal token")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "acme", ".well-known", "acme-challenge"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("challenge dir = %v, %v; want empty", entries, err)
	}
}
