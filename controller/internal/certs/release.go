package certs

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	entdomain "github.com/gatehousehq/gatehouse/ent/domain"
)

// refPrefix starts the reference to a certificate's key in a release.
const refPrefix = "certificate-key:"

func (s *Service) activeByName(ctx context.Context, domain string) (*ent.Certificate, error) {
	c, err := s.db.Client.Certificate.Query().
		Where(certificate.HasDomainWith(entdomain.Name(domain)), certificate.StatusEQ(certificate.StatusActive)).
		Order(ent.Desc(certificate.FieldID)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return c, err
}

// TLS is the deployer's hook: the active certificate of a domain as release
// files, the key by reference so it is never stored in a revision.
func (s *Service) TLS(ctx context.Context, domain string) (*deploy.TLSMaterial, error) {
	c, err := s.activeByName(ctx, domain)
	if err != nil || c == nil {
		return nil, err
	}
	chain := strings.TrimSpace(c.CertPem) + "\n"
	if strings.TrimSpace(c.ChainPem) != "" {
		chain += strings.TrimSpace(c.ChainPem) + "\n"
	}
	return &deploy.TLSMaterial{
		Chain: deploy.TLSFile{Content: []byte(chain), Mode: 0o644},
		Key: deploy.TLSFile{
			Content: []byte(fmt.Sprintf("# private key of certificate %s (serial %s); stored sealed, sent only to the node\n", c.Fingerprint, c.Serial)),
			Ref:     refPrefix + strconv.Itoa(c.ID),
			Mode:    0o600,
		},
	}, nil
}

// Secret is the deployer's hook that opens a certificate key named in a release.
func (s *Service) Secret(ctx context.Context, ref string) ([]byte, error) {
	idText, ok := strings.CutPrefix(ref, refPrefix)
	id, err := strconv.Atoi(idText)
	if !ok || err != nil {
		return nil, fmt.Errorf("unknown secret reference %q", ref)
	}
	c, err := s.db.Client.Certificate.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("certificate %d: %w", id, err)
	}
	key, err := s.box.Open(c.KeySealed, certKeyAAD(c.Fingerprint))
	if err != nil {
		return nil, fmt.Errorf("open the key of certificate %d: %w", id, err)
	}
	return key, nil
}

// HasCertificate is the proxy configuration's hook: a reference when the domain
// has an active certificate, so HTTPS-only settings are accepted for it.
func (s *Service) HasCertificate(ctx context.Context, domain string) (*nginxconf.CertRef, error) {
	c, err := s.activeByName(ctx, domain)
	if err != nil || c == nil {
		return nil, err
	}
	base := strings.Replace(domain, "*", "_", 1)
	return &nginxconf.CertRef{
		CertPath: nginxconf.DefaultConfigDir + "/" + deploy.TLSDir + "/" + base + ".crt",
		KeyPath:  nginxconf.DefaultConfigDir + "/" + deploy.TLSDir + "/" + base + ".key",
	}, nil
}
