// Package acmetest runs Pebble, the ACME test CA, inside the test process.
//
// The CA serves its ACME API over TLS on a loopback port, validates
// challenges against a DNS server the test controls (see dnstest) and, for
// HTTP-01, against a port the test chooses. Nothing leaves the machine.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// CAAIdentity is the CA identity Pebble announces in its directory and the
// value a CAA record must name to permit it.
const CAAIdentity = "pebble.letsencrypt.org"

// Options configure the CA.
type Options struct {
	// DNSServer is the host:port Pebble's validation authority asks for
	// A/AAAA/TXT records (over TCP). Required: Pebble must not use the
	// system resolver in tests.
	DNSServer string
	// HTTPPort is the port HTTP-01 validation connects to on the address the
	// name resolves to. Zero means 80.
	HTTPPort int
	// Blocklist lists domains Pebble refuses to issue for, subdomains
	// included. Pebble compares label by label and panics on a requested name
	// with fewer labels than a blocked one, so block short names
	// ("blocked.test") and request longer ones.
	Blocklist []string
	// Log receives Pebble's log lines; nil discards them.
	Log io.Writer
}

// Server is a running Pebble.
type Server struct {
	// DirectoryURL is the ACME directory to give a client.
	DirectoryURL string
	// Client trusts the CA's TLS certificate; use it for every ACME request.
	Client *http.Client
	// TLSRoots trusts the CA's TLS certificate (not the issuing hierarchy).
	TLSRoots *x509.CertPool

	ca  *ca.CAImpl
	srv *httptest.Server

	mu     sync.Mutex
	orders int
}

// New starts Pebble and stops it when the test ends. It sets
// PEBBLE_VA_NOSLEEP=1 (validate at once, no random sleeps),
// PEBBLE_WFE_NONCEREJECT=0 (no deliberate bad-nonce errors) and
// PEBBLE_AUTHZREUSE=0 (a fresh authorization per order) and clears
// PEBBLE_VA_ALWAYS_VALID, through t.Setenv: a test using it cannot be
// parallel.
func New(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.DNSServer == "" {
		t.Fatal("acmetest: Options.DNSServer is required so validation never uses the system resolver")
	}
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "")

	httpPort := opts.HTTPPort
	if httpPort == 0 {
		httpPort = 80
	}
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	logger := log.New(w, "pebble ", log.LstdFlags)

	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "The default profile"},
	})
	validator := va.New(logger, httpPort, 0, false, opts.DNSServer, store)
	for _, d := range opts.Blocklist {
		if err := store.AddBlockedDomain(d); err != nil {
			t.Fatalf("acmetest: block %s: %v", d, err)
		}
	}
	// Retry-After of one second on pending authorizations and orders keeps
	// client polling quick.
	front := wfe.New(logger, store, validator, authority, []string{CAAIdentity}, false, false, 1, 1)

	s := &Server{ca: authority}
	s.srv = httptest.NewTLSServer(s.observe(front.Handler()))
	t.Cleanup(s.srv.Close)

	s.DirectoryURL = s.srv.URL + wfe.DirectoryPath
	s.Client = s.srv.Client()
	s.TLSRoots = x509.NewCertPool()
	s.TLSRoots.AddCert(s.srv.Certificate())
	return s
}

// observe counts new orders and asks clients to poll challenges after one
// second: Pebble sends no Retry-After on a challenge response, and lego
// would otherwise wait five.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/chalZ/") {
			w.Header().Set("Retry-After", "1")
		}
		next.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" && rec.status == http.StatusCreated {
			s.mu.Lock()
			s.orders++
			s.mu.Unlock()
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Orders is the number of orders the CA has created.
func (s *Server) Orders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders
}

// Root is the root certificate of the issuing hierarchy.
func (s *Server) Root() *x509.Certificate { return s.ca.GetRootCert(0).Cert }

// RootPEM is Root in PEM form.
func (s *Server) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.GetRootCert(0).DER})
}

// Roots is a pool holding Root, for verifying issued chains.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Root())
	return p
}

// String names the server in test output.
func (s *Server) String() string {
	return "pebble at " + s.srv.URL + " (" + strconv.Itoa(s.Orders()) + " orders)"
}
