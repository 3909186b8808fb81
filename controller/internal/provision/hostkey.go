package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

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

// errScanned stops a scan's handshake once the host key is known.
var errScanned = errors.New("host key read")

// ScanHostKey connects to host:port and returns the host key the server
// presents, aborting the handshake before authentication: no user name or
// credential is sent.
func ScanHostKey(ctx context.Context, host string, port int) (KnownKey, error) {
	if err := errors.Join(ValidateHost(host), ValidatePort(port)); err != nil {
		return KnownKey{}, err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return KnownKey{}, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var got KnownKey
	cfg := &ssh.ClientConfig{
		User: "gatehouse-scan",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = KnownKey{Type: key.Type(), Fingerprint: Fingerprint(key)}
			return errScanned
		},
		Timeout: dialTimeout,
	}
	_, _, _, err = ssh.NewClientConn(conn, addr, cfg)
	if got.Fingerprint != "" {
		return got, nil
	}
	if ctx.Err() != nil {
		return KnownKey{}, fmt.Errorf("read host key of %s: %w", addr, ctx.Err())
	}
	return KnownKey{}, fmt.Errorf("read host key of %s: %w", addr, err)
}

// KeyTypes are the host key types an admin may approve.
var KeyTypes = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA}

var fingerprintRE = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// ValidateKnownKey checks a key type and fingerprint typed or pasted by an
// admin: a known type and an OpenSSH SHA256 fingerprint.
func ValidateKnownKey(k KnownKey) error {
	var errs []error
	if !slices.Contains(KeyTypes, k.Type) {
		errs = append(errs, fmt.Errorf("type: %q is not one of %s", k.Type, strings.Join(KeyTypes, ", ")))
	}
	if !fingerprintRE.MatchString(k.Fingerprint) {
		errs = append(errs, errors.New("fingerprint: must look like SHA256:<43 characters of base64> (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub prints it)"))
	}
	return errors.Join(errs...)
}
