// Package pki is the controller's certificate authority for agents: it creates
// and loads the CA, issues the gRPC listener's certificate, signs node
// certificates that name their node in a URI SAN, and builds the TLS
// configurations both ends use, including the agent's pinned verification.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/agent/trust"
)

const (
	// NodeURIScheme and NodeURIHost form a node's identity URI gatehouse://node/<id>.
	NodeURIScheme = "gatehouse"
	NodeURIHost   = "node"

	// DefaultCALifetime is the validity of a new CA.
	DefaultCALifetime = 10 * 365 * 24 * time.Hour
	// ServerLifetime is the validity of a listener certificate from IssueServer;
	// the controller issues a fresh one at every start.
	ServerLifetime = 90 * 24 * time.Hour
	// MaxNodeLifetime bounds SignNode's lifetime argument.
	MaxNodeLifetime = 366 * 24 * time.Hour

	// maxBackdate tolerates clock skew between controller and agent; short
	// lifetimes are backdated by a tenth of the lifetime at most so that
	// "two thirds of the validity" stays meaningful.
	maxBackdate = 5 * time.Minute
)

// CA is an ECDSA P-256 certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// NewCA creates a self-signed CA named commonName.
func NewCA(commonName string, lifetime time.Duration) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("ca common name is empty")
	}
	if lifetime <= 0 {
		return nil, errors.New("ca lifetime must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-maxBackdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	return &CA{cert: cert, key: key, der: der}, nil
}

// LoadCA loads a CA from its PEM certificate and PEM (PKCS#8 or SEC 1) key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca certificate is not a signing ca")
	}
	key, err := parseECKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("ca key does not match ca certificate")
	}
	return &CA{cert: cert, key: key, der: cert.Raw}, nil
}

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate as PEM.
func (c *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

// KeyPEM returns the CA key as PKCS#8 PEM; the caller encrypts it at rest.
func (c *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("marshal ca key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Chain returns the DER chain handed to agents: the CA certificate.
func (c *CA) Chain() [][]byte { return [][]byte{c.der} }

// Pool returns a pool holding only this CA, for verifying client certificates.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Pin returns this CA's pin; see Pin.
func (c *CA) Pin() string { return Pin(c.cert) }

// IssueServer issues a listener certificate for hosts (DNS names or IP
// addresses) with a fresh key.
func (c *CA) IssueServer(hosts []string) (*tls.Certificate, error) {
	if len(hosts) == 0 {
		return nil, errors.New("server certificate needs at least one host name or address")
	}
	tmpl := &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if err := validDNSName(h); err != nil {
			return nil, fmt.Errorf("server host %q: %w", h, err)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(h))
	}
	tmpl.Subject = pkix.Name{CommonName: hosts[0]}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	cert, err := c.sign(tmpl, key.Public(), ServerLifetime)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{cert.Raw, c.der}, PrivateKey: key, Leaf: cert}, nil
}

// SignNode verifies a PKCS#10 request and issues a client certificate for
// nodeID, valid for lifetime, naming the node in the URI SAN
// gatehouse://node/<nodeID>. Only ECDSA P-256/P-384 and Ed25519 keys are accepted.
func (c *CA) SignNode(csrDER []byte, nodeID string, lifetime time.Duration) (*x509.Certificate, error) {
	if err := ValidNodeID(nodeID); err != nil {
		return nil, err
	}
	if lifetime <= 0 || lifetime > MaxNodeLifetime {
		return nil, fmt.Errorf("node certificate lifetime %s is outside (0, %s]", lifetime, MaxNodeLifetime)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	if err := acceptableKey(csr.PublicKey); err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "node " + nodeID, Organization: []string{"Gatehouse nodes"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{NodeURI(nodeID)},
	}
	return c.sign(tmpl, csr.PublicKey, lifetime)
}

func (c *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, lifetime time.Duration) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-min(maxBackdate, lifetime/10))
	tmpl.NotAfter = now.Add(lifetime)
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	return cert, nil
}

// NodeURI returns gatehouse://node/<nodeID>.
func NodeURI(nodeID string) *url.URL {
	return &url.URL{Scheme: NodeURIScheme, Host: NodeURIHost, Path: "/" + nodeID}
}

// NodeID returns the node id named by cert's URI SAN. A certificate must name
// exactly one node.
func NodeID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("no certificate")
	}
	var id string
	for _, u := range cert.URIs {
		if u.Scheme != NodeURIScheme {
			continue
		}
		if u.Host != NodeURIHost || u.User != nil || u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") {
			return "", fmt.Errorf("malformed node uri %q", u.String())
		}
		if id != "" {
			return "", errors.New("certificate names more than one node")
		}
		id = strings.TrimPrefix(u.Path, "/")
		if err := ValidNodeID(id); err != nil {
			return "", err
		}
	}
	if id == "" {
		return "", errors.New("certificate names no node")
	}
	return id, nil
}

// ValidNodeID checks that id is a positive decimal int64 without leading zeros.
func ValidNodeID(id string) error {
	if id == "" {
		return errors.New("node id is empty")
	}
	if len(id) > 19 {
		return fmt.Errorf("node id %.20q is too long", id)
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return fmt.Errorf("node id %q must be decimal digits only", id)
		}
	}
	if id[0] == '0' {
		return fmt.Errorf("node id %q must be positive without leading zeros", id)
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return fmt.Errorf("node id %q is out of range", id)
	}
	return nil
}

// Pin returns the pin agents use for cert: "sha256:<hex of SHA-256(SPKI)>".
func Pin(cert *x509.Certificate) string { return trust.Pin(cert) }

// ParseCertificatePEM parses the first CERTIFICATE block of data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block in pem")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func parseECKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no pem block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse pkcs8 key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want ecdsa", k)
		}
		return ek, nil
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected pem block %q", block.Type)
	}
}

func acceptableKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ecdsa curve %s is not accepted; use P-256 or P-384", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("key type %T is not accepted; use ecdsa P-256", pub)
	}
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func validDNSName(h string) error {
	if len(h) == 0 || len(h) > 253 {
		return errors.New("must be 1 to 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return errors.New("each label must be 1 to 63 characters")
		}
		for i, r := range label {
			ok := r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
			if !ok || (r == '-' && (i == 0 || i == len(label)-1)) {
				return errors.New("only letters, digits and inner hyphens are allowed")
			}
		}
	}
	return nil
}
