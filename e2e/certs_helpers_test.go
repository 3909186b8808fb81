package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/acmetest"
)

// certsView is the part of GET /api/v1/domains/{id}/tls the tests read.
type certsView struct {
	Policy struct {
		Mode      string `json:"mode"`
		Challenge string `json:"challenge"`
		Failures  int    `json:"failures"`
		LastError string `json:"last_error"`
	} `json:"policy"`
	Certificate *certsCertView  `json:"certificate"`
	History     []certsCertView `json:"history"`
	DNS         struct {
		Status  string `json:"status"`
		Summary string `json:"summary"`
		Results []struct {
			Name    string `json:"name"`
			Kind    string `json:"kind"`
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"results"`
	} `json:"dns"`
	Served []certsServedView `json:"served"`
	Tasks  []certsTaskView   `json:"tasks"`
}

type certsCertView struct {
	Names       []string `json:"names"`
	Serial      string   `json:"serial"`
	Fingerprint string   `json:"fingerprint"`
	Source      string   `json:"source"`
	Challenge   string   `json:"challenge"`
	Status      string   `json:"status"`
}

type certsServedView struct {
	Server      string `json:"server"`
	Address     string `json:"address"`
	Fingerprint string `json:"fingerprint"`
	Serial      string `json:"serial"`
	Matches     bool   `json:"matches"`
	Message     string `json:"message"`
}

type certsTaskView struct {
	ID     int    `json:"id"`
	Status string `json:"status"`
	Log    string `json:"log"`
	Error  string `json:"error"`
}

func (c *controllerProc) certsStatus(domainID int) certsView {
	c.t.Helper()
	var v certsView
	c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/domains/%d/tls", domainID), nil, &v)
	return v
}

// certsIssue starts an issuance through the API and waits for its task to end; the
// issuance must succeed.
func (c *controllerProc) certsIssue(domainID int) certsTaskView {
	c.t.Helper()
	var started struct {
		TaskID int `json:"task_id"`
	}
	c.proxyAPI(202, "POST", fmt.Sprintf("/api/v1/domains/%d/certificate/issue", domainID), nil, &started)
	if started.TaskID == 0 {
		c.t.Fatal("issue returned no task id")
	}
	var task certsTaskView
	eventually(c.t, 60*time.Second, fmt.Sprintf("issuance task %d to end", started.TaskID), func() bool {
		c.proxyAPI(200, "GET", fmt.Sprintf("/api/v1/certificate-tasks/%d", started.TaskID), nil, &task)
		return task.Status != "running"
	})
	if task.Status != "succeeded" {
		c.t.Fatalf("issuance task %d %s: %s\n%s", task.ID, task.Status, task.Error, task.Log)
	}
	return task
}

// certsPebbleTLSFile writes the certificate Pebble's ACME API is served with to a PEM
// file, for the controller's acme_ca_roots.
func certsPebbleTLSFile(t *testing.T, ca *acmetest.Server) string {
	t.Helper()
	host := strings.TrimPrefix(ca.DirectoryURL, "https://")
	host, _, _ = strings.Cut(host, "/")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: ca.TLSRoots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("dial pebble: %v", err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	path := filepath.Join(t.TempDir(), "pebble-tls.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// certsClient is a client of the node as a browser would be one: names are resolved by
// the test's DNS server (never the system's), and TLS trusts only roots. Redirects are
// not followed and every request gets a new connection, so it meets the current workers.
type certsClient struct {
	dialer *net.Dialer
	roots  *x509.CertPool
	http   *http.Client
}

func newCertsClient(dnsAddr string, roots *x509.CertPool) *certsClient {
	d := &net.Dialer{Timeout: 5 * time.Second}
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, dnsAddr)
	}}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Resolver: resolver}
	return &certsClient{dialer: dialer, roots: roots, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext:       dialer.DialContext,
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// handshake connects to name:port with name as SNI and returns the verified leaf.
func (cc *certsClient) handshake(name string, port int) (*x509.Certificate, error) {
	d := tls.Dialer{NetDialer: cc.dialer, Config: &tls.Config{ServerName: name, RootCAs: cc.roots, MinVersion: tls.VersionTLS12}}
	conn, err := d.Dial("tcp", net.JoinHostPort(name, fmt.Sprint(port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	if len(st.VerifiedChains) == 0 {
		return nil, fmt.Errorf("no verified chain for %s", name)
	}
	return st.VerifiedChains[0][0], nil
}

// get fetches url and returns what came back.
func (cc *certsClient) get(url string) hit {
	resp, err := cc.http.Get(url)
	if err != nil {
		return hit{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return hit{code: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

// certsFingerprint is a certificate's SHA-256 as the API shows it: lowercase hex.
func certsFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
