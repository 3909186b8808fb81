package acmetest

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

func TestDirectoryOverTLS(t *testing.T) {
	dns := dnstest.New(t, "example.test")
	s := New(t, Options{DNSServer: dns.Addr()})

	// A client that does not trust the test CA must refuse the server.
	if _, err := http.Get(s.DirectoryURL); err == nil {
		t.Fatal("directory fetched without trusting the test TLS certificate")
	}

	resp, err := s.Client.Get(s.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder string `json:"newOrder"`
		Meta     struct {
			CAAIdentities []string `json:"caaIdentities"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(dir.NewOrder, "/order-plz") {
		t.Fatalf("newOrder = %q", dir.NewOrder)
	}
	if !slices.Equal(dir.Meta.CAAIdentities, []string{CAAIdentity}) {
		t.Fatalf("caaIdentities = %v", dir.Meta.CAAIdentities)
	}
	if s.Orders() != 0 {
		t.Fatalf("orders = %d before any was placed", s.Orders())
	}

	root := s.Root()
	if !root.IsCA || root.Subject.String() != root.Issuer.String() {
		t.Fatalf("root %s is not a self-signed CA", root.Subject)
	}
	if b, _ := pem.Decode(s.RootPEM()); b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("RootPEM is not a PEM certificate")
	}
}
