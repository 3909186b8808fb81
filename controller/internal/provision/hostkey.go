package provision

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KnownKey identifies an SSH host key by its type (e.g. "ssh-ed25519") and
// its SHA-256 fingerprint in OpenSSH form ("SHA256:...").
type KnownKey struct {
	Type        string
	Fingerprint string
}

func (k KnownKey) String() string { return k.Type + " " + k.Fingerprint }

// HostKeyPolicy says which host keys a connection accepts. With no Approved
// keys every key is unknown and the connection stops at *UnknownHostKeyError,
// so the fingerprint can be shown to an admin for approval.
type HostKeyPolicy struct {
	Approved []KnownKey
}

// UnknownHostKeyError is returned when the server's key has not been approved
// yet. The connection was aborted during key exchange, before any credential
// was sent.
type UnknownHostKeyError struct {
	Host        string
	Type        string
	Fingerprint string
}

func (e *UnknownHostKeyError) Error() string {
	return fmt.Sprintf("unknown host key for %s: %s %s; compare it with the server's key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and approve it to continue",
		e.Host, e.Type, e.Fingerprint)
}

// HostKeyChangedError is returned when approved keys exist and the server
// presented none of them. Credentials were not sent.
type HostKeyChangedError struct {
	Host string
	Want []KnownKey
	Got  KnownKey
}

func (e *HostKeyChangedError) Error() string {
	want := make([]string, len(e.Want))
	for i, k := range e.Want {
		want[i] = k.String()
	}
	return fmt.Sprintf("host key for %s changed: expected %s, got %s; nothing was sent. If the server was reinstalled, verify the new key on the server and approve it; otherwise someone may be intercepting the connection",
		e.Host, strings.Join(want, " or "), e.Got)
}

// Fingerprint returns the OpenSSH SHA256 fingerprint of a public key.
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// check decides on a presented host key.
func (p HostKeyPolicy) check(host string, key ssh.PublicKey) error {
	got := KnownKey{Type: key.Type(), Fingerprint: Fingerprint(key)}
	if len(p.Approved) == 0 {
		return &UnknownHostKeyError{Host: host, Type: got.Type, Fingerprint: got.Fingerprint}
	}
	for _, k := range p.Approved {
		if k.Type == got.Type && k.Fingerprint == got.Fingerprint {
			return nil
		}
	}
	return &HostKeyChangedError{Host: host, Want: append([]KnownKey(nil), p.Approved...), Got: got}
}

// algorithms restricts host key negotiation to the approved key types, so a
// server holding several keys presents the one that was approved rather than
// one that merely sorts first.
func (p HostKeyPolicy) algorithms() []string {
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range p.Approved {
		if k.Type == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(k.Type)
	}
	return algos
}

// GenerateKeyPair creates an ed25519 key for the controller to log in with.
// It returns the private key in OpenSSH PEM form and the public key as an
// authorized_keys line (with a trailing newline).
func GenerateKeyPair() (privatePEM []byte, authorizedKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "gatehouse")
	if err != nil {
		return nil, "", fmt.Errorf("encode private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("encode public key: %w", err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sshPub)), "\n") + " gatehouse\n"
	return pem.EncodeToMemory(block), line, nil
}
