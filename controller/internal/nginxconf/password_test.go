package nginxconf

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The first, second and fourth vectors come from Drepper's "Unix crypt using SHA-256 and
// SHA-512" specification; the others were computed with Debian's crypt(3) (libxcrypt).
func TestSHA512CryptVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		salt     string
		rounds   int
		explicit bool
		pw       string
		want     string
	}{
		{"saltstring", 5000, false, "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"saltstringsaltstring", 10000, true, "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"jojo", 5000, true, "Just a test", "$6$rounds=5000$jojo$SwJJol/rukduyoAvgsjg/VfrCgSXPpWGr/5JezQaxepQCaXYCnbKWqxv0G.U7HTN.7vyqmn8zgVRITg/ZtGu30"},
		{"0123456789abcdef", 5000, false, "a very much longer password that is certainly more than sixty-four bytes long, with ünïcode", "$6$0123456789abcdef$veO2qzQLNkj26k8L1uDTDlETDzLRd/nmtEBnSC0MZKYGFb1DIvSQFp6HxiV1GKxwcHxUUSiRMFlqxUN4mcljn."},
		{"roundstoolow", 1000, true, "the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	}
	for _, tt := range tests {
		if got := sha512Crypt([]byte(tt.pw), tt.salt, tt.rounds, tt.explicit); got != tt.want {
			t.Errorf("sha512Crypt(%q, %q, %d) = %s, want %s", tt.pw, tt.salt, tt.rounds, got, tt.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	h1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("two hashes of one password are equal (%s): salt is not random", h1)
	}
	if !reCryptHash.MatchString(h1) || !strings.HasPrefix(h1, "$6$") {
		t.Errorf("hash %q is not a $6$ crypt hash the validator accepts", h1)
	}
	parts := strings.Split(h1, "$")
	if got := sha512Crypt([]byte("correct horse"), parts[2], 5000, false); got != h1 {
		t.Errorf("recomputing with the salt gives %s, want %s", got, h1)
	}
	for _, bad := range []string{"", strings.Repeat("x", 1025)} {
		if _, err := HashPassword(bad); err == nil {
			t.Errorf("HashPassword(len %d) succeeded, want an error", len(bad))
		}
	}
}

// TestPasswordHashesVerifiedByNginx serves rendered domains from real nginx and checks that
// the hashes HashPassword (and bcrypt) produce let the right password in and keep a wrong
// one out, that fixed answers and redirects are guarded by authentication and deny rules
// too, and that ACME challenges stay reachable without credentials.
func TestPasswordHashesVerifiedByNginx(t *testing.T) {
	t.Parallel()
	shaHash, err := HashPassword("s3cret: pass-phrase")
	if err != nil {
		t.Fatal(err)
	}
	bcryptHash, err := bcrypt.GenerateFromPassword([]byte("bcrypt pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := baseConfig()
	cfg.BindAddress = "127.0.0.1"
	cfg.HTTPPort = port
	cfg.HTTPSPort = freePort(t)
	cfg.Domains = []Domain{{
		Name: "auth.example.com",
		BasicAuthUsers: []BasicAuthUser{
			{User: "alice", PasswordHash: shaHash},
			{User: "bob", PasswordHash: string(bcryptHash)},
		},
		Routes: []Route{
			{Path: "/", Kind: RouteRespond, Status: 200, Body: "welcome"},
			{Match: MatchExact, Path: "/go", Kind: RouteRedirect, Code: 302, Target: "https://example.org/landing"},
		},
	}, {
		Name:   "denied.example.com",
		Deny:   []string{"127.0.0.0/8"},
		Routes: []Route{{Path: "/", Kind: RouteRespond, Status: 200, Body: "secret"}},
	}}
	r, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveNginx(t, r.Files, map[string]string{"tok-1": "tok-1.thumb"}, port)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name       string
		host       string
		path       string
		user, pass string
		wantStatus int
		wantBody   string
	}{
		{"no credentials", "auth.example.com", "/", "", "", http.StatusUnauthorized, ""},
		{"sha512 wrong password", "auth.example.com", "/", "alice", "s3cret: pass-phrasE", http.StatusUnauthorized, ""},
		{"sha512 right password", "auth.example.com", "/", "alice", "s3cret: pass-phrase", http.StatusOK, "welcome"},
		{"bcrypt right password", "auth.example.com", "/", "bob", "bcrypt pass", http.StatusOK, "welcome"},
		{"bcrypt wrong password", "auth.example.com", "/", "bob", "bcrypt pas", http.StatusUnauthorized, ""},
		{"unknown user", "auth.example.com", "/", "mallory", "s3cret: pass-phrase", http.StatusUnauthorized, ""},
		{"redirect without credentials", "auth.example.com", "/go", "", "", http.StatusUnauthorized, ""},
		{"redirect with credentials", "auth.example.com", "/go", "alice", "s3cret: pass-phrase", http.StatusFound, ""},
		{"acme challenge without credentials", "auth.example.com", "/.well-known/acme-challenge/tok-1", "", "", http.StatusOK, "tok-1.thumb"},
		{"denied address", "denied.example.com", "/", "", "", http.StatusForbidden, ""},
		{"acme challenge from denied address", "denied.example.com", "/.well-known/acme-challenge/tok-1", "", "", http.StatusOK, "tok-1.thumb"},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.wantStatus)
		}
		if tt.wantBody != "" && string(body) != tt.wantBody {
			t.Errorf("%s: body %q, want %q", tt.name, body, tt.wantBody)
		}
	}
}

// waitListening waits until nginx accepts connections on addr, failing with its error log if
// it exits first.
func waitListening(t *testing.T, addr string, exited <-chan error, dir string, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, stderr.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s", addr)
		}
	}
}
