package controller

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/health"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/monitor"
)

// statusWeb serves the public status page: the domains an admin listed, with
// their state and uptime, and nothing about the servers behind them (no
// names, addresses or error messages). Anyone may read it; it exists only
// while at least one domain is listed. The view is computed at most once per
// statusCacheFor, so visitors cannot make the database work harder.
type statusWeb struct {
	c *Controller
	w *web.Server

	mu     sync.Mutex
	cached *statusView
	at     time.Time
}

const (
	statusCacheFor = 15 * time.Second
	statusDays     = 30
)

// statusView is the status page and its JSON.
type statusView struct {
	Title string `json:"title"`
	// State is operational, degraded, outage or unknown.
	State     string         `json:"state"`
	Headline  string         `json:"headline"`
	UpdatedAt time.Time      `json:"updated_at"`
	Domains   []statusDomain `json:"domains"`
	// Monitors are the listed monitors, shown the same way.
	Monitors []statusDomain `json:"monitors"`
	// Outages are the listed services' outages of the last 14 days, newest
	// first, at most 10.
	Outages []statusOutage `json:"outages"`
}

type statusDomain struct {
	Name string `json:"name"`
	// State is up, degraded (down on some servers), down, maintenance or
	// unknown (no health check result).
	State  string                `json:"state"`
	Uptime map[string]uptimeJSON `json:"uptime"`
	// Every is how often it is checked, in words ("minute", "30 seconds").
	Every string `json:"every"`
	// Days are the last 30 UTC days, today last.
	Days []statusDay `json:"days"`
}

type statusDay struct {
	Date string `json:"date"`
	uptimeJSON
	Class string `json:"class"`
}

func (sw *statusWeb) register() error {
	for _, r := range []web.Route{
		{Method: "GET", Pattern: "/status", Policy: web.PolicyPublic, Kind: web.KindPage, Handler: sw.page},
		{Method: "GET", Pattern: "/api/v1/status", Policy: web.PolicyPublic, Kind: web.KindAPI, Handler: sw.api},
	} {
		if err := sw.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// view returns the status of the listed domains, nil when none is listed.
func (sw *statusWeb) view(ctx context.Context) (*statusView, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	now := time.Now()
	if sw.cached != nil && now.Sub(sw.at) < statusCacheFor {
		return sw.cached, nil
	}
	v, err := sw.build(ctx, now)
	if err != nil {
		return nil, err
	}
	sw.cached, sw.at = v, now
	return v, nil
}

// statusForget drops the status page's cached view, after a domain or
// monitor was listed, unlisted or changed.
func (c *Controller) statusForget() {
	if c.status != nil {
		c.status.forget()
	}
}

// forget drops the cached view, after a domain was listed or unlisted.
func (sw *statusWeb) forget() {
	sw.mu.Lock()
	sw.cached = nil
	sw.mu.Unlock()
}

func (sw *statusWeb) build(ctx context.Context, now time.Time) (*statusView, error) {
	doms, err := sw.c.db.Client.Domain.Query().Where(domain.StatusPage(true)).
		Select(domain.FieldName).Order(ent.Asc(domain.FieldName)).All(ctx)
	if err != nil {
		return nil, err
	}
	mons, err := sw.c.db.Client.Monitor.Query().Where(monitor.StatusPage(true)).Order(ent.Asc(monitor.FieldName)).All(ctx)
	if err != nil || len(doms)+len(mons) == 0 {
		return nil, err
	}
	ids := make([]int, len(doms))
	for i, d := range doms {
		ids[i] = d.ID
	}
	hs := sw.c.health
	sums, err := hs.Summaries(ctx, ids)
	if err != nil {
		return nil, err
	}
	spans := map[string]map[int]health.Uptime{}
	for _, sp := range health.Spans {
		if spans[sp.Name], err = hs.DomainUptime(ctx, ids, sp.Span); err != nil {
			return nil, err
		}
	}
	days, err := hs.Days(ctx, ids, statusDays)
	if err != nil {
		return nil, err
	}
	v := &statusView{Title: sw.c.cfg.StatusPageTitle, UpdatedAt: now.UTC(), Domains: make([]statusDomain, len(doms))}
	count := map[string]int{}
	for i, d := range doms {
		sd := statusDomain{Name: d.Name, State: "unknown", Uptime: map[string]uptimeJSON{}, Every: every(sw.c.cfg.HealthInterval)}
		if s, ok := sums[d.ID]; ok {
			switch {
			case s.Maintenance:
				sd.State = "maintenance"
			case s.Down == 0:
				sd.State = "up"
			case s.Up == 0:
				sd.State = "down"
			default:
				sd.State = "degraded"
			}
		}
		count[sd.State]++
		for _, sp := range health.Spans {
			sd.Uptime[sp.Name] = toUptimeJSON(spans[sp.Name][d.ID])
		}
		for _, day := range days[d.ID] {
			sd.Days = append(sd.Days, statusDay{Date: day.Start.Format(time.DateOnly), uptimeJSON: toUptimeJSON(day.Uptime), Class: hourClass(day.Uptime)})
		}
		v.Domains[i] = sd
	}
	monitorsView, err := sw.monitors(ctx, mons, count)
	if err != nil {
		return nil, err
	}
	v.Monitors = monitorsView
	if v.Outages, err = sw.statusOutages(ctx, doms, mons, now); err != nil {
		return nil, err
	}
	switch {
	case count["down"] > 0:
		v.State, v.Headline = "outage", "Some services are down"
	case count["degraded"] > 0:
		v.State, v.Headline = "degraded", "Some services are degraded"
	case count["unknown"] == len(doms)+len(mons):
		v.State, v.Headline = "unknown", "No checks have run yet"
	default:
		v.State, v.Headline = "operational", "All systems operational"
	}
	return v, nil
}

// monitors is the status of the listed monitors: never their targets or
// messages. Each state is counted into count for the headline.
func (sw *statusWeb) monitors(ctx context.Context, mons []*ent.Monitor, count map[string]int) ([]statusDomain, error) {
	out := make([]statusDomain, 0, len(mons))
	if len(mons) == 0 {
		return out, nil
	}
	ids := make([]int, len(mons))
	for i, m := range mons {
		ids[i] = m.ID
	}
	svc := sw.c.newMonitors()
	up, err := svc.Uptime(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, m := range mons {
		sd := statusDomain{Name: m.Name, State: "unknown", Uptime: map[string]uptimeJSON{},
			Every: every(time.Duration(m.IntervalS) * time.Second)}
		switch {
		case !m.Enabled || m.CheckedAt == nil:
		case m.Ok:
			sd.State = "up"
		default:
			sd.State = "down"
		}
		count[sd.State]++
		for _, sp := range health.Spans {
			sd.Uptime[sp.Name] = toUptimeJSON(up[sp.Name][m.ID])
		}
		days, err := svc.Days(ctx, m.ID, statusDays)
		if err != nil {
			return nil, err
		}
		for _, day := range days {
			sd.Days = append(sd.Days, statusDay{Date: day.Start.Format(time.DateOnly), uptimeJSON: toUptimeJSON(day.Uptime), Class: hourClass(day.Uptime)})
		}
		out = append(out, sd)
	}
	return out, nil
}

func (sw *statusWeb) page(w http.ResponseWriter, r *http.Request) {
	v, err := sw.view(r.Context())
	if err != nil {
		sw.c.log.Error("status page", "error", err)
		sw.w.Render(w, r, http.StatusInternalServerError, "error", "Status", "", map[string]string{"Heading": "Status unavailable", "Message": "The status could not be read; try again in a minute."})
		return
	}
	if v == nil {
		sw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "", map[string]string{"Heading": "Not found", "Message": "There is no page here."})
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=15")
	sw.w.Render(w, r, http.StatusOK, "status", v.Title, "", v)
}

func (sw *statusWeb) api(w http.ResponseWriter, r *http.Request) {
	v, err := sw.view(r.Context())
	if err != nil {
		sw.c.log.Error("status api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the status could not be read", nil)
		return
	}
	if v == nil {
		web.WriteError(w, http.StatusNotFound, "not_found", "no status page", nil)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=15")
	// Public and without credentials: other sites may show it.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	web.WriteJSON(w, http.StatusOK, v)
}

// every says how often, for "checked every ...": "minute", "5 minutes".
func every(d time.Duration) string {
	return strings.TrimPrefix(alerts.HumanDuration(d), "1 ")
}
