package controller

import (
	"context"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/monitor"
	"github.com/gatehousehq/gatehouse/ent/servedcertificate"
)

// The certificates overview lists every domain's certificate and every
// https monitor's, soonest expiry first, with how each is renewed and
// whether the nodes serve it: the page an operator opens to see what runs
// out next.
func (cw *certsWeb) registerOverview() error {
	for _, r := range []web.Route{
		{Method: "GET", Pattern: "/certificates", Policy: web.PolicyUser, Kind: web.KindPage, Handler: cw.overviewPage},
		{Method: "GET", Pattern: "/api/v1/certificates", Policy: web.PolicyUser, Kind: web.KindAPI, Handler: cw.apiOverview},
	} {
		if err := cw.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// Certificate states, for the list's badges and the API.
const (
	certOK       = "ok"       // more than the warning time left
	certExpiring = "expiring" // within alerts.DefaultDays
	certExpired  = "expired"
	certMissing  = "missing" // no certificate on record
)

// certStateOf grades an expiry against now.
func certStateOf(notAfter, now time.Time) (state string, daysLeft int) {
	left := notAfter.Sub(now)
	daysLeft = int(math.Floor(left.Hours() / 24))
	switch {
	case left <= 0:
		return certExpired, daysLeft
	case left <= alerts.DefaultDays*24*time.Hour:
		return certExpiring, daysLeft
	}
	return certOK, daysLeft
}

// domainCertJSON is one domain in the overview.
type domainCertJSON struct {
	DomainID int    `json:"domain_id"`
	Domain   string `json:"domain"`
	// State is ok, expiring (within 14 days), expired or missing.
	State string `json:"state"`
	// The active certificate; absent when State is missing.
	Names     []string   `json:"names,omitempty"`
	Issuer    string     `json:"issuer,omitempty"`
	Source    string     `json:"source,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	DaysLeft  *int       `json:"days_left,omitempty"`
	Challenge string     `json:"challenge,omitempty"`
	// Renewal is automatic (ACME) or manual (uploaded).
	Renewal       string     `json:"renewal"`
	Failures      int        `json:"failures"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// Served counts the nodes the watch reached; Mismatched those that
	// presented another certificate.
	Served     int `json:"served"`
	Mismatched int `json:"mismatched"`
}

// monitorCertJSON is one https monitor's certificate in the overview.
type monitorCertJSON struct {
	MonitorID int       `json:"monitor_id"`
	Monitor   string    `json:"monitor"`
	Target    string    `json:"target"`
	State     string    `json:"state"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"`
	// Accepted says the monitor accepts any certificate, so this one may
	// not verify.
	Accepted bool `json:"accepts_any_certificate"`
}

type certOverviewJSON struct {
	Domains  []domainCertJSON  `json:"domains"`
	Monitors []monitorCertJSON `json:"monitors"`
}

func (cw *certsWeb) overview(ctx context.Context) (certOverviewJSON, error) {
	now := time.Now()
	out := certOverviewJSON{Domains: []domainCertJSON{}, Monitors: []monitorCertJSON{}}
	doms, err := cw.c.db.Client.Domain.Query().Order(ent.Asc(domain.FieldName)).All(ctx)
	if err != nil {
		return out, err
	}
	ids := make([]int, len(doms))
	for i, d := range doms {
		ids[i] = d.ID
	}
	active, err := cw.c.certs.ActiveFor(ctx, ids)
	if err != nil {
		return out, err
	}
	policies, err := cw.c.db.Client.CertPolicy.Query().Where(certpolicy.DomainIDIn(ids...)).All(ctx)
	if err != nil {
		return out, err
	}
	policyOf := make(map[int]*ent.CertPolicy, len(policies))
	for _, p := range policies {
		policyOf[p.DomainID] = p
	}
	served, err := cw.c.db.Client.ServedCertificate.Query().Where(servedcertificate.DomainIDIn(ids...)).All(ctx)
	if err != nil {
		return out, err
	}
	// Per domain: the nodes the watch reached, and those presenting another certificate.
	servedBy := map[int][2]int{}
	for _, sc := range served {
		if sc.Address == "" {
			continue // not dialled
		}
		n := servedBy[sc.DomainID]
		n[0]++
		if !sc.Matches {
			n[1]++
		}
		servedBy[sc.DomainID] = n
	}
	for _, d := range doms {
		row := domainCertJSON{DomainID: d.ID, Domain: d.Name, State: certMissing, Renewal: "automatic"}
		if ct := active[d.ID]; ct != nil {
			state, days := certStateOf(ct.NotAfter, now)
			notAfter := ct.NotAfter
			row.State, row.DaysLeft, row.NotAfter = state, &days, &notAfter
			row.Names, row.Issuer, row.Source, row.Challenge = ct.Names, ct.Issuer, string(ct.Source), ct.Challenge
		}
		if p := policyOf[d.ID]; p != nil {
			if p.Mode == certpolicy.ModeUpload {
				row.Renewal = "manual"
			}
			row.Failures, row.NextAttemptAt, row.LastError = p.Failures, p.NextAttemptAt, clipText(p.LastError, 300)
		}
		row.Served, row.Mismatched = servedBy[d.ID][0], servedBy[d.ID][1]
		out.Domains = append(out.Domains, row)
	}
	// Soonest expiry first; domains without a certificate last.
	sort.SliceStable(out.Domains, func(i, j int) bool {
		a, b := out.Domains[i], out.Domains[j]
		switch {
		case a.NotAfter == nil || b.NotAfter == nil:
			return a.NotAfter != nil && b.NotAfter == nil
		}
		return a.NotAfter.Before(*b.NotAfter)
	})

	mons, err := cw.c.db.Client.Monitor.Query().Where(monitor.CertNotAfterNotNil()).Order(ent.Asc(monitor.FieldCertNotAfter)).All(ctx)
	if err != nil {
		return out, err
	}
	for _, m := range mons {
		state, days := certStateOf(*m.CertNotAfter, now)
		out.Monitors = append(out.Monitors, monitorCertJSON{MonitorID: m.ID, Monitor: m.Name, Target: m.Target, State: state,
			NotAfter: *m.CertNotAfter, DaysLeft: days, Accepted: m.IgnoreTLSErrors})
	}
	return out, nil
}

func (cw *certsWeb) overviewPage(w http.ResponseWriter, r *http.Request) {
	v, err := cw.overview(r.Context())
	if err != nil {
		cw.c.log.Error("certificates page", "error", err)
		cw.w.Render(w, r, http.StatusInternalServerError, "error", "Error", "/domains", map[string]string{"Heading": "Certificates unavailable", "Message": "They could not be read; try again in a moment."})
		return
	}
	cw.w.Render(w, r, http.StatusOK, "certificates", "Certificates", "/domains", v)
}

func (cw *certsWeb) apiOverview(w http.ResponseWriter, r *http.Request) {
	v, err := cw.overview(r.Context())
	if err != nil {
		cw.c.log.Error("certificates api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the certificates could not be read", nil)
		return
	}
	web.WriteJSON(w, http.StatusOK, v)
}
