package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
)

// TLSDir is the directory of a release that holds certificate chains and keys.
const TLSDir = "tls"

// TLSFile is a certificate chain or key that travels in a release. Secret files are
// not stored in the revision: Content holds a description, and Ref names the secret,
// which Config.Secret resolves when the revision is sent to the agent.
type TLSFile struct {
	Content []byte
	Ref     string
	Mode    uint32
}

// TLSMaterial is the certificate a node serves for a domain.
type TLSMaterial struct {
	Chain TLSFile // PEM leaf followed by its intermediates
	Key   TLSFile // PEM private key, normally by Ref
}

// tlsPaths are the release paths of a domain's chain and key, named as nginxconf names
// the domain's file ("_" for the wildcard label).
func tlsPaths(domain string) (chain, key string) {
	base := strings.Replace(domain, "*", "_", 1)
	return TLSDir + "/" + base + ".crt", TLSDir + "/" + base + ".key"
}

// tlsFor asks the TLS hook for a domain's certificate and returns the reference nginx
// uses, below configDir where the node's nginx reaches the release, and the files that
// carry it.
func (d *Deployer) tlsFor(ctx context.Context, configDir, domain string) (*nginxconf.CertRef, []file, error) {
	m, err := d.cfg.TLS(ctx, domain)
	if err != nil || m == nil {
		return nil, nil, err
	}
	chain, key := tlsPaths(domain)
	ref := &nginxconf.CertRef{CertPath: path.Join(configDir, chain), KeyPath: path.Join(configDir, key)}
	return ref, []file{
		{Path: chain, Content: m.Chain.Content, Ref: m.Chain.Ref, Mode: m.Chain.Mode},
		{Path: key, Content: m.Key.Content, Ref: m.Key.Ref, Mode: m.Key.Mode},
	}, nil
}

// withExtra adds files to a rendered release; the hash then covers them too, refs and
// modes included, so a new certificate makes a new revision.
func withExtra(r nginxconf.Rendered, extra []file) ([]file, string) {
	out := make([]file, 0, len(r.Files)+len(extra))
	for _, f := range r.Files {
		out = append(out, file{Path: f.Path, Content: f.Content})
	}
	if len(extra) == 0 {
		return out, r.Hash
	}
	out = append(out, extra...)
	slices.SortFunc(out, func(a, b file) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	h.Write([]byte(r.Hash))
	var n [8]byte
	for _, f := range extra {
		for _, part := range [][]byte{[]byte(f.Path), f.Content, []byte(f.Ref), []byte(fmt.Sprint(f.Mode))} {
			binary.BigEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
	}
	return out, hex.EncodeToString(h.Sum(nil))
}

// resolve returns the content to send for a stored file.
func (d *Deployer) resolve(ctx context.Context, f file) ([]byte, error) {
	if f.Ref == "" {
		return f.Content, nil
	}
	if d.cfg.Secret == nil {
		return nil, fmt.Errorf("file %s refers to secret %s but no secret resolver is configured", f.Path, f.Ref)
	}
	b, err := d.cfg.Secret(ctx, f.Ref)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", f.Path, err)
	}
	return b, nil
}
