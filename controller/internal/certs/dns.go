package certs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/dnscheck"
	"github.com/gatehousehq/gatehouse/ent"
	entdns "github.com/gatehousehq/gatehouse/ent/dnscheck"
	entdomain "github.com/gatehousehq/gatehouse/ent/domain"
)

// DNS check statuses stored in DNSCheck.status.
const (
	StatusOK              = "ok"
	StatusPointsElsewhere = "points_elsewhere"
	StatusNotResolving    = "not_resolving"
	StatusForbidden       = "forbidden"
	StatusError           = "error"
)

// KeepDNSRuns is how many check runs are kept per domain.
const KeepDNSRuns = 50

// DNSReport is one check run of a domain: every result stored with the same
// time.
type DNSReport struct {
	DomainID  int
	CheckedAt time.Time
	Results   []*ent.DNSCheck
}

// Worst is the most serious status of the run: error, then not_resolving,
// points_elsewhere, forbidden, and ok when all passed; "" before any check.
func (r DNSReport) Worst() string {
	rank := map[string]int{StatusOK: 1, StatusForbidden: 2, StatusPointsElsewhere: 3, StatusNotResolving: 4, StatusError: 5}
	worst := ""
	for _, c := range r.Results {
		if rank[c.Status] > rank[worst] {
			worst = c.Status
		}
	}
	return worst
}

// Summary says in a few words what the run found.
func (r DNSReport) Summary() string {
	switch r.Worst() {
	case "":
		return "not checked yet"
	case StatusOK:
		return "points here"
	}
	for _, c := range r.Results {
		if c.Status == r.Worst() {
			return c.Message
		}
	}
	return ""
}

// CheckDomain checks a domain's DNS now and stores the results: where each
// name points compared with the addresses of the servers that serve it, the
// delegation of its zone, and whether CAA lets the CA issue for each name.
func (s *Service) CheckDomain(ctx context.Context, id int) (DNSReport, error) {
	d, err := s.domain(ctx, id)
	if err != nil {
		return DNSReport{}, err
	}
	now := s.cfg.Now().UTC()
	expected := serverAddrs(d.Edges.Servers)
	caID, caErr := s.caaIdentity(ctx)

	bulk := []*ent.DNSCheckCreate{}
	add := func(name string, kind entdns.Kind, status, msg string, addrs []string) {
		bulk = append(bulk, s.db.Client.DNSCheck.Create().SetDomainID(id).SetName(name).SetKind(kind).
			SetStatus(status).SetMessage(msg).SetAddresses(addrs).SetCheckedAt(now))
	}
	for _, name := range names(d) {
		if !strings.HasPrefix(name, "*.") {
			res := s.checker.Check(ctx, name, expected)
			add(name, entdns.KindAddress, addressStatus(res.Status), res.Message, addrStrings(res))
		}
		if caErr != nil {
			add(name, entdns.KindCaa, StatusError, fmt.Sprintf("could not check CAA for %s: %v", name, caErr), nil)
			continue
		}
		allowed, records, err := s.checker.CAAAllows(ctx, name, caID)
		switch {
		case err != nil:
			add(name, entdns.KindCaa, StatusError, fmt.Sprintf("could not read the CAA records of %s: %v", name, err), nil)
		case allowed:
			add(name, entdns.KindCaa, StatusOK, dnscheck.DescribeCAA(name, caID, true, records), nil)
		default:
			add(name, entdns.KindCaa, StatusForbidden, dnscheck.DescribeCAA(name, caID, false, records), nil)
		}
	}
	if del, err := s.checker.Delegation(ctx, d.Name); err != nil {
		add(d.Name, entdns.KindNs, StatusError, err.Error(), nil)
	} else {
		add(d.Name, entdns.KindNs, StatusOK, del.Message, del.Nameservers)
	}
	rows, err := s.db.Client.DNSCheck.CreateBulk(bulk...).Save(ctx)
	if err != nil {
		return DNSReport{}, fmt.Errorf("store dns checks of %s: %w", d.Name, err)
	}
	if err := s.pruneDNS(ctx, id); err != nil {
		s.log.Warn("prune dns check history", "domain", d.Name, "error", err)
	}
	rep := DNSReport{DomainID: id, CheckedAt: now, Results: rows}
	s.event(id, "dns", map[string]any{"domain_id": id, "status": rep.Worst(), "summary": rep.Summary()})
	return rep, nil
}

func addressStatus(st dnscheck.Status) string {
	switch st {
	case dnscheck.StatusPointsHere:
		return StatusOK
	case dnscheck.StatusPointsElsewhere:
		return StatusPointsElsewhere
	case dnscheck.StatusNotResolving:
		return StatusNotResolving
	default:
		return StatusError
	}
}

func addrStrings(r dnscheck.Result) []string {
	out := make([]string, len(r.Addrs))
	for i, a := range r.Addrs {
		out[i] = a.String()
	}
	return out
}

// pruneDNS keeps the newest KeepDNSRuns runs of a domain.
func (s *Service) pruneDNS(ctx context.Context, id int) error {
	runs, err := s.runTimes(ctx, id)
	if err != nil || len(runs) <= KeepDNSRuns {
		return err
	}
	_, err = s.db.Client.DNSCheck.Delete().Where(entdns.DomainID(id), entdns.CheckedAtLT(runs[KeepDNSRuns-1])).Exec(ctx)
	return err
}

// runTimes are the distinct times of a domain's check runs, newest first.
func (s *Service) runTimes(ctx context.Context, id int) ([]time.Time, error) {
	rows, err := s.db.Client.DNSCheck.Query().Where(entdns.DomainID(id)).
		Order(ent.Desc(entdns.FieldCheckedAt)).Select(entdns.FieldCheckedAt).All(ctx)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, r := range rows {
		if len(out) == 0 || !out[len(out)-1].Equal(r.CheckedAt) {
			out = append(out, r.CheckedAt)
		}
	}
	return out, nil
}

// DNSHistory returns a domain's newest check runs, newest first.
func (s *Service) DNSHistory(ctx context.Context, id, runs int) ([]DNSReport, error) {
	rows, err := s.db.Client.DNSCheck.Query().Where(entdns.DomainID(id)).
		Order(ent.Desc(entdns.FieldCheckedAt), ent.Asc(entdns.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load dns checks of domain %d: %w", id, err)
	}
	var out []DNSReport
	for _, r := range rows {
		if len(out) == 0 || !out[len(out)-1].CheckedAt.Equal(r.CheckedAt) {
			if len(out) == runs {
				break
			}
			out = append(out, DNSReport{DomainID: id, CheckedAt: r.CheckedAt})
		}
		out[len(out)-1].Results = append(out[len(out)-1].Results, r)
	}
	return out, nil
}

// LatestDNS returns the newest check run of each domain that has one, in
// one query (the history of each domain is pruned to KeepDNSRuns runs).
func (s *Service) LatestDNS(ctx context.Context, ids []int) (map[int]DNSReport, error) {
	out := map[int]DNSReport{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.Client.DNSCheck.Query().Where(entdns.DomainIDIn(ids...)).
		Order(ent.Desc(entdns.FieldCheckedAt), ent.Asc(entdns.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load dns checks: %w", err)
	}
	for _, r := range rows {
		rep, ok := out[r.DomainID]
		if !ok {
			rep = DNSReport{DomainID: r.DomainID, CheckedAt: r.CheckedAt}
		} else if !rep.CheckedAt.Equal(r.CheckedAt) {
			continue // an older run
		}
		rep.Results = append(rep.Results, r)
		out[r.DomainID] = rep
	}
	return out, nil
}

// CheckAll checks every domain, for the scheduled job.
func (s *Service) CheckAll(ctx context.Context, logf func(string, ...any)) error {
	ids, err := s.db.Client.Domain.Query().Order(ent.Asc(entdomain.FieldName)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	var failed []string
	for _, id := range ids {
		rep, err := s.CheckDomain(ctx, id)
		if err != nil {
			failed = append(failed, err.Error())
			continue
		}
		if w := rep.Worst(); w != StatusOK {
			logf("domain %d: %s", id, rep.Summary())
		}
	}
	logf("checked %d domains", len(ids)-len(failed))
	if len(failed) > 0 {
		return fmt.Errorf("%d domains could not be checked: %s", len(failed), strings.Join(slices.Compact(failed), "; "))
	}
	return nil
}
