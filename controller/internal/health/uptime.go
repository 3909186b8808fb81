package health

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/healthhour"
)

// Retention is how long hourly probe counts are kept.
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

// Prune deletes hourly counts older than Retention.
func (s *Service) Prune(ctx context.Context) (int, error) {
	return s.db.Client.HealthHour.Delete().Where(healthhour.HourLT(s.cfg.Now().UTC().Add(-Retention))).Exec(ctx)
}

// Uptime is how a domain (or one of its servers) answered over a span.
type Uptime struct {
	Up, Down int
	// LatencyMS is the mean latency of the answers that were up.
	LatencyMS int
}

// Probes is the number of probes counted.
func (u Uptime) Probes() int { return u.Up + u.Down }

// Percent is the share of probes that were up, or -1 without probes.
func (u Uptime) Percent() float64 {
	if u.Probes() == 0 {
		return -1
	}
	return float64(u.Up) * 100 / float64(u.Probes())
}

// Label formats Percent for people: "99.95 %", "100 %", or "—".
func (u Uptime) Label() string {
	p := u.Percent()
	switch {
	case p < 0:
		return "—"
	case p == 100:
		return "100 %"
	}
	// Never round a failure up to 100.
	return fmt.Sprintf("%.2f %%", math.Floor(p*100)/100)
}

// Spans are the periods uptime is reported for.
var Spans = []struct {
	Name string
	Span time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

type tally struct {
	DomainID int   `json:"domain_id"`
	ServerID int   `json:"server_id"`
	Up       int   `json:"up"`
	Down     int   `json:"down"`
	Latency  int64 `json:"latency"`
}

func (t tally) uptime() Uptime {
	u := Uptime{Up: t.Up, Down: t.Down}
	if t.Up > 0 {
		u.LatencyMS = int(t.Latency / int64(t.Up))
	}
	return u
}

// since is the first hour counted in a span ending now: the current hour
// is partly in it, so a span of 24 hours covers the last 24 hour rows.
func (s *Service) since(span time.Duration) time.Time {
	return s.cfg.Now().UTC().Truncate(time.Hour).Add(-span + time.Hour)
}

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
type Hour struct {
	Start time.Time
	Uptime
}

// Hours returns the last n hours of a domain, oldest first, including hours
// without probes (zero counts), so a strip of them lines up with the clock.
func (s *Service) Hours(ctx context.Context, domainID, n int) ([]Hour, error) {
	first := s.since(time.Duration(n) * time.Hour)
	rows, err := s.db.Client.HealthHour.Query().Where(healthhour.DomainID(domainID), healthhour.HourGTE(first)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hours: %w", err)
	}
	out := make([]Hour, n)
	for i := range out {
		out[i].Start = first.Add(time.Duration(i) * time.Hour)
	}
	latency := make([]int64, n)
	for _, r := range rows {
		i := int(r.Hour.UTC().Sub(first) / time.Hour)
		if i < 0 || i >= n {
			continue
		}
		out[i].Up += r.Up
		out[i].Down += r.Down
		latency[i] += r.LatencyMsSum
	}
	for i := range out {
		if out[i].Up > 0 {
			out[i].LatencyMS = int(latency[i] / int64(out[i].Up))
		}
	}
	return out, nil
}

// Day is one UTC day of a domain's probes, all servers together.
type Day struct {
	Start time.Time
	Uptime
}

// Days returns the last n UTC days (today last) of each given domain,
// including days without probes, from the hourly counts in one query.
func (s *Service) Days(ctx context.Context, domainIDs []int, n int) (map[int][]Day, error) {
	out := make(map[int][]Day, len(domainIDs))
	if len(domainIDs) == 0 || n <= 0 {
		return out, nil
	}
	today := s.cfg.Now().UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(n - 1))
	rows, err := s.db.Client.HealthHour.Query().Where(healthhour.DomainIDIn(domainIDs...), healthhour.HourGTE(first)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read days: %w", err)
	}
	latency := make(map[int][]int64, len(domainIDs))
	for _, id := range domainIDs {
		days := make([]Day, n)
		for i := range days {
			days[i].Start = first.AddDate(0, 0, i)
		}
		out[id] = days
		latency[id] = make([]int64, n)
	}
	for _, r := range rows {
		days := out[r.DomainID]
		i := int(r.Hour.UTC().Sub(first) / (24 * time.Hour))
		if days == nil || i < 0 || i >= n {
			continue
		}
		days[i].Up += r.Up
		days[i].Down += r.Down
		latency[r.DomainID][i] += r.LatencyMsSum
	}
	for id, days := range out {
		for i := range days {
			if days[i].Up > 0 {
				days[i].LatencyMS = int(latency[id][i] / int64(days[i].Up))
			}
		}
	}
	return out, nil
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
