package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/ent/dnscheck"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/healthcheck"
	"github.com/gatehousehq/gatehouse/ent/healthhour"
	"github.com/gatehousehq/gatehouse/ent/healthprobe"
	"github.com/gatehousehq/gatehouse/ent/monitor"
	"github.com/gatehousehq/gatehouse/ent/predicate"
	"github.com/gatehousehq/gatehouse/ent/servedcertificate"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// appliesDomain reports whether the rule covers a domain: one served by a
// server in the rule's scope. A domain no current server serves is covered
// by no rule.
func (r Rule) appliesDomain(d DomainFacts, servers map[int]ServerRef) bool {
	for _, id := range d.ServerIDs {
		if s, ok := servers[id]; ok && r.Applies(s) {
			return true
		}
	}
	return false
}

// serverNames names the servers with the given ids, in order.
func serverNames(ids []int, servers map[int]ServerRef) []string {
	var out []string
	for _, id := range ids {
		if s, ok := servers[id]; ok {
			out = append(out, s.Name)
		}
	}
	slices.Sort(out)
	return out
}

// domainFacts reads what certificate and DNS rules judge, for every domain,
// in a fixed number of queries: domains with their servers, the active (or
// expired) certificates, the certificate policies, and the address results
// of each domain's newest DNS check run. Servers not in facts (removed ones)
// do not count as serving a domain.
func (e *Engine) domainFacts(ctx context.Context, facts []ServerFacts, uptimeWindows []time.Duration, now time.Time) ([]DomainFacts, error) {
	current := make(map[int]bool, len(facts))
	names := make(map[int]string, len(facts))
	for _, f := range facts {
		current[f.ID] = true
		names[f.ID] = f.Name
	}
	doms, err := e.db.Client.Domain.Query().Select(domain.FieldName, domain.FieldMaintenance).
		WithServers(func(q *ent.ServerQuery) { q.Select(server.FieldID) }).
		Order(ent.Asc(domain.FieldName)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	out := make([]DomainFacts, len(doms))
	byID := make(map[int]*DomainFacts, len(doms))
	for i, d := range doms {
		out[i] = DomainFacts{ID: d.ID, Name: d.Name, Maintenance: d.Maintenance}
		for _, s := range d.Edges.Servers {
			if current[s.ID] {
				out[i].ServerIDs = append(out[i].ServerIDs, s.ID)
			}
		}
		slices.Sort(out[i].ServerIDs)
		byID[d.ID] = &out[i]
	}

	// The active certificate wins (the newest, as the certificate service
	// picks it); a domain without one falls back to its newest expired one.
	certs, err := e.db.Client.Certificate.Query().
		Where(certificate.StatusIn(certificate.StatusActive, certificate.StatusExpired)).
		Select(certificate.FieldDomainID, certificate.FieldNotAfter, certificate.FieldSerial, certificate.FieldStatus).
		Order(ent.Asc(certificate.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	active := map[int]bool{}
	for _, c := range certs {
		d := byID[c.DomainID]
		if d == nil || (active[c.DomainID] && c.Status != certificate.StatusActive) {
			continue
		}
		d.Cert = &CertFacts{NotAfter: c.NotAfter, Serial: c.Serial}
		active[c.DomainID] = active[c.DomainID] || c.Status == certificate.StatusActive
	}

	pols, err := e.db.Client.CertPolicy.Query().
		Select(certpolicy.FieldDomainID, certpolicy.FieldMode, certpolicy.FieldFailures, certpolicy.FieldLastError,
			certpolicy.FieldLastAttemptAt, certpolicy.FieldNextAttemptAt).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read certificate policies: %w", err)
	}
	for _, p := range pols {
		d := byID[p.DomainID]
		if d == nil {
			continue
		}
		pf := &PolicyFacts{Automatic: p.Mode == certpolicy.ModeAcme, Failures: p.Failures, LastError: p.LastError}
		if p.LastAttemptAt != nil {
			pf.LastAttempt = *p.LastAttemptAt
		}
		if p.NextAttemptAt != nil {
			pf.NextAttempt = *p.NextAttemptAt
		}
		d.Policy = pf
	}

	rows, err := e.db.Client.DNSCheck.Query().Where(dnscheck.KindEQ(dnscheck.KindAddress), newestAddressRun()).
		Select(dnscheck.FieldDomainID, dnscheck.FieldName, dnscheck.FieldStatus, dnscheck.FieldMessage, dnscheck.FieldCheckedAt).
		Order(ent.Asc(dnscheck.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read dns checks: %w", err)
	}
	for _, r := range rows {
		d := byID[r.DomainID]
		if d == nil {
			continue
		}
		d.DNSCheckedAt = r.CheckedAt
		d.DNS = append(d.DNS, DNSResult{Name: r.Name, Status: r.Status, Message: r.Message})
	}

	probes, err := e.db.Client.HealthProbe.Query().Where(healthprobe.HasDomainWith(domain.HasHealthCheckWith(healthcheck.Enabled(true)))).
		Select(healthprobe.FieldDomainID, healthprobe.FieldServerID, healthprobe.FieldOk, healthprobe.FieldStatus, healthprobe.FieldMessage,
			healthprobe.FieldAt, healthprobe.FieldFailingSince).
		Order(ent.Asc(healthprobe.FieldServerID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read health probes: %w", err)
	}
	for _, p := range probes {
		d := byID[p.DomainID]
		if d == nil {
			continue
		}
		h := HealthResult{ServerID: p.ServerID, Server: names[p.ServerID], OK: p.Ok, Status: p.Status, Message: p.Message, At: p.At}
		if p.FailingSince != nil {
			h.FailingSince = *p.FailingSince
		}
		d.Health = append(d.Health, h)
	}

	served, err := e.db.Client.ServedCertificate.Query().Where(newestServed()).
		Select(servedcertificate.FieldDomainID, servedcertificate.FieldServerID, servedcertificate.FieldAddress,
			servedcertificate.FieldMatches, servedcertificate.FieldMessage, servedcertificate.FieldObservedAt).
		Order(ent.Asc(servedcertificate.FieldServerID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read served certificates: %w", err)
	}
	for _, sc := range served {
		d := byID[sc.DomainID]
		if d == nil {
			continue
		}
		d.Served = append(d.Served, ServedResult{ServerID: sc.ServerID, Server: names[sc.ServerID], Probed: sc.Address != "",
			Matches: sc.Matches, Message: sc.Message, ObservedAt: sc.ObservedAt})
	}

	// Uptime over each window an uptime rule asks for: the hourly counts
	// since the start of the hour the window reaches back into.
	for _, w := range uptimeWindows {
		since := uptime.Since(now, w)
		var sums []struct {
			DomainID int `json:"domain_id"`
			Up       int `json:"up"`
			Down     int `json:"down"`
		}
		err := e.db.Client.HealthHour.Query().Where(healthhour.HourGTE(since)).GroupBy(healthhour.FieldDomainID).
			Aggregate(ent.As(ent.Sum(healthhour.FieldUp), "up"), ent.As(ent.Sum(healthhour.FieldDown), "down")).Scan(ctx, &sums)
		if err != nil {
			return nil, fmt.Errorf("sum uptime: %w", err)
		}
		for _, u := range sums {
			d := byID[u.DomainID]
			if d == nil {
				continue
			}
			if d.Uptime == nil {
				d.Uptime = map[time.Duration]UptimeCount{}
			}
			d.Uptime[w] = UptimeCount{Up: u.Up, Down: u.Down}
		}
	}
	return out, nil
}

// newestServed keeps each domain and server's newest certificate watch: the
// rows of which no newer row of the same pair exists, in one query.
func newestServed() predicate.ServedCertificate {
	return func(s *sql.Selector) {
		newer := sql.Table(servedcertificate.Table).As("newer")
		sub := sql.Dialect(s.Dialect()).Select(newer.C(servedcertificate.FieldID)).From(newer).Where(sql.And(
			sql.ColumnsEQ(newer.C(servedcertificate.FieldDomainID), s.C(servedcertificate.FieldDomainID)),
			sql.ColumnsEQ(newer.C(servedcertificate.FieldServerID), s.C(servedcertificate.FieldServerID)),
			sql.Or(
				sql.ColumnsGT(newer.C(servedcertificate.FieldObservedAt), s.C(servedcertificate.FieldObservedAt)),
				sql.And(sql.ColumnsEQ(newer.C(servedcertificate.FieldObservedAt), s.C(servedcertificate.FieldObservedAt)),
					sql.ColumnsGT(newer.C(servedcertificate.FieldID), s.C(servedcertificate.FieldID))),
			),
		))
		s.Where(sql.NotExists(sub))
	}
}

// newestAddressRun keeps the address checks of which no newer address check
// of the same domain exists: each domain's newest run, in one query.
func newestAddressRun() predicate.DNSCheck {
	return func(s *sql.Selector) {
		newer := sql.Table(dnscheck.Table).As("newer")
		sub := sql.Dialect(s.Dialect()).Select(newer.C(dnscheck.FieldID)).From(newer).Where(sql.And(
			sql.ColumnsEQ(newer.C(dnscheck.FieldDomainID), s.C(dnscheck.FieldDomainID)),
			sql.EQ(newer.C(dnscheck.FieldKind), dnscheck.KindAddress.String()),
			sql.ColumnsGT(newer.C(dnscheck.FieldCheckedAt), s.C(dnscheck.FieldCheckedAt)),
		))
		s.Where(sql.NotExists(sub))
	}
}

// monitorFacts reads every monitor's newest result.
func (e *Engine) monitorFacts(ctx context.Context) ([]MonitorFacts, error) {
	list, err := e.db.Client.Monitor.Query().Order(ent.Asc(monitor.FieldName)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read monitors: %w", err)
	}
	out := make([]MonitorFacts, len(list))
	for i, m := range list {
		out[i] = MonitorFacts{Name: m.Name, Enabled: m.Enabled, Checked: m.CheckedAt != nil, OK: m.Ok, Status: m.Status, Message: m.Message}
		if m.FailingSince != nil {
			out[i].FailingSince = *m.FailingSince
		}
		if m.CertNotAfter != nil {
			out[i].CertNotAfter = *m.CertNotAfter
		}
	}
	return out, nil
}
