// Package nodes keeps the registry of servers and their agent identities:
// enrollment tokens, issued certificates and revocation. It implements the
// agent hub's Store on the controller's database.
package nodes

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/agentcertificate"
	"github.com/gatehousehq/gatehouse/ent/enrollmenttoken"
	"github.com/gatehousehq/gatehouse/ent/server"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Registry is the server registry.
type Registry struct {
	db  *store.DB
	log hclog.Logger
	now func() time.Time
	// OnRevoke is called with the node whose certificates were revoked, so the
	// live session can be closed.
	OnRevoke func(nodeID string)
}

// New returns a registry on db.
func New(db *store.DB, log hclog.Logger) *Registry {
	return &Registry{db: db, log: log.Named("nodes"), now: time.Now}
}

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,62}[a-z0-9])?$`)

// ErrInvalidName means a server name is not acceptable.
var ErrInvalidName = errors.New("invalid server name")

// ValidName checks a server name: lowercase letters, digits, '.' and '-', at
// most 64 characters, starting and ending with a letter or digit.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-64 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

// ErrNameTaken means another server has the name.
var ErrNameTaken = errors.New("a server with this name exists")

// Create adds a server in the pending state.
func (r *Registry) Create(ctx context.Context, name, address string, local bool) (*ent.Server, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	s, err := r.db.Client.Server.Create().SetName(name).SetAddress(address).SetLocal(local).Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, fmt.Errorf("%w: %s", ErrNameTaken, name)
	}
	return s, err
}

// IssueToken creates a single-use enrollment token for the server and returns
// it; only its hash is stored, so this is the one time it can be shown.
func (r *Registry) IssueToken(ctx context.Context, serverID int, lifetime time.Duration) (string, time.Time, error) {
	token, hash, err := hub.NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	exp := r.now().Add(lifetime)
	if _, err := r.db.Client.EnrollmentToken.Create().SetServerID(serverID).SetTokenHash(hash[:]).SetExpiresAt(exp).Save(ctx); err != nil {
		return "", time.Time{}, fmt.Errorf("store enrollment token: %w", err)
	}
	return token, exp, nil
}

// RedeemEnrollmentToken implements hub.Store. The token is consumed by one
// conditional UPDATE, so of two agents presenting it at once exactly one wins.
// A node that enrolls again gets a new identity: its older certificates are
// revoked.
func (r *Registry) RedeemEnrollmentToken(ctx context.Context, tokenHash [32]byte, facts *agentv1.HostFacts) (string, error) {
	now := r.now()
	n, err := r.db.Client.EnrollmentToken.Update().
		Where(enrollmenttoken.TokenHash(tokenHash[:]), enrollmenttoken.UsedAtIsNil(), enrollmenttoken.ExpiresAtGT(now)).
		SetUsedAt(now).Save(ctx)
	if err != nil {
		return "", err
	}
	if n != 1 {
		return "", hub.ErrTokenInvalid
	}
	tok, err := r.db.Client.EnrollmentToken.Query().Where(enrollmenttoken.TokenHash(tokenHash[:])).WithServer().Only(ctx)
	if err != nil {
		return "", err
	}
	srv := tok.Edges.Server
	if srv == nil || srv.Status == server.StatusRemoved {
		return "", hub.ErrTokenInvalid
	}
	revoked, err := r.db.Client.AgentCertificate.Update().
		Where(agentcertificate.HasServerWith(server.ID(srv.ID)), agentcertificate.RevokedAtIsNil()).
		SetRevokedAt(now).Save(ctx)
	if err != nil {
		return "", err
	}
	upd := r.db.Client.Server.UpdateOneID(srv.ID)
	if facts != nil {
		upd.SetHostname(facts.GetHostname()).SetOs(facts.GetOs()).SetArch(facts.GetArch()).
			SetKernel(facts.GetKernel()).SetAgentVersion(facts.GetAgentVersion()).SetAddresses(facts.GetAddresses())
	}
	if err := upd.Exec(ctx); err != nil {
		return "", err
	}
	id := strconv.Itoa(srv.ID)
	if revoked > 0 && r.OnRevoke != nil {
		r.OnRevoke(id)
	}
	r.log.Info("agent enrolled", "server", srv.Name, "id", srv.ID, "replaced_certificates", revoked)
	return id, nil
}

func parseID(nodeID string) (int, error) {
	id, err := strconv.Atoi(nodeID)
	if err != nil || id <= 0 {
		return 0, hub.ErrNodeUnknown
	}
	return id, nil
}

// RecordCertificate implements hub.Store.
func (r *Registry) RecordCertificate(ctx context.Context, nodeID string, cert *x509.Certificate) error {
	id, err := parseID(nodeID)
	if err != nil {
		return err
	}
	tx, err := r.db.Client.Tx(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.AgentCertificate.Create().SetServerID(id).SetSerial(cert.SerialNumber.Text(16)).
		SetNotBefore(cert.NotBefore).SetNotAfter(cert.NotAfter).Save(ctx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Server.UpdateOneID(id).SetCertNotAfter(cert.NotAfter).Exec(ctx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CheckCertificate implements hub.Store.
func (r *Registry) CheckCertificate(ctx context.Context, nodeID string, serial *big.Int) error {
	id, err := parseID(nodeID)
	if err != nil {
		return err
	}
	c, err := r.db.Client.AgentCertificate.Query().
		Where(agentcertificate.Serial(serial.Text(16)), agentcertificate.HasServerWith(server.ID(id))).
		WithServer().Only(ctx)
	if ent.IsNotFound(err) {
		return hub.ErrNodeUnknown
	}
	if err != nil {
		return err
	}
	if c.Edges.Server == nil || c.Edges.Server.Status == server.StatusRemoved {
		return hub.ErrNodeUnknown
	}
	if c.RevokedAt != nil {
		return hub.ErrCertificateRevoked
	}
	return nil
}

// NodeOnline implements hub.Store.
func (r *Registry) NodeOnline(ctx context.Context, nodeID string, hello *agentv1.Hello) error {
	id, err := parseID(nodeID)
	if err != nil {
		return err
	}
	upd := r.db.Client.Server.Update().Where(server.ID(id), server.StatusNEQ(server.StatusRemoved)).
		SetStatus(server.StatusOnline).SetLastSeenAt(r.now()).
		SetAgentVersion(hello.GetAgentVersion()).SetMetricsSource(hello.GetMetricsSource())
	if f := hello.GetFacts(); f != nil {
		upd.SetHostname(f.GetHostname()).SetOs(f.GetOs()).SetArch(f.GetArch()).SetKernel(f.GetKernel()).SetAddresses(f.GetAddresses())
	}
	return upd.Exec(ctx)
}

// NodeOffline implements hub.Store.
func (r *Registry) NodeOffline(ctx context.Context, nodeID string) error {
	id, err := parseID(nodeID)
	if err != nil {
		return err
	}
	return r.db.Client.Server.Update().Where(server.ID(id), server.StatusEQ(server.StatusOnline)).
		SetStatus(server.StatusOffline).Exec(ctx)
}

// Revoke revokes every certificate of the server and closes its session.
func (r *Registry) Revoke(ctx context.Context, serverID int) (int, error) {
	n, err := r.db.Client.AgentCertificate.Update().
		Where(agentcertificate.HasServerWith(server.ID(serverID)), agentcertificate.RevokedAtIsNil()).
		SetRevokedAt(r.now()).Save(ctx)
	if err != nil {
		return 0, err
	}
	if r.OnRevoke != nil {
		r.OnRevoke(strconv.Itoa(serverID))
	}
	return n, nil
}

// Delete removes the server with its tokens, certificates and metrics, and
// closes its session.
func (r *Registry) Delete(ctx context.Context, serverID int) error {
	if err := r.db.Client.Server.DeleteOneID(serverID).Exec(ctx); err != nil {
		return err
	}
	if r.OnRevoke != nil {
		r.OnRevoke(strconv.Itoa(serverID))
	}
	return nil
}
