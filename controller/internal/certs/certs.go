// Package certs runs the controller's side of DNS checks and TLS certificates:
// it checks where each domain's names point and what their CAA policy allows,
// obtains certificates over ACME (HTTP-01 through the nodes serving a domain,
// DNS-01 through a configured DNS provider), accepts uploaded certificates,
// renews them before they expire with backoff that honours the CA's rate
// limits, hands them to the deployer so they travel in each node's release, and
// watches which certificate every node actually serves.
//
// The ACME and DNS protocol work lives in the acme and dnscheck packages; this
// package stores their results (private keys and credentials sealed with the
// master key) and decides when to act.
package certs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/controller/internal/dnscheck"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	entdomain "github.com/gatehousehq/gatehouse/ent/domain"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Let's Encrypt's directories; DefaultDirectory is the production one.
const (
	DefaultDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	StagingDirectory = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// Errors callers map to responses.
var (
	ErrNotFound = errors.New("not found")
	// ErrBusy means an issuance for the domain is already running.
	ErrBusy = errors.New("an issuance for this domain is already running")
	// ErrEndpointUnknown, from Config.Endpoint, means it is not known yet where
	// a server's nginx listens (its agent has not reported it); the watch
	// skips the server rather than dial a guess.
	ErrEndpointUnknown = errors.New("where the server's nginx listens is not known yet")
)

// Sender delivers commands to connected agents; *hub.Hub implements it. Node
// ids are decimal server ids.
type Sender interface {
	Send(ctx context.Context, nodeID string, cmd *agentv1.Command) (*agentv1.CommandResult, error)
	Connected(nodeID string) bool
}

// Notifier learns which servers need a new nginx revision; *deploy.Deployer
// implements it. Changed must not block.
type Notifier interface {
	Changed(serverIDs ...int)
}

// Endpoint is where a node's nginx answers: the host to dial and its ports.
type Endpoint struct {
	Host      string
	HTTPPort  int
	HTTPSPort int
}

// Config configures a Service.
type Config struct {
	// DirectoryURL is the ACME directory; default DefaultDirectory.
	DirectoryURL string
	// Email is given to the CA with a new account; optional.
	Email string
	// HTTPClient talks to the CA; nil trusts the system roots.
	HTTPClient *http.Client
	// CAAIdentity is the CA's CAA identity; empty reads it from the directory.
	CAAIdentity string
	// Resolvers are the recursive resolvers (host:port) asked by every check;
	// empty means dnscheck.DefaultResolvers.
	Resolvers []string
	// DNSTimeout bounds one DNS exchange; zero means dnscheck.DefaultTimeout.
	DNSTimeout time.Duration
	// RenewBefore is how long before expiry a certificate is renewed; zero
	// means acme.DefaultRenewBefore.
	RenewBefore time.Duration
	// ProbePort is the port the preflight fetches the challenge path on, where
	// the CA will (80 unless testing).
	ProbePort int
	// Endpoint, optional, says where a server's nginx answers, or returns
	// ErrEndpointUnknown (skip the server) or ErrProbeRefused (record why it
	// is not probed); without it, or with an empty host, ProbeHost picks the
	// address, and ports default to 80 and 443.
	Endpoint func(ctx context.Context, srv *ent.Server) (Endpoint, error)
	// OnEvent, optional, receives live updates about a domain: "dns" after a
	// check, "cert.log" for each line of a running issuance, "cert" when one
	// ends, "served" after a watch. It must not block.
	OnEvent func(domainID int, name string, data map[string]any)
	// DNSProviderPropagation bounds how long DNS-01 waits for its record.
	DNSProviderPropagation acme.Propagation
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Service is the certificate and DNS check service.
type Service struct {
	db       *store.DB
	box      *secrets.Box
	sender   Sender
	notifier Notifier
	cfg      Config
	log      hclog.Logger
	client   *acme.Client
	checker  dnscheck.Checker

	accountMu sync.Mutex
	caaMu     sync.Mutex
	caaID     string
	running   sync.Map // domain id -> struct{}: issuances in progress
}

// New validates cfg and returns a Service. It does not contact the CA.
func New(db *store.DB, box *secrets.Box, sender Sender, notifier Notifier, cfg Config, log hclog.Logger) (*Service, error) {
	if cfg.DirectoryURL == "" {
		cfg.DirectoryURL = DefaultDirectory
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = acme.DefaultRenewBefore
	}
	if cfg.ProbePort == 0 {
		cfg.ProbePort = 80
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProbePort < 1 || cfg.ProbePort > 65535 {
		return nil, fmt.Errorf("probe port %d: must be 1-65535", cfg.ProbePort)
	}
	log = log.Named("certs")
	client, err := acme.New(acme.Config{
		DirectoryURL: cfg.DirectoryURL,
		HTTPClient:   cfg.HTTPClient,
		Resolvers:    cfg.Resolvers,
		DNSTimeout:   cfg.DNSTimeout,
		Logger:       log.Named("acme"),
	})
	if err != nil {
		return nil, err
	}
	return &Service{
		db: db, box: box, sender: sender, notifier: notifier, cfg: cfg, log: log,
		client: client, checker: client.Checker(), caaID: cfg.CAAIdentity,
	}, nil
}

// DirectoryURL is the ACME directory certificates are ordered from.
func (s *Service) DirectoryURL() string { return s.cfg.DirectoryURL }

// RenewBefore is how long before expiry certificates are renewed.
func (s *Service) RenewBefore() time.Duration { return s.cfg.RenewBefore }

func (s *Service) event(domainID int, name string, data map[string]any) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(domainID, name, data)
	}
}

func nodeID(serverID int) string { return strconv.Itoa(serverID) }

// domain loads a domain with its servers.
func (s *Service) domain(ctx context.Context, id int) (*ent.Domain, error) {
	d, err := s.db.Client.Domain.Query().Where(entdomain.ID(id)).WithServers().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("domain %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load domain %d: %w", id, err)
	}
	return d, nil
}

// names are the names a domain's certificate covers: its name and aliases.
func names(d *ent.Domain) []string {
	out := []string{d.Name}
	for _, a := range d.Aliases {
		if a != d.Name {
			out = append(out, a)
		}
	}
	return out
}

// endpoint says where a server's nginx answers. The host is chosen by
// ProbeHost unless Config.Endpoint already did.
func (s *Service) endpoint(ctx context.Context, srv *ent.Server) (Endpoint, error) {
	ep := Endpoint{HTTPPort: 80, HTTPSPort: 443}
	if s.cfg.Endpoint != nil {
		var err error
		if ep, err = s.cfg.Endpoint(ctx, srv); err != nil {
			return ep, err
		}
	}
	if ep.Host == "" {
		host, err := ProbeHost(srv, "")
		if err != nil {
			return ep, err
		}
		ep.Host = host
	}
	if ep.HTTPPort == 0 {
		ep.HTTPPort = 80
	}
	if ep.HTTPSPort == 0 {
		ep.HTTPSPort = 443
	}
	return ep, nil
}

// serverAddrs are the addresses a domain's names should resolve to: every
// address of every server serving it.
func serverAddrs(servers []*ent.Server) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	for _, srv := range servers {
		add(srv.Address)
		for _, a := range srv.Addresses {
			add(a)
		}
	}
	return out
}
