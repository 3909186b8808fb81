package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

type testCert struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

func issue(t *testing.T, tmpl *x509.Certificate, parent *testCert) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = sn
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{
		cert:    c,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
}

func leafTemplate(names ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

func mustSelfSigned(t *testing.T, name string) *testCert {
	t.Helper()
	return issue(t, leafTemplate(name), nil)
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func TestParseBundle(t *testing.T) {
	t.Parallel()
	root := issue(t, caTemplate("Test Root"), nil)
	inter := issue(t, caTemplate("Test Intermediate"), root)
	leaf := issue(t, leafTemplate("shop.example.com", "www.shop.example.com"), inter)
	other := issue(t, leafTemplate("shop.example.com"), inter)
	expired := issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "old.example.com"}, DNSNames: []string{"old.example.com"},
		NotBefore: time.Now().Add(-100 * 24 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	}, inter)

	info, err := ParseBundle(cat(leaf.certPEM, inter.certPEM), leaf.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Names, []string{"shop.example.com", "www.shop.example.com"}) || !strings.Contains(info.Issuer, "Test Intermediate") {
		t.Fatalf("info = %+v", info)
	}
	if !info.NotAfter.Equal(leaf.cert.NotAfter) || len(info.Fingerprint) != 64 {
		t.Fatalf("info = %+v", info)
	}

	tests := []struct {
		name    string
		certPEM []byte
		keyPEM  []byte
		want    string
	}{
		{"mismatched key", cat(leaf.certPEM, inter.certPEM), other.keyPEM, "does not match the certificate"},
		{"chain out of order", cat(inter.certPEM, leaf.certPEM), leaf.keyPEM, "first certificate is a CA certificate"},
		{"wrong issuer in chain", cat(leaf.certPEM, root.certPEM), leaf.keyPEM, "is not signed by certificate 2"},
		{"expired", cat(expired.certPEM, inter.certPEM), expired.keyPEM, "expired on"},
		{"key in certificate field", cat(leaf.certPEM, leaf.keyPEM), leaf.keyPEM, `found a "PRIVATE KEY" block`},
		{"garbage", []byte("hello"), leaf.keyPEM, "not PEM"},
		{"empty", nil, leaf.keyPEM, "empty"},
		{"no key", leaf.certPEM, nil, "private key: not PEM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseBundle(tc.certPEM, tc.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func serveTLS(t *testing.T, certs map[string]*testCert) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c := certs[hello.ServerName]
			if c == nil {
				c = certs[""]
			}
			pair, err := tls.X509KeyPair(c.certPEM, c.keyPEM)
			return &pair, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}(conn)
		}
	}()
	return ln.Addr().String()
}

func TestServedAndMismatch(t *testing.T) {
	t.Parallel()
	stored := mustSelfSigned(t, "app.example.com")
	stale := mustSelfSigned(t, "app.example.com")
	fallback := mustSelfSigned(t, "default.invalid")
	addr := serveTLS(t, map[string]*testCert{
		"app.example.com":   stored,
		"stale.example.com": stale,
		"":                  fallback,
	})
	storedInfo := infoFrom(stored.cert)
	ctx := context.Background()

	got, err := Served(ctx, addr, "app.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != storedInfo.Fingerprint {
		t.Fatalf("served %+v, want the stored certificate", got)
	}
	if m := Mismatch(storedInfo, got); m != "" {
		t.Fatalf("same certificate reported as mismatch: %s", m)
	}

	for _, sni := range []string{"stale.example.com", "other.example.com"} {
		got, err := Served(ctx, addr, sni)
		if err != nil {
			t.Fatal(err)
		}
		m := Mismatch(storedInfo, got)
		if m == "" || !strings.Contains(m, got.Serial) || !strings.Contains(m, storedInfo.Serial) {
			t.Fatalf("sni %s: mismatch = %q", sni, m)
		}
	}
}

func TestServedUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Served(context.Background(), addr, "x.example.com"); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v", err)
	}
}
