package certs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/ent/dnsprovider"
)

// ProviderInput creates a DNS provider for DNS-01. Secret fields are sealed and
// never shown again.
type ProviderInput struct {
	Name string
	Kind string // rfc2136 or cloudflare
	// RFC 2136.
	Nameserver    string
	TSIGKey       string
	TSIGAlgorithm string
	TSIGSecret    string // secret
	// Cloudflare.
	APIToken  string // secret
	ZoneToken string // secret
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

type providerSecret struct {
	TSIGSecret string `json:"tsig_secret,omitempty"`
	APIToken   string `json:"api_token,omitempty"`
	ZoneToken  string `json:"zone_token,omitempty"`
}

func providerAAD(name string) []byte { return []byte("dns_providers.secret_sealed:" + name) }

// CreateProvider validates and stores a DNS provider.
func (s *Service) CreateProvider(ctx context.Context, in ProviderInput) (*ent.DNSProvider, error) {
	in.Name = strings.TrimSpace(in.Name)
	if !providerName.MatchString(in.Name) {
		return nil, &FieldError{"name", "use 1-64 lowercase letters, digits, - and _"}
	}
	settings := map[string]string{}
	var secret providerSecret
	switch in.Kind {
	case "rfc2136":
		p := acme.RFC2136{Nameserver: strings.TrimSpace(in.Nameserver), TSIGKey: strings.TrimSpace(in.TSIGKey),
			TSIGSecret: strings.TrimSpace(in.TSIGSecret), TSIGAlgorithm: strings.TrimSpace(in.TSIGAlgorithm)}
		if err := p.Validate(); err != nil {
			return nil, &FieldError{rfcField(err.Error()), err.Error()}
		}
		settings["nameserver"], settings["tsig_key"], settings["tsig_algorithm"] = p.Nameserver, p.TSIGKey, p.TSIGAlgorithm
		secret.TSIGSecret = p.TSIGSecret
	case "cloudflare":
		p := acme.Cloudflare{APIToken: strings.TrimSpace(in.APIToken), ZoneToken: strings.TrimSpace(in.ZoneToken)}
		if err := p.Validate(); err != nil {
			field := "api_token"
			if strings.Contains(err.Error(), "zone token") {
				field = "zone_token"
			}
			return nil, &FieldError{field, err.Error()}
		}
		secret.APIToken, secret.ZoneToken = p.APIToken, p.ZoneToken
	default:
		return nil, &FieldError{"kind", "choose rfc2136 or cloudflare"}
	}
	raw, err := json.Marshal(secret)
	if err != nil {
		return nil, err
	}
	sealed, err := s.box.Seal(raw, providerAAD(in.Name))
	if err != nil {
		return nil, err
	}
	p, err := s.db.Client.DNSProvider.Create().SetName(in.Name).SetKind(dnsprovider.Kind(in.Kind)).
		SetSettings(settings).SetSecretSealed(sealed).Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, &FieldError{"name", "a DNS provider with this name exists"}
	}
	if err != nil {
		return nil, fmt.Errorf("store dns provider: %w", err)
	}
	return p, nil
}

func rfcField(msg string) string {
	switch {
	case strings.Contains(msg, "nameserver"):
		return "nameserver"
	case strings.Contains(msg, "secret"):
		return "tsig_secret"
	case strings.Contains(msg, "algorithm"):
		return "tsig_algorithm"
	default:
		return "tsig_key"
	}
}

// Providers lists the DNS providers by name.
func (s *Service) Providers(ctx context.Context) ([]*ent.DNSProvider, error) {
	return s.db.Client.DNSProvider.Query().Order(ent.Asc(dnsprovider.FieldName)).All(ctx)
}

// DeleteProvider removes a DNS provider no domain uses.
func (s *Service) DeleteProvider(ctx context.Context, id int) error {
	n, err := s.db.Client.CertPolicy.Query().Where(certpolicy.DNSProviderID(id)).Count(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d domain(s) use this DNS provider; switch them to another first", n)
	}
	err = s.db.Client.DNSProvider.DeleteOneID(id).Exec(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("dns provider %d: %w", id, ErrNotFound)
	}
	return err
}

// provider opens a stored DNS provider for DNS-01.
func (s *Service) provider(ctx context.Context, id int) (acme.DNSProvider, error) {
	row, err := s.db.Client.DNSProvider.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("the domain's DNS provider (id %d) no longer exists; choose another", id)
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.box.Open(row.SecretSealed, providerAAD(row.Name))
	if err != nil {
		return nil, fmt.Errorf("open the credentials of dns provider %s: %w", row.Name, err)
	}
	var sec providerSecret
	if err := json.Unmarshal(raw, &sec); err != nil {
		return nil, fmt.Errorf("credentials of dns provider %s: %w", row.Name, err)
	}
	switch row.Kind {
	case dnsprovider.KindRfc2136:
		return acme.RFC2136{Nameserver: row.Settings["nameserver"], TSIGKey: row.Settings["tsig_key"],
			TSIGAlgorithm: row.Settings["tsig_algorithm"], TSIGSecret: sec.TSIGSecret, Propagation: s.cfg.DNSProviderPropagation}, nil
	default:
		return acme.Cloudflare{APIToken: sec.APIToken, ZoneToken: sec.ZoneToken, Propagation: s.cfg.DNSProviderPropagation}, nil
	}
}
