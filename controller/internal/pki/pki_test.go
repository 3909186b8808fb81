package pki_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/agent/trust"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func csrFor(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadCARoundTrip(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := pki.LoadCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Pin() != ca.Pin() {
		t.Fatalf("pin changed on reload: %s != %s", loaded.Pin(), ca.Pin())
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := loaded.SignNode(csrFor(t, key), "7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate from reloaded ca does not verify against the original: %v", err)
	}

	other := newCA(t)
	otherKey, _ := other.KeyPEM()
	if _, err := pki.LoadCA(ca.CertPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key accepted: %v", err)
	}
	if _, err := pki.LoadCA([]byte("junk"), keyPEM); err == nil {
		t.Fatal("junk certificate accepted")
	}
}

func TestSignNode(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	good := csrFor(t, p256)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-3] ^= 0xff

	tests := []struct {
		name     string
		csr      []byte
		nodeID   string
		lifetime time.Duration
		wantErr  string
	}{
		{"p256", good, "42", time.Hour, ""},
		{"ed25519", csrFor(t, edKey), "9223372036854775807", time.Hour, ""},
		{"curve refused", csrFor(t, p224), "42", time.Hour, "not accepted"},
		{"bad signature", tampered, "42", time.Hour, "certificate request"},
		{"garbage", []byte("nope"), "42", time.Hour, "parse certificate request"},
		{"empty id", good, "", time.Hour, "empty"},
		{"leading zero", good, "042", time.Hour, "leading zeros"},
		{"zero", good, "0", time.Hour, "leading zeros"},
		{"not decimal", good, "4a", time.Hour, "decimal"},
		{"path injection", good, "1/../2", time.Hour, "decimal"},
		{"overflow", good, "9223372036854775808", time.Hour, "out of range"},
		{"no lifetime", good, "42", 0, "lifetime"},
		{"too long", good, "42", 2 * pki.MaxNodeLifetime, "lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := ca.SignNode(tc.csr, tc.nodeID, tc.lifetime)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, err := pki.NodeID(cert)
			if err != nil || id != tc.nodeID {
				t.Fatalf("NodeID = %q, %v; want %q", id, err, tc.nodeID)
			}
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
				t.Fatalf("ext key usage = %v, want client auth only", cert.ExtKeyUsage)
			}
			if got := cert.NotAfter.Sub(time.Now()); got > tc.lifetime || got < tc.lifetime-time.Minute {
				t.Fatalf("lifetime %s, want about %s", got, tc.lifetime)
			}
		})
	}
}

func TestNodeIDRejectsMalformedURIs(t *testing.T) {
	t.Parallel()
	mk := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, s := range uris {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, u)
		}
		return c
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"ok", mk("spiffe://x/y", "gatehouse://node/12"), ""},
		{"none", mk("spiffe://x/y"), "names no node"},
		{"two", mk("gatehouse://node/1", "gatehouse://node/2"), "more than one"},
		{"other host", mk("gatehouse://admin/1"), "malformed"},
		{"query", mk("gatehouse://node/1?x=2"), "malformed"},
		{"nested path", mk("gatehouse://node/1/2"), "decimal"},
		{"nil", nil, "no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := pki.NodeID(tc.cert)
			if tc.want == "" {
				if err != nil || id != "12" {
					t.Fatalf("NodeID = %q, %v", id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestIssueServerValidatesHosts(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	c, err := ca.IssueServer([]string{"controller.example", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Leaf.DNSNames) != 1 || len(c.Leaf.IPAddresses) != 2 {
		t.Fatalf("SANs = %v %v", c.Leaf.DNSNames, c.Leaf.IPAddresses)
	}
	for _, bad := range [][]string{nil, {"bad host"}, {"-x.example"}, {strings.Repeat("a", 64) + ".example"}} {
		if _, err := ca.IssueServer(bad); err == nil {
			t.Errorf("IssueServer(%q) accepted", bad)
		}
	}
}

// handshake runs one real TLS handshake over loopback TCP.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte{1})
		}
		srvErr <- err
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), client)
	if err != nil {
		<-srvErr
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		<-srvErr
		return tls.ConnectionState{}, err
	}
	return conn.ConnectionState(), <-srvErr
}

func TestPinnedClientVerification(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	foreign := newCA(t)
	serverCert, err := ca.IssueServer([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, err := foreign.IssueServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	// A node certificate from the right CA must not pass as the controller.
	nodeKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nodeLeaf, err := ca.SignNode(csrFor(t, nodeKey), "5", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nodeAsServer := &tls.Certificate{Certificate: [][]byte{nodeLeaf.Raw, ca.Certificate().Raw}, PrivateKey: nodeKey}
	// A server certificate whose chain omits the CA cannot be pinned.
	noChain := &tls.Certificate{Certificate: serverCert.Certificate[:1], PrivateKey: serverCert.PrivateKey}

	tests := []struct {
		name       string
		cert       *tls.Certificate
		pin        string
		serverName string
		wantErr    string
	}{
		{"pinned", serverCert, ca.Pin(), "127.0.0.1", ""},
		{"pinned dns", serverCert, ca.Pin(), "localhost", ""},
		{"pin mismatch", serverCert, foreign.Pin(), "127.0.0.1", "matches ca pin"},
		{"foreign ca", foreignCert, ca.Pin(), "127.0.0.1", "matches ca pin"},
		{"wrong name", serverCert, ca.Pin(), "other.example", "verify chain"},
		{"client cert as server", nodeAsServer, ca.Pin(), "", "verify chain"},
		{"ca missing from chain", noChain, ca.Pin(), "127.0.0.1", "matches ca pin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := pki.ServerTLSConfig(trust.NewHotCert(tc.cert), ca.Pool())
			cli, err := pki.ClientTLSConfig(tc.pin, tc.serverName, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = handshake(t, srv, cli)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	for _, bad := range []string{"", "sha1:abcd", "sha256:" + strings.Repeat("z", 64), "sha256:abc"} {
		if _, err := trust.ParsePin(bad); err == nil {
			t.Errorf("ParsePin(%q) accepted", bad)
		}
	}
	got, err := trust.ParsePin(strings.ToUpper(strings.TrimPrefix(ca.Pin(), "sha256:")))
	if err == nil {
		t.Fatalf("pin without prefix accepted: %s", got)
	}
	got, err = trust.ParsePin("sha256:" + strings.ToUpper(strings.TrimPrefix(ca.Pin(), "sha256:")))
	if err != nil || got != ca.Pin() {
		t.Fatalf("ParsePin upper = %q, %v", got, err)
	}
}

func TestHotSwapServerAndClientCertificates(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	first, _ := ca.IssueServer([]string{"127.0.0.1"})
	second, _ := ca.IssueServer([]string{"127.0.0.1"})
	srvHot := trust.NewHotCert(first)

	key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf1, _ := ca.SignNode(csrFor(t, key1), "1", time.Hour)
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf2, _ := ca.SignNode(csrFor(t, key2), "1", time.Hour)
	cliHot := trust.NewHotCert(&tls.Certificate{Certificate: [][]byte{leaf1.Raw}, PrivateKey: key1})

	srv := pki.ServerTLSConfig(srvHot, ca.Pool())
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	cli, err := pki.ClientTLSConfig(ca.Pin(), "127.0.0.1", cliHot)
	if err != nil {
		t.Fatal(err)
	}
	st, err := handshake(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	if !st.PeerCertificates[0].Equal(first.Leaf) {
		t.Fatal("first handshake did not see the first server certificate")
	}
	srvHot.Store(second)
	cliHot.Store(&tls.Certificate{Certificate: [][]byte{leaf2.Raw}, PrivateKey: key2})
	st, err = handshake(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	if !st.PeerCertificates[0].Equal(second.Leaf) {
		t.Fatal("server certificate was not swapped")
	}
}

func TestTLSRefusesExpiredNodeCertificate(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	serverCert, _ := ca.IssueServer([]string{"127.0.0.1"})
	// Sign a certificate that expired before now: certificate times have
	// one-second precision, so a one-nanosecond lifetime ends in the past.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, err := ca.SignNode(csrFor(t, key), "3", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.NotAfter.Before(time.Now()) {
		t.Fatalf("test certificate not expired: %s", leaf.NotAfter)
	}
	srv := pki.ServerTLSConfig(trust.NewHotCert(serverCert), ca.Pool())
	cli, _ := pki.ClientTLSConfig(ca.Pin(), "127.0.0.1", trust.NewHotCert(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}))
	if _, err := handshake(t, srv, cli); err == nil {
		t.Fatal("expired client certificate accepted")
	}
}
