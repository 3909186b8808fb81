package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Info describes a certificate.
type Info struct {
	// Names are the DNS names and IP addresses of the subject alternative names.
	Names     []string
	NotBefore time.Time
	NotAfter  time.Time
	// Issuer is the issuer's distinguished name.
	Issuer string
	// Serial is the serial number in lowercase hex.
	Serial string
	// Fingerprint is the SHA-256 of the certificate, lowercase hex.
	Fingerprint string
}

func infoFrom(c *x509.Certificate) Info {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	sum := sha256.Sum256(c.Raw)
	return Info{
		Names:       names,
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
		Issuer:      c.Issuer.String(),
		Serial:      hex.EncodeToString(c.SerialNumber.Bytes()),
		Fingerprint: hex.EncodeToString(sum[:]),
	}
}

// ParseBundle checks an uploaded certificate and key: certPEM must hold the
// leaf first and then its chain, each certificate signed by the next; keyPEM
// must hold the leaf's private key. The leaf must be valid now.
func ParseBundle(certPEM, keyPEM []byte) (Info, error) {
	return parseBundle(certPEM, keyPEM, time.Now())
}

func parseBundle(certPEM, keyPEM []byte, now time.Time) (Info, error) {
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(certPEM)
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return Info{}, errors.New("certificate: not PEM; paste the certificate starting with -----BEGIN CERTIFICATE-----")
		}
		if b.Type != "CERTIFICATE" {
			return Info{}, fmt.Errorf("certificate: found a %q block; the certificate field takes only CERTIFICATE blocks (put the key in the key field)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return Info{}, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
		rest = bytes.TrimSpace(rest)
	}
	if len(certs) == 0 {
		return Info{}, errors.New("certificate: empty; paste the certificate followed by its intermediates")
	}
	leaf := certs[0]
	if leaf.IsCA {
		return Info{}, errors.New("certificate: the first certificate is a CA certificate; put the server (leaf) certificate first, then its intermediates")
	}
	for i := 0; i+1 < len(certs); i++ {
		child, parent := certs[i], certs[i+1]
		if err := child.CheckSignatureFrom(parent); err != nil {
			return Info{}, fmt.Errorf("certificate chain: certificate %d (%s) is not signed by certificate %d (%s); order the chain leaf first, each followed by its issuer",
				i+1, child.Subject.CommonName, i+2, parent.Subject.CommonName)
		}
	}
	if now.Before(leaf.NotBefore) {
		return Info{}, fmt.Errorf("certificate: not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return Info{}, fmt.Errorf("certificate: expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		return Info{}, errors.New("certificate: names no host (no subject alternative names)")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return Info{}, fmt.Errorf("private key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return Info{}, errors.New("private key: does not match the certificate; upload the key the certificate was issued for")
	}
	return infoFrom(leaf), nil
}

// parseKey reads a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("not PEM; paste the key starting with -----BEGIN PRIVATE KEY-----")
	}
	if x509.IsEncryptedPEMBlock(b) { //nolint:staticcheck // detecting, not decrypting
		return nil, errors.New("the key is encrypted; upload it without a passphrase")
	}
	switch b.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse pkcs#8 key: %w", err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse rsa key: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse ec key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("found a %q block, want a private key", b.Type)
	}
}

// Served connects to addr (host:port) with TLS, sending sni as the server
// name, and describes the certificate presented.
func Served(ctx context.Context, addr, sni string) (Info, error) {
	var leaf *x509.Certificate
	cfg := &tls.Config{
		ServerName: sni,
		// Verification is skipped on purpose: Served records what a node
		// presents so it can be compared with what we stored, including an
		// expired, self-signed or wrong certificate. Nothing read over this
		// connection is trusted or used beyond that record, and no data is
		// sent. VerifyConnection captures the leaf.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server presented no certificate")
			}
			leaf = cs.PeerCertificates[0]
			return nil
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Info{}, fmt.Errorf("tls handshake with %s for %s: %w", addr, sni, err)
	}
	conn.Close()
	if leaf == nil {
		return Info{}, fmt.Errorf("tls handshake with %s for %s: no certificate captured", addr, sni)
	}
	return infoFrom(leaf), nil
}

// Mismatch compares the certificate we stored with the one a node serves
// and says how they differ; "" means they are the same certificate.
func Mismatch(stored, served Info) string {
	if stored.Fingerprint == served.Fingerprint {
		return ""
	}
	return fmt.Sprintf("the node serves a different certificate: serial %s for %s from %s, expiring %s; expected serial %s expiring %s",
		served.Serial, strings.Join(served.Names, ", "), served.Issuer, served.NotAfter.UTC().Format(time.RFC3339),
		stored.Serial, stored.NotAfter.UTC().Format(time.RFC3339))
}
