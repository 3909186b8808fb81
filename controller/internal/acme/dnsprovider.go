package acme

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
)

// DNSProvider publishes DNS-01 challenge records. It is RFC2136 or Cloudflare.
type DNSProvider interface {
	legoProvider() (challenge.Provider, error)
}

// Propagation tunes how long DNS-01 waits for a record to be visible.
// Zero values take the defaults (two minutes, polled every two seconds).
type Propagation struct {
	Timeout  time.Duration
	Interval time.Duration
}

func (p Propagation) values() (timeout, interval time.Duration) {
	timeout, interval = p.Timeout, p.Interval
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	return timeout, interval
}

// RFC2136 updates an authoritative nameserver with dynamic updates (BIND,
// Knot, PowerDNS...), signed with TSIG when a key is given.
type RFC2136 struct {
	// Nameserver is host or host:port of the primary accepting updates.
	Nameserver string
	// TSIGKey is the key name, TSIGSecret its base64 secret; both or neither.
	TSIGKey    string
	TSIGSecret string
	// TSIGAlgorithm is hmac-sha256 (default), hmac-sha1, hmac-sha224,
	// hmac-sha384 or hmac-sha512.
	TSIGAlgorithm string
	Propagation   Propagation
}

var (
	hostLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	apiToken   = regexp.MustCompile(`^[A-Za-z0-9_-]{20,200}$`)
	tsigAlgos  = []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
	dnsTimeout = 10 * time.Second
)

// validHostname reports whether s is a DNS host name made of LDH labels.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// Validate checks every field and says which one is wrong.
func (r RFC2136) Validate() error {
	host, port, err := net.SplitHostPort(r.Nameserver)
	if err != nil {
		host, port = r.Nameserver, "53"
	}
	if net.ParseIP(host) == nil && !validHostname(strings.ToLower(host)) {
		return fmt.Errorf("rfc2136 nameserver %q: enter an IP address or host name, optionally with :port", r.Nameserver)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("rfc2136 nameserver %q: port must be 1-65535", r.Nameserver)
	}
	if (r.TSIGKey == "") != (r.TSIGSecret == "") {
		return fmt.Errorf("rfc2136 tsig: give both the key name and the secret, or neither")
	}
	if r.TSIGKey != "" {
		if !validHostname(strings.ToLower(r.TSIGKey)) {
			return fmt.Errorf("rfc2136 tsig key name %q: use letters, digits, hyphens and dots, as in the server's key statement", r.TSIGKey)
		}
		if _, err := base64.StdEncoding.DecodeString(r.TSIGSecret); err != nil {
			return fmt.Errorf("rfc2136 tsig secret: must be base64 as printed by tsig-keygen")
		}
	}
	if a := r.algorithm(); !contains(tsigAlgos, a) {
		return fmt.Errorf("rfc2136 tsig algorithm %q: choose one of %s", r.TSIGAlgorithm, strings.Join(tsigAlgos, ", "))
	}
	return nil
}

func (r RFC2136) algorithm() string {
	a := strings.TrimSuffix(strings.ToLower(r.TSIGAlgorithm), ".")
	if a == "" {
		return "hmac-sha256"
	}
	return a
}

func (r RFC2136) legoProvider() (challenge.Provider, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	timeout, interval := r.Propagation.values()
	p, err := dnsupdate.NewDNSProviderConfig(&dnsupdate.Config{
		Nameserver:         r.Nameserver,
		DNSTimeout:         dnsTimeout,
		TSIGAlgorithm:      r.algorithm() + ".",
		TSIGKey:            r.TSIGKey,
		TSIGSecret:         r.TSIGSecret,
		PropagationTimeout: timeout,
		PollingInterval:    interval,
		TTL:                120,
		// Names sharing one challenge record (example.com and
		// *.example.com) are solved one after the other; wait one poll
		// interval between them.
		SequenceInterval: interval,
	})
	if err != nil {
		return nil, fmt.Errorf("rfc2136 provider: %w", err)
	}
	return p, nil
}

// Cloudflare publishes records through the Cloudflare API with scoped API
// tokens: APIToken needs Zone:DNS:Edit, ZoneToken (optional, defaults to
// APIToken) Zone:Zone:Read.
type Cloudflare struct {
	APIToken  string
	ZoneToken string
	// BaseURL overrides the API endpoint; empty means Cloudflare's.
	BaseURL     string
	HTTPClient  *http.Client
	Propagation Propagation
}

// Validate checks every field and says which one is wrong.
func (c Cloudflare) Validate() error {
	if !apiToken.MatchString(c.APIToken) {
		return fmt.Errorf("cloudflare api token: paste the token exactly as Cloudflare showed it (letters, digits, - and _)")
	}
	if c.ZoneToken != "" && !apiToken.MatchString(c.ZoneToken) {
		return fmt.Errorf("cloudflare zone token: paste the token exactly as Cloudflare showed it (letters, digits, - and _)")
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("cloudflare base url %q: must start with https://", c.BaseURL)
	}
	return nil
}

func (c Cloudflare) legoProvider() (challenge.Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	timeout, interval := c.Propagation.values()
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	zone := c.ZoneToken
	if zone == "" {
		zone = c.APIToken
	}
	p, err := cloudflare.NewDNSProviderConfig(&cloudflare.Config{
		AuthToken:          c.APIToken,
		ZoneToken:          zone,
		BaseURL:            c.BaseURL,
		TTL:                120,
		PropagationTimeout: timeout,
		PollingInterval:    interval,
		HTTPClient:         hc,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudflare provider: %w", err)
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
