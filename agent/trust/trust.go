// Package trust holds the TLS trust rules shared by the agent and the
// controller: the CA pin format, the agent's pinned verification of the
// controller, and certificates that can be swapped while connections live.
// It depends only on the standard library so the agent can link it.
package trust

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Pin returns "sha256:<hex>" of the SHA-256 of cert's SubjectPublicKeyInfo.
func Pin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParsePin checks a pin's form and returns its canonical lower-case text.
func ParsePin(pin string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(pin), "sha256:")
	if !ok {
		return "", errors.New(`ca pin must start with "sha256:"`)
	}
	rest = strings.ToLower(rest)
	if len(rest) != 64 {
		return "", fmt.Errorf("ca pin must have 64 hex digits after \"sha256:\", got %d characters", len(rest))
	}
	if _, err := hex.DecodeString(rest); err != nil {
		return "", errors.New(`ca pin must have only hex digits after "sha256:"`)
	}
	return "sha256:" + rest, nil
}

// VerifyChain checks that the presented chain (leaf first) contains a CA
// certificate whose public key matches pin and that the leaf chains to that CA
// for keyUsage. When dnsName is not empty the leaf must also be valid for it.
func VerifyChain(pin string, certs []*x509.Certificate, dnsName string, keyUsage x509.ExtKeyUsage, now time.Time) (*x509.Certificate, error) {
	pin, err := ParsePin(pin)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("peer presented no certificate")
	}
	var root *x509.Certificate
	for _, c := range certs {
		if c.IsCA && Pin(c) == pin {
			root = c
			break
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no certificate in the presented chain matches ca pin %s", pin)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if c != root {
			inter.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       dnsName,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{keyUsage},
	})
	if err != nil {
		return nil, fmt.Errorf("verify chain against pinned ca: %w", err)
	}
	for _, ch := range chains {
		if ch[len(ch)-1].Equal(root) {
			return root, nil
		}
	}
	return nil, errors.New("chain does not end at the pinned ca")
}

// ClientConfig returns the agent's TLS configuration for the controller. The
// standard verification is replaced by VerifyConnection, which enforces the
// pin and a full chain verification against the pinned CA (server auth, and
// serverName when not empty). cert supplies the client certificate; nil or an
// empty HotCert presents none (enrollment).
func ClientConfig(pin, serverName string, cert *HotCert) (*tls.Config, error) {
	pin, err := ParsePin(pin)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		// Verification is not skipped: VerifyConnection below runs on every
		// handshake and is the sole, stricter verifier (pinned root only).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := VerifyChain(pin, cs.PeerCertificates, serverName, x509.ExtKeyUsageServerAuth, time.Now())
			return err
		},
	}
	if cert != nil {
		cfg.GetClientCertificate = cert.GetClientCertificate
	}
	return cfg, nil
}

// HotCert holds a certificate that can be replaced while connections use it.
type HotCert struct {
	p atomic.Pointer[tls.Certificate]
}

// NewHotCert returns a HotCert holding c (which may be nil).
func NewHotCert(c *tls.Certificate) *HotCert {
	h := &HotCert{}
	if c != nil {
		h.p.Store(c)
	}
	return h
}

// Store replaces the certificate for new handshakes.
func (h *HotCert) Store(c *tls.Certificate) { h.p.Store(c) }

// Load returns the current certificate or nil.
func (h *HotCert) Load() *tls.Certificate { return h.p.Load() }

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (h *HotCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := h.p.Load()
	if c == nil {
		return nil, errors.New("no server certificate loaded")
	}
	return c, nil
}

// GetClientCertificate presents the current certificate, or none when empty
// (tls.Config.GetClientCertificate).
func (h *HotCert) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := h.p.Load(); c != nil {
		return c, nil
	}
	return &tls.Certificate{}, nil
}
