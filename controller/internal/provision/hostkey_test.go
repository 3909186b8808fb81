package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// authRecorder is an in-process SSH server on loopback that counts every
// authentication attempt it sees, of any method.
type authRecorder struct {
	mu       sync.Mutex
	attempts int
	port     int
	done     chan struct{}
}

func startRecorder(t *testing.T, hostKey ssh.Signer) *authRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &authRecorder{port: ln.Addr().(*net.TCPAddr).Port, done: make(chan struct{})}
	cfg := &ssh.ServerConfig{
		AuthLogCallback: func(ssh.ConnMetadata, string, error) {
			r.mu.Lock()
			r.attempts++
			r.mu.Unlock()
		},
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(hostKey)
	go func() {
		defer close(r.done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _, _, _ = ssh.NewServerConn(conn, cfg)
	}()
	return r
}

func (r *authRecorder) seen() int {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostKeyRefusedBeforeCredentials checks that neither an unknown nor a
// changed host key lets the client reach authentication.
func TestHostKeyRefusedBeforeCredentials(t *testing.T) {
	t.Parallel()
	serverKey := newSigner(t)
	otherKey := newSigner(t)
	serverFP := Fingerprint(serverKey.PublicKey())
	tests := []struct {
		name     string
		policy   HostKeyPolicy
		check    func(t *testing.T, err error)
		wantAuth bool
	}{
		{
			name:   "unknown",
			policy: HostKeyPolicy{},
			check: func(t *testing.T, err error) {
				var u *UnknownHostKeyError
				if !errors.As(err, &u) {
					t.Fatalf("err = %v, want *UnknownHostKeyError", err)
				}
				if u.Fingerprint != serverFP || u.Type != ssh.KeyAlgoED25519 {
					t.Fatalf("got %s %s, want ssh-ed25519 %s", u.Type, u.Fingerprint, serverFP)
				}
			},
		},
		{
			name:   "changed",
			policy: HostKeyPolicy{Approved: []KnownKey{{Type: ssh.KeyAlgoED25519, Fingerprint: Fingerprint(otherKey.PublicKey())}}},
			check: func(t *testing.T, err error) {
				var c *HostKeyChangedError
				if !errors.As(err, &c) {
					t.Fatalf("err = %v, want *HostKeyChangedError", err)
				}
				msg := err.Error()
				for _, want := range []string{"host key", "changed", serverFP, Fingerprint(otherKey.PublicKey())} {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q lacks %q", msg, want)
					}
				}
			},
		},
		{
			name:     "approved",
			policy:   HostKeyPolicy{Approved: []KnownKey{{Type: ssh.KeyAlgoED25519, Fingerprint: serverFP}}},
			wantAuth: true,
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "log in to") {
					t.Fatalf("err = %v, want a login failure (the recorder refuses every password)", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := startRecorder(t, serverKey)
			_, err := Dial(context.Background(), Target{
				Host: "127.0.0.1", Port: rec.port, User: "root", Auth: Auth{Password: "secret"},
			}, tt.policy)
			tt.check(t, err)
			if got := rec.seen(); (got > 0) != tt.wantAuth {
				t.Fatalf("server saw %d authentication attempts, want any: %v", got, tt.wantAuth)
			}
		})
	}
}

func TestGenerateKeyPair(t *testing.T) {
	t.Parallel()
	priv, line, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("private key does not parse: %v", err)
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || len(rest) != 0 {
		t.Fatalf("authorized_keys line %q: %v (rest %q)", line, err, rest)
	}
	if pub.Type() != ssh.KeyAlgoED25519 || Fingerprint(pub) != Fingerprint(signer.PublicKey()) {
		t.Fatalf("public key %s %s does not match the private key", pub.Type(), Fingerprint(pub))
	}
	priv2, _, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if string(priv2) == string(priv) {
		t.Fatal("two calls returned the same key")
	}
}
