package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/internal/testutil/acmetest"
	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

var loopback = netip.MustParseAddr("127.0.0.1")

// openDB returns a fresh, migrated database: SQLite, or PostgreSQL when pg.
func openDB(t *testing.T, pg bool) *store.DB {
	t.Helper()
	url := "sqlite:" + t.TempDir() + "/gh.db"
	if pg {
		url = pgtest.Database(t)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, url, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func newBox(t *testing.T) *secrets.Box {
	t.Helper()
	k, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := secrets.NewBox(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// node plays the agents at the protocol edge: PlaceChallenge and
// RemoveChallenge commands fill and empty a webroot that an HTTP server on
// loopback serves, as nginx serves the agent's webroot.
type node struct {
	mu        sync.Mutex
	tokens    map[string]string
	connected bool
	drop      bool // acknowledge tokens but do not publish them
	commands  []string
	port      int
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{tokens: map[string]string{}, connected: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, acme.ChallengePath(""))
		n.mu.Lock()
		v, found := n.tokens[token]
		n.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(v))
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n.port, _ = strconv.Atoi(p)
	return n
}

func (n *node) Connected(string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.connected
}

func (n *node) setConnected(v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.connected = v
}

func (n *node) Send(_ context.Context, _ string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_PlaceChallenge:
		n.commands = append(n.commands, "place")
		if !n.drop {
			n.tokens[k.PlaceChallenge.GetToken()] = k.PlaceChallenge.GetKeyAuthorization()
		}
	case *agentv1.Command_RemoveChallenge:
		n.commands = append(n.commands, "remove")
		delete(n.tokens, k.RemoveChallenge.GetToken())
	default:
		return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, Message: "unsupported"}}, nil
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_Challenge{Challenge: &agentv1.ChallengeResult{}}}, nil
}

func (n *node) left() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.tokens)
}

// changes records the servers passed to the notifier.
type changes struct {
	mu  sync.Mutex
	ids []int
}

func (c *changes) Changed(ids ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, ids...)
}

func (c *changes) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.ids
	c.ids = nil
	return ids
}

const (
	tsigKey    = "gatehouse-acme."
	tsigSecret = "Z2F0ZWhvdXNlLXRlc3QtdHNpZy1zZWNyZXQtMzJieXRlcw=="
)

// world is a service with Pebble, a DNS server, one node and one server row.
type world struct {
	db      *store.DB
	dns     *dnstest.Server
	ca      *acmetest.Server
	node    *node
	changes *changes
	svc     *Service
	server  *ent.Server
	now     time.Time
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	w := &world{db: openDB(t, false), dns: dnstest.New(t, "example.test"), node: newNode(t), changes: &changes{}}
	w.dns.EnableTSIG(tsigKey, tsigSecret)
	w.ca = acmetest.New(t, acmetest.Options{DNSServer: w.dns.Addr(), HTTPPort: w.node.port, Blocklist: []string{"blocked.test"}})
	cfg.DirectoryURL = w.ca.DirectoryURL
	cfg.HTTPClient = w.ca.Client
	cfg.Resolvers = []string{w.dns.Addr()}
	cfg.DNSTimeout = time.Second
	cfg.ProbePort = w.node.port
	cfg.DNSProviderPropagation = acme.Propagation{Timeout: 20 * time.Second, Interval: 50 * time.Millisecond}
	svc, err := New(w.db, newBox(t), w.node, w.changes, cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	w.server = w.db.Client.Server.Create().SetName("web1").SetAddresses([]string{"127.0.0.1", "::1"}).SaveX(context.Background())
	return w
}

// domain creates a domain served by the world's server.
func (w *world) domain(t *testing.T, name string, aliases ...string) *ent.Domain {
	t.Helper()
	return w.db.Client.Domain.Create().SetName(name).SetAliases(aliases).AddServers(w.server).SaveX(context.Background())
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// selfSigned makes a certificate and key for name, valid for a day.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
