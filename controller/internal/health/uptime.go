package health

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/healthhour"
	"github.com/gatehousehq/gatehouse/ent/healthoutage"
)

// Retention is how long hourly probe counts and ended outages are kept.
const Retention = 90 * 24 * time.Hour

// count adds one probe to its hour.
func (s *Service) count(ctx context.Context, domainID, serverID int, p outcome) error {
	create := s.db.Client.HealthHour.Create().SetDomainID(domainID).SetServerID(serverID).
		SetHour(p.at.UTC().Truncate(time.Hour))
	var up, down, latency int64
	if p.ok {
		up, latency = 1, int64(p.latency)
	} else {
		down = 1
	}
	err := create.SetUp(int(up)).SetDown(int(down)).SetLatencyMsSum(latency).
		OnConflictColumns(healthhour.FieldDomainID, healthhour.FieldServerID, healthhour.FieldHour).
		Update(func(u *ent.HealthHourUpsert) {
			u.AddUp(int(up))
			u.AddDown(int(down))
			u.AddLatencyMsSum(latency)
		}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("count a probe: %w", err)
	}
	return nil
}

// Prune deletes hourly counts, and outages that ended, older than
// Retention.
func (s *Service) Prune(ctx context.Context) (int, error) {
	cut := s.cfg.Now().UTC().Add(-Retention)
	n, err := s.db.Client.HealthHour.Delete().Where(healthhour.HourLT(cut)).Exec(ctx)
	if err != nil {
		return n, err
	}
	o, err := s.db.Client.HealthOutage.Delete().Where(healthoutage.EndedAtLT(cut)).Exec(ctx)
	return n + o, err
}

// Uptime is how a domain (or one of its servers) answered over a span.
type Uptime = uptime.Uptime

// Spans are the periods uptime is reported for.
var Spans = uptime.Spans

type tally struct {
	DomainID int   `json:"domain_id"`
	ServerID int   `json:"server_id"`
	Up       int   `json:"up"`
	Down     int   `json:"down"`
	Latency  int64 `json:"latency"`
}

func (t tally) uptime() Uptime { return uptime.Of(t.Up, t.Down, t.Latency) }

// since is the first hour counted in a span ending now.
func (s *Service) since(span time.Duration) time.Time { return uptime.Since(s.cfg.Now(), span) }

// DomainUptime returns the uptime of the given domains over span, all their
// servers together, in one query. Domains without counted probes are absent.
func (s *Service) DomainUptime(ctx context.Context, domainIDs []int, span time.Duration) (map[int]Uptime, error) {
	out := map[int]Uptime{}
	if len(domainIDs) == 0 {
		return out, nil
	}
	var rows []tally
	err := s.db.Client.HealthHour.Query().Where(healthhour.DomainIDIn(domainIDs...), healthhour.HourGTE(s.since(span))).
		GroupBy(healthhour.FieldDomainID).
		Aggregate(ent.As(ent.Sum(healthhour.FieldUp), "up"), ent.As(ent.Sum(healthhour.FieldDown), "down"),
			ent.As(ent.Sum(healthhour.FieldLatencyMsSum), "latency")).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("sum uptime: %w", err)
	}
	for _, r := range rows {
		out[r.DomainID] = r.uptime()
	}
	return out, nil
}

// ServerUptime returns the uptime of one domain over span per server.
func (s *Service) ServerUptime(ctx context.Context, domainID int, span time.Duration) (map[int]Uptime, error) {
	var rows []tally
	err := s.db.Client.HealthHour.Query().Where(healthhour.DomainID(domainID), healthhour.HourGTE(s.since(span))).
		GroupBy(healthhour.FieldServerID).
		Aggregate(ent.As(ent.Sum(healthhour.FieldUp), "up"), ent.As(ent.Sum(healthhour.FieldDown), "down"),
			ent.As(ent.Sum(healthhour.FieldLatencyMsSum), "latency")).
		Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("sum uptime per server: %w", err)
	}
	out := make(map[int]Uptime, len(rows))
	for _, r := range rows {
		out[r.ServerID] = r.uptime()
	}
	return out, nil
}

// Hour is one hour of a domain's probes, all servers together.
type Hour = uptime.Bucket

// Day is one UTC day of a domain's probes, all servers together.
type Day = uptime.Bucket

// rows reads the hourly counts of the given domains from first on.
func (s *Service) rows(ctx context.Context, domainIDs []int, first time.Time) ([]uptime.Row, error) {
	hours, err := s.db.Client.HealthHour.Query().Where(healthhour.DomainIDIn(domainIDs...), healthhour.HourGTE(first)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]uptime.Row, len(hours))
	for i, h := range hours {
		out[i] = uptime.Row{Key: h.DomainID, Hour: h.Hour, Up: h.Up, Down: h.Down, LatencySum: h.LatencyMsSum}
	}
	return out, nil
}

// Hours returns the last n hours of a domain, oldest first, including hours
// without probes (zero counts), so a strip of them lines up with the clock.
func (s *Service) Hours(ctx context.Context, domainID, n int) ([]Hour, error) {
	first := s.since(time.Duration(n) * time.Hour)
	rows, err := s.rows(ctx, []int{domainID}, first)
	if err != nil {
		return nil, fmt.Errorf("read hours: %w", err)
	}
	return uptime.Hours(rows, first, n), nil
}

// Days returns the last n UTC days (today last) of each given domain,
// including days without probes, from the hourly counts in one query.
func (s *Service) Days(ctx context.Context, domainIDs []int, n int) (map[int][]Day, error) {
	if len(domainIDs) == 0 || n <= 0 {
		return map[int][]Day{}, nil
	}
	first := uptime.FirstDay(s.cfg.Now(), n)
	rows, err := s.rows(ctx, domainIDs, first)
	if err != nil {
		return nil, fmt.Errorf("read days: %w", err)
	}
	return uptime.Days(rows, domainIDs, first, n), nil
}

// SetStatusPage lists a domain on the public status page, or takes it off.
func (s *Service) SetStatusPage(ctx context.Context, actor audit.Actor, domainID int, listed bool) error {
	d, err := s.db.Client.Domain.Get(ctx, domainID)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if d.StatusPage == listed {
		return nil
	}
	if err := s.db.Client.Domain.UpdateOneID(domainID).SetStatusPage(listed).Exec(ctx); err != nil {
		return fmt.Errorf("list the domain on the status page: %w", err)
	}
	if s.cfg.Audit != nil {
		what := "listed on the public status page"
		if !listed {
			what = "taken off the public status page"
		}
		if err := s.cfg.Audit.Record(ctx, audit.For(actor, "domain.status_page", "domain:"+d.Name, what)); err != nil {
			s.log.Error("audit", "error", err)
		}
	}
	return nil
}
