package proxyconf

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/basicauthuser"
	"github.com/gatehousehq/gatehouse/ent/domain"
)

// checkUser validates a username and password and returns the password's crypt hash.
// Problems are reported under "username" and "password".
func checkUser(username, password string) (string, nginxconf.FieldErrors) {
	fe := nginxconf.FieldErrors{}
	hash, err := nginxconf.HashPassword(password)
	if err != nil {
		fe["password"] = err.Error()
		// A well-formed placeholder lets the username be checked on its own.
		hash = "$6$" + strings.Repeat("a", 16) + "$" + strings.Repeat("a", 86)
	}
	cfg := nginxconf.NodeConfig{Webroot: validationWebroot, Domains: []nginxconf.Domain{{
		Name:           "example.com",
		BasicAuthUsers: []nginxconf.BasicAuthUser{{User: username, PasswordHash: hash}},
	}}}
	subErrors(nginxconf.Validate(cfg), "domains[0].basic_auth_users[0].", fe)
	return hash, fe
}

func (s *Service) domainServers(ctx context.Context, domainID int) []int {
	ids, err := s.db.Client.Domain.Query().Where(domain.ID(domainID)).QueryServers().IDs(ctx)
	if err != nil {
		s.log.Error("find servers of a domain; they are re-rendered on their next change or reconnect", "domain", domainID, "error", err)
	}
	return ids
}

// AddBasicAuthUser lets username through the domain's basic authentication with password,
// which is stored only as a crypt hash.
func (s *Service) AddBasicAuthUser(ctx context.Context, a Actor, domainID int, username, password string) (*ent.BasicAuthUser, error) {
	var row *ent.BasicAuthUser
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		d, err := tx.Domain.Get(ctx, domainID)
		if err != nil {
			return audit.Entry{}, notFound("domain", domainID, err)
		}
		hash, fe := checkUser(username, password)
		if len(fe) == 0 {
			taken, err := tx.BasicAuthUser.Query().Where(basicauthuser.DomainID(domainID), basicauthuser.Username(username)).Exist(ctx)
			if err != nil {
				return audit.Entry{}, fmt.Errorf("check user name: %w", err)
			}
			if taken {
				fe["username"] = fmt.Sprintf("user %q already exists for this domain; change its password instead", username)
			}
		}
		if err := result(fe); err != nil {
			return audit.Entry{}, err
		}
		row, err = tx.BasicAuthUser.Create().SetDomainID(domainID).SetUsername(username).SetPasswordHash(hash).Save(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"username": fmt.Sprintf("user %q already exists for this domain", username)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("store user: %w", err)
		}
		return audit.For(a.Actor, "domain.auth_user.create", "domain:"+d.Name, "user="+username), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(s.domainServers(ctx, domainID))
	return row, nil
}

// SetBasicAuthPassword replaces a basic-auth user's password.
func (s *Service) SetBasicAuthPassword(ctx context.Context, a Actor, userID int, password string) error {
	var domainID int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		u, err := tx.BasicAuthUser.Query().Where(basicauthuser.ID(userID)).WithDomain().Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("basic-auth user", userID, err)
		}
		hash, fe := checkUser(u.Username, password)
		if err := result(fe); err != nil {
			return audit.Entry{}, err
		}
		if err := tx.BasicAuthUser.UpdateOneID(userID).SetPasswordHash(hash).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("store password: %w", err)
		}
		domainID = u.DomainID
		return audit.For(a.Actor, "domain.auth_user.password", "domain:"+u.Edges.Domain.Name, "user="+u.Username), nil
	})
	if err != nil {
		return err
	}
	s.notify(s.domainServers(ctx, domainID))
	return nil
}

// DeleteBasicAuthUser removes a basic-auth user.
func (s *Service) DeleteBasicAuthUser(ctx context.Context, a Actor, userID int) error {
	var domainID int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		u, err := tx.BasicAuthUser.Query().Where(basicauthuser.ID(userID)).WithDomain().Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("basic-auth user", userID, err)
		}
		if err := tx.BasicAuthUser.DeleteOneID(userID).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("delete user: %w", err)
		}
		domainID = u.DomainID
		return audit.For(a.Actor, "domain.auth_user.delete", "domain:"+u.Edges.Domain.Name, "user="+u.Username), nil
	})
	if err != nil {
		return err
	}
	s.notify(s.domainServers(ctx, domainID))
	return nil
}
