package health

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/healthoutage"
	"github.com/gatehousehq/gatehouse/ent/predicate"
)

// healthOutages are a domain's runs of failed probes through one server
// (all its servers when server is 0, for ending them).
type healthOutages struct {
	client         *ent.Client
	domain, server int
}

func (o healthOutages) open() *ent.HealthOutageUpdate {
	where := []predicate.HealthOutage{healthoutage.DomainID(o.domain), healthoutage.EndedAtIsNil()}
	if o.server != 0 {
		where = append(where, healthoutage.ServerID(o.server))
	}
	return o.client.HealthOutage.Update().Where(where...)
}

func (o healthOutages) Extend(ctx context.Context) (bool, error) {
	n, err := o.open().AddChecks(1).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("count a failed probe: %w", err)
	}
	return n > 0, nil
}

func (o healthOutages) LastEnded(ctx context.Context) (*time.Time, error) {
	last, err := o.client.HealthOutage.Query().Where(healthoutage.DomainID(o.domain), healthoutage.ServerID(o.server), healthoutage.EndedAtNotNil()).
		Order(ent.Desc(healthoutage.FieldEndedAt)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outages: %w", err)
	}
	return last.EndedAt, nil
}

func (o healthOutages) Open(ctx context.Context, start time.Time, message string) error {
	err := o.client.HealthOutage.Create().SetDomainID(o.domain).SetServerID(o.server).SetStartedAt(start).SetMessage(message).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record an outage: %w", err)
	}
	return nil
}

func (o healthOutages) End(ctx context.Context, at time.Time) error {
	if err := o.open().SetEndedAt(at).Exec(ctx); err != nil {
		return fmt.Errorf("end an outage: %w", err)
	}
	return nil
}

// Outages returns a domain's newest runs of failed probes, newest first,
// each with its server.
func (s *Service) Outages(ctx context.Context, domainID, limit int) ([]*ent.HealthOutage, error) {
	out, err := s.db.Client.HealthOutage.Query().Where(healthoutage.DomainID(domainID)).WithServer().
		Order(ent.Desc(healthoutage.FieldStartedAt), ent.Desc(healthoutage.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read outages: %w", err)
	}
	return out, nil
}
