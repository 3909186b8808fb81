package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/agent/trust"
)

// File names inside StateDir.
const (
	keyFile   = "agent.key"
	certFile  = "agent.crt"
	chainFile = "ca.crt"
)

// identity is the agent's key, certificate and the CA chain it trusts.
type identity struct {
	nodeID string
	tls    *tls.Certificate
	leaf   *x509.Certificate
	chain  []*x509.Certificate
}

// ensureStateDir creates dir as 0700 and tightens it if it exists.
func ensureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("protect state dir: %w", err)
	}
	return nil
}

// newKeyAndCSR creates a fresh P-256 key and a CSR for it.
func newKeyAndCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gatehouse-agent"}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	return key, csr, nil
}

// nodeIDFromCert extracts the node id from the gatehouse://node/<id> URI SAN.
func nodeIDFromCert(c *x509.Certificate) (string, error) {
	var id string
	for _, u := range c.URIs {
		if u.Scheme != "gatehouse" {
			continue
		}
		if u.Host != "node" || id != "" {
			return "", errors.New("certificate does not name exactly one node")
		}
		id = strings.TrimPrefix(u.Path, "/")
	}
	if id == "" || len(id) > 19 || id[0] == '0' || strings.Trim(id, "0123456789") != "" {
		return "", fmt.Errorf("certificate names no valid node (%q)", id)
	}
	return id, nil
}

// buildIdentity checks a certificate issued for key against the pinned CA and
// returns the identity to use.
func buildIdentity(pin string, key crypto.Signer, certDER []byte, chainDER [][]byte, now time.Time) (*identity, error) {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("issued certificate is not for this agent's key")
	}
	certs := []*x509.Certificate{leaf}
	var chain []*x509.Certificate
	for i, d := range chainDER {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("parse ca chain entry %d: %w", i, err)
		}
		chain = append(chain, c)
		certs = append(certs, c)
	}
	if _, err := trust.VerifyChain(pin, certs, "", x509.ExtKeyUsageClientAuth, now); err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	nodeID, err := nodeIDFromCert(leaf)
	if err != nil {
		return nil, err
	}
	tc := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return &identity{nodeID: nodeID, tls: tc, leaf: leaf, chain: chain}, nil
}

// saveIdentity writes key, certificate and chain with 0600 permissions, each
// file replaced atomically.
func saveIdentity(dir string, id *identity) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.tls.PrivateKey)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	var chainPEM []byte
	for _, c := range id.chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	files := []struct {
		name string
		data []byte
	}{
		{chainFile, chainPEM},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		// The certificate goes last: its presence marks a complete identity.
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.leaf.Raw})},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadIdentity reads a saved identity; it returns fs.ErrNotExist when the
// agent has not enrolled yet.
func loadIdentity(dir, pin string, now time.Time) (*identity, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fs.ErrNotExist
		}
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	chainPEM, err := os.ReadFile(filepath.Join(dir, chainFile))
	if err != nil {
		return nil, fmt.Errorf("read ca chain: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("key file holds no pem block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return nil, errors.New("certificate file holds no pem block")
	}
	var chain [][]byte
	for rest := chainPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		chain = append(chain, b.Bytes)
	}
	return buildIdentity(pin, signer, cb.Bytes, chain, now)
}
