package certs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	entdomain "github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/servedcertificate"
)

// Due lists the domains whose certificate the renewal job would order now:
// automatic domains served by at least one server that have no active
// certificate, or one within RenewBefore of expiry, and whose backoff after a
// failure (or the CA's Retry-After) has passed. Domains that never had a
// certificate are included only once an admin chose automatic issuance for
// them (a stored policy), so adding a domain never orders by itself. An
// HTTP-01 domain waits until an agent of a server serving it is connected
// (after a controller restart, agents reconnect a little after the first
// run): an attempt without one could only fail and back off for an hour.
func (s *Service) Due(ctx context.Context, now time.Time) ([]*ent.Domain, error) {
	pols, err := s.db.Client.CertPolicy.Query().Where(certpolicy.ModeEQ(certpolicy.ModeAcme)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load certificate policies: %w", err)
	}
	var out []*ent.Domain
	for _, p := range pols {
		if p.NextAttemptAt != nil && now.Before(*p.NextAttemptAt) {
			continue
		}
		d, err := s.domain(ctx, p.DomainID)
		if err != nil {
			return nil, err
		}
		if len(d.Edges.Servers) == 0 {
			continue
		}
		if p.Challenge == certpolicy.ChallengeHTTP01 && !s.anyConnected(d.Edges.Servers) {
			continue
		}
		c, err := s.Active(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		if c == nil || acme.DueForRenewal(c.NotAfter, now, s.cfg.RenewBefore) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *Service) anyConnected(servers []*ent.Server) bool {
	for _, srv := range servers {
		if s.sender.Connected(nodeID(srv.ID)) {
			return true
		}
	}
	return false
}

// renewParallel is how many certificates RenewDue orders at once.
const renewParallel = 4

// RenewDue orders a certificate for every domain Due names, renewParallel
// at a time; each attempt is its own Task. It fails when any attempt failed.
func (s *Service) RenewDue(ctx context.Context, logf func(string, ...any)) error {
	now := s.cfg.Now()
	due, err := s.Due(ctx, now)
	if err != nil {
		return err
	}
	// A few at a time: DNS-01 orders wait for propagation and HTTP-01 ones
	// for the CA, so one slow domain does not hold the others back.
	problems := uptime.Each(due, renewParallel, func(d *ent.Domain) []string {
		if ctx.Err() != nil {
			return nil
		}
		c, taskID, err := s.Issue(ctx, d.ID)
		switch {
		case errors.Is(err, ErrBusy):
			logf("%s: an issuance is already running", d.Name)
		case err != nil:
			p, _ := s.Policy(ctx, d.ID)
			next := ""
			if p != nil && p.NextAttemptAt != nil {
				next = "; next attempt at " + p.NextAttemptAt.UTC().Format(time.RFC3339)
			}
			logf("%s: renewal failed (task %d): %v%s", d.Name, taskID, err, next)
			return []string{d.Name + ": " + err.Error()}
		default:
			logf("%s: renewed, serial %s valid until %s (task %d)", d.Name, c.Serial, c.NotAfter.UTC().Format(time.RFC3339), taskID)
		}
		return nil
	})
	var errs []error
	for _, p := range problems {
		errs = append(errs, errors.New(p))
	}
	if len(due) == 0 {
		logf("no certificate is due for renewal")
	}
	return errors.Join(errs...)
}

// WatchDomain dials every server serving a domain with its name as SNI and
// records the certificate each presents, flagging a mismatch with the active
// certificate. Domains without an active certificate are skipped, and so are
// servers whose endpoint is not known yet (ErrEndpointUnknown); a server the
// controller will not dial (ProbeHost) gets a row saying why.
func (s *Service) WatchDomain(ctx context.Context, domainID int) ([]*ent.ServedCertificate, error) {
	d, err := s.domain(ctx, domainID)
	if err != nil {
		return nil, err
	}
	active, err := s.Active(ctx, domainID)
	if err != nil || active == nil {
		return nil, err
	}
	stored := acme.Info{Fingerprint: active.Fingerprint, Serial: active.Serial, NotAfter: active.NotAfter}
	now := s.cfg.Now().UTC()
	var out []*ent.ServedCertificate
	for _, srv := range d.Edges.Servers {
		ep, err := s.endpoint(ctx, srv)
		if errors.Is(err, ErrEndpointUnknown) {
			s.log.Debug("not watching a server until its agent tells where nginx listens", "server", srv.Name, "domain", d.Name)
			continue
		}
		refused := errors.Is(err, ErrProbeRefused) || errors.Is(err, ErrNoAddress)
		if err != nil && !refused {
			return nil, fmt.Errorf("endpoint of server %s: %w", srv.Name, err)
		}
		addr := ""
		if !refused {
			addr = net.JoinHostPort(ep.Host, strconv.Itoa(ep.HTTPSPort))
		}
		create := s.db.Client.ServedCertificate.Create().SetDomainID(d.ID).SetServerID(srv.ID).SetAddress(addr).SetObservedAt(now)
		if refused {
			create.SetMatches(false).SetMessage(err.Error())
			row, err := create.Save(ctx)
			if err != nil {
				return nil, fmt.Errorf("record served certificate: %w", err)
			}
			row.Edges.Server = srv
			out = append(out, row)
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		info, err := acme.Served(dctx, addr, nginxconf.RequestName(d.Name))
		cancel()
		if err != nil {
			create.SetMatches(false).SetMessage(fmt.Sprintf("server %s: %v", srv.Name, err))
		} else {
			msg := acme.Mismatch(stored, info)
			if msg != "" {
				msg = fmt.Sprintf("server %s: %s", srv.Name, msg)
			}
			create.SetFingerprint(info.Fingerprint).SetSerial(info.Serial).SetIssuer(info.Issuer).
				SetNotAfter(info.NotAfter).SetMatches(msg == "").SetMessage(msg)
		}
		row, err := create.Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("record served certificate: %w", err)
		}
		row.Edges.Server = srv
		out = append(out, row)
	}
	if _, err := s.db.Client.ServedCertificate.Delete().Where(servedcertificate.DomainID(d.ID),
		servedcertificate.ObservedAtLT(now.Add(-30*24*time.Hour))).Exec(ctx); err != nil {
		s.log.Warn("prune served certificate history", "domain", d.Name, "error", err)
	}
	mismatches := 0
	for _, o := range out {
		if !o.Matches {
			mismatches++
		}
	}
	s.event(d.ID, "served", map[string]any{"domain_id": d.ID, "servers": len(out), "mismatches": mismatches})
	return out, nil
}

// WatchAll watches every domain that has an active certificate, for the
// scheduled job. Mismatches are logged; the job fails when any server serves
// another certificate than stored or cannot be reached.
func (s *Service) WatchAll(ctx context.Context, logf func(string, ...any)) error {
	ids, err := s.db.Client.Domain.Query().Where(entdomain.HasCertificatesWith(certificate.StatusEQ(certificate.StatusActive))).
		Order(ent.Asc(entdomain.FieldName)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("list domains with certificates: %w", err)
	}
	var problems []string
	for _, id := range ids {
		obs, err := s.WatchDomain(ctx, id)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, o := range obs {
			if !o.Matches {
				logf("%s", o.Message)
				problems = append(problems, o.Message)
			}
		}
	}
	logf("watched %d domains", len(ids))
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// Served returns the newest observation of each server for a domain.
func (s *Service) Served(ctx context.Context, domainID int) ([]*ent.ServedCertificate, error) {
	rows, err := s.db.Client.ServedCertificate.Query().Where(servedcertificate.DomainID(domainID)).
		Order(ent.Desc(servedcertificate.FieldObservedAt), ent.Desc(servedcertificate.FieldID)).WithServer().Limit(500).All(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	var out []*ent.ServedCertificate
	for _, r := range rows {
		if !seen[r.ServerID] {
			seen[r.ServerID] = true
			out = append(out, r)
		}
	}
	return out, nil
}
