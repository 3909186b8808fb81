// Package acme obtains certificates from an ACME certificate authority with
// lego, and holds the certificate helpers around it: preflight checks before
// an order, parsing of uploaded certificates, checks of the certificate a
// node actually serves, and the renewal schedule.
//
// It has no database: accounts, keys and certificates go in and out as plain
// values, and the caller stores (and encrypts) them.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/dnscheck"
)

// Config configures a Client.
type Config struct {
	// DirectoryURL is the CA's ACME directory (https).
	DirectoryURL string
	// HTTPClient talks to the CA; nil uses a client with a two-minute timeout
	// that trusts the system roots.
	HTTPClient *http.Client
	// Resolvers are the recursive DNS resolvers (host:port) used by preflight
	// checks and by the DNS-01 propagation check; empty means
	// dnscheck.DefaultResolvers.
	Resolvers []string
	// DNSTimeout bounds one DNS exchange; zero means dnscheck.DefaultTimeout.
	DNSTimeout time.Duration
	// RequireAuthoritativePropagation makes DNS-01 wait until every
	// authoritative nameserver of the zone serves the challenge record, in
	// addition to the resolvers above.
	RequireAuthoritativePropagation bool
	// Logger receives progress; nil discards it.
	Logger hclog.Logger
}

// Client obtains certificates from one CA.
type Client struct {
	cfg     Config
	http    *http.Client
	log     hclog.Logger
	checker dnscheck.Checker
}

// New validates cfg and returns a Client. It does not contact the CA.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.DirectoryURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("acme directory url %q: must be an https:// URL such as https://acme-v02.api.letsencrypt.org/directory", cfg.DirectoryURL)
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: 2 * time.Minute}
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	// lego has one process-wide logger; route it through ours.
	legolog.SetDefault(slog.New(newSlogHandler(c.log.Named("lego"))))
	c.checker = dnscheck.Checker{Resolvers: cfg.Resolvers, Timeout: cfg.DNSTimeout}
	if len(c.checker.Resolvers) == 0 {
		c.checker.Resolvers = dnscheck.DefaultResolvers
	}
	return c, nil
}

// Checker is the DNS checker the client uses for preflight.
func (c *Client) Checker() dnscheck.Checker { return c.checker }

// Account is an ACME account registered with a CA.
type Account struct {
	DirectoryURL string
	Email        string
	// URI is the account URL the CA assigned (the "kid").
	URI string
	// KeyPEM is the account's private key (PEM "EC PRIVATE KEY"). Secret.
	KeyPEM []byte
}

// user adapts an account to lego's registration.User.
type user struct {
	email string
	reg   *legoacme.ExtendedAccount
	key   crypto.Signer
}

func (u *user) GetEmail() string                           { return u.email }
func (u *user) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer               { return u.key }

func (c *Client) lego(u *user) (*lego.Client, error) {
	cfg := lego.NewConfig(u)
	cfg.CADirURL = c.cfg.DirectoryURL
	// lego wraps the client's transport in place when it builds a client, so
	// each gets a copy: orders may run at once, and the shared client keeps
	// its own transport instead of one more wrapper per order.
	hc := *c.http
	cfg.HTTPClient = &hc
	cfg.UserAgent = "gatehouse"
	cl, err := lego.NewClient(cfg)
	if err != nil {
		return nil, wrapCA("reach the acme directory "+c.cfg.DirectoryURL, err)
	}
	return cl, nil
}

// NewAccount creates a key and registers an account with the CA, agreeing
// to its terms of service (the caller shows them to the admin first). email
// is optional; when given, the CA may send expiry notices to it.
func (c *Client) NewAccount(ctx context.Context, email string) (Account, error) {
	if email != "" {
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email || addr.Name != "" {
			return Account{}, fmt.Errorf("account email %q: enter a plain address such as admin@example.com", email)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Account{}, fmt.Errorf("generate account key: %w", err)
	}
	u := &user{email: email, key: key}
	cl, err := c.lego(u)
	if err != nil {
		return Account{}, err
	}
	reg, err := cl.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return Account{}, wrapCA("register acme account", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Account{}, err
	}
	c.log.Info("registered acme account", "directory", c.cfg.DirectoryURL, "account", reg.Location)
	return Account{DirectoryURL: c.cfg.DirectoryURL, Email: email, URI: reg.Location, KeyPEM: keyPEM}, nil
}

func (c *Client) accountUser(acct Account) (*user, error) {
	if acct.URI == "" {
		return nil, errors.New("acme account has no URI: register it first")
	}
	if acct.DirectoryURL != "" && acct.DirectoryURL != c.cfg.DirectoryURL {
		return nil, fmt.Errorf("acme account belongs to %s, not to %s", acct.DirectoryURL, c.cfg.DirectoryURL)
	}
	key, err := parseKey(acct.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("acme account key: %w", err)
	}
	return &user{
		email: acct.Email,
		reg:   &legoacme.ExtendedAccount{Location: acct.URI},
		key:   key,
	}, nil
}

// ChallengeType selects how the CA validates control of a name.
type ChallengeType int

const (
	// HTTP01 serves a token at http://<name>/.well-known/acme-challenge/<token>.
	HTTP01 ChallengeType = iota + 1
	// DNS01 publishes a TXT record at _acme-challenge.<name>; needed for wildcards.
	DNS01
)

func (t ChallengeType) String() string {
	switch t {
	case HTTP01:
		return "http-01"
	case DNS01:
		return "dns-01"
	default:
		return fmt.Sprintf("challenge type %d", int(t))
	}
}

// ChallengeSink publishes HTTP-01 answers where the CA will fetch them. The
// controller forwards them to the nodes serving the domain, which answer
// GET ChallengePath(token) with keyAuth as the body.
type ChallengeSink interface {
	Present(ctx context.Context, domain, token, keyAuth string) error
	CleanUp(ctx context.Context, domain, token, keyAuth string) error
}

// ChallengePath is the URL path at which the CA fetches an HTTP-01 token.
func ChallengePath(token string) string { return "/.well-known/acme-challenge/" + token }

// Request asks for one certificate covering Names.
type Request struct {
	Names     []string
	Challenge ChallengeType
	// HTTPSolver receives HTTP-01 challenges. Required for HTTP01.
	HTTPSolver ChallengeSink
	// DNS publishes DNS-01 records: RFC2136 or Cloudflare. Required for DNS01.
	DNS DNSProvider
	// Preflight, when set, runs the preflight checks first and refuses to
	// place an order if any fails.
	Preflight *PreflightOptions
}

// Certificate is an issued certificate and its key.
type Certificate struct {
	Names []string
	// CertPEM is the leaf certificate.
	CertPEM []byte
	// ChainPEM holds the intermediates, leaf's issuer first.
	ChainPEM []byte
	// KeyPEM is the certificate's private key (PEM "EC PRIVATE KEY"). Secret.
	KeyPEM    []byte
	NotBefore time.Time
	NotAfter  time.Time
	// Serial is the serial number in lowercase hex.
	Serial string
	Issuer string
	// Fingerprint is the SHA-256 of the leaf, lowercase hex.
	Fingerprint string
	// URL is where the CA publishes the certificate.
	URL string
}

// legoDNS guards lego's process-wide DNS client (dns01.SetDefaultClient),
// which lego uses for propagation checks and zone lookups. Orders that need
// the resolvers it is set to run side by side, each holding a read lock; an
// order that needs other resolvers (another Client) waits for them to
// finish, switches the client and then runs.
var legoDNS struct {
	sync.RWMutex
	resolvers string // what the default client is set to; "" before the first order
}

// useLegoResolvers points lego's DNS client at resolvers (unless it already
// is) and returns with a read lock held, which release drops.
func useLegoResolvers(resolvers []string, timeout time.Duration) (release func()) {
	key := strings.Join(resolvers, ",") + " " + timeout.String()
	for {
		legoDNS.RLock()
		if legoDNS.resolvers == key {
			return legoDNS.RUnlock
		}
		legoDNS.RUnlock()
		legoDNS.Lock()
		if legoDNS.resolvers != key {
			dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: resolvers, Timeout: timeout}))
			legoDNS.resolvers = key
		}
		legoDNS.Unlock()
	}
}

// Obtain runs an order for req.Names and returns the issued certificate
// with a fresh ECDSA P-256 key.
func (c *Client) Obtain(ctx context.Context, acct Account, req Request) (Certificate, error) {
	names, err := normalizeNames(req.Names)
	if err != nil {
		return Certificate{}, err
	}
	var provider challenge.Provider
	switch req.Challenge {
	case HTTP01:
		if req.HTTPSolver == nil {
			return Certificate{}, errors.New("http-01 needs a challenge sink to publish tokens on the nodes")
		}
		for _, n := range names {
			if isWildcard(n) {
				return Certificate{}, fmt.Errorf("%s is a wildcard: wildcards can only be validated with dns-01; configure a DNS provider", n)
			}
		}
	case DNS01:
		if req.DNS == nil {
			return Certificate{}, errors.New("dns-01 needs a DNS provider: configure RFC 2136 or Cloudflare")
		}
		provider, err = req.DNS.legoProvider()
		if err != nil {
			return Certificate{}, err
		}
	default:
		return Certificate{}, errors.New("choose a challenge type: http-01 or dns-01")
	}
	u, err := c.accountUser(acct)
	if err != nil {
		return Certificate{}, err
	}

	if req.Preflight != nil {
		opts := *req.Preflight
		if req.Challenge == DNS01 {
			// The node's address and port 80 play no part in DNS-01.
			opts.ExpectedAddrs, opts.Probe = nil, nil
		}
		if err := Blocking(c.Preflight(ctx, names, opts)); err != nil {
			return Certificate{}, err
		}
	}

	cl, err := c.lego(u)
	if err != nil {
		return Certificate{}, err
	}
	if req.Challenge == HTTP01 {
		if err := cl.Challenge.SetHTTP01Provider(req.HTTPSolver); err != nil {
			return Certificate{}, fmt.Errorf("set http-01 solver: %w", err)
		}
	} else {
		defer useLegoResolvers(c.checker.Resolvers, c.checker.Timeout)()
		opts := []dns01.ChallengeOption{
			dns01.CondOptions(!c.cfg.RequireAuthoritativePropagation, dns01.DisableAuthoritativeNssPropagationRequirement()),
		}
		if err := cl.Challenge.SetDNS01Provider(provider, opts...); err != nil {
			return Certificate{}, fmt.Errorf("set dns-01 provider: %w", err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificate{}, fmt.Errorf("generate certificate key: %w", err)
	}
	c.log.Info("ordering certificate", "names", names, "challenge", req.Challenge.String())
	res, err := cl.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains:    names,
		PrivateKey: key,
		Bundle:     false,
	})
	if err != nil {
		return Certificate{}, wrapCA(fmt.Sprintf("obtain a certificate for %v", names), err)
	}
	return certificateFrom(names, res, key)
}

func certificateFrom(names []string, res *certificate.Resource, key crypto.Signer) (Certificate, error) {
	leaf, err := firstCert(res.Certificate)
	if err != nil {
		return Certificate{}, fmt.Errorf("certificate from the CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Certificate{}, err
	}
	info := infoFrom(leaf)
	return Certificate{
		Names:       names,
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		ChainPEM:    res.IssuerCertificate,
		KeyPEM:      keyPEM,
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
		Serial:      info.Serial,
		Issuer:      info.Issuer,
		Fingerprint: info.Fingerprint,
		URL:         res.CertURL,
	}, nil
}

func firstCert(pemBytes []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			return nil, errors.New("no certificate in PEM data")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("unexpected key type %T", key)
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
