package controller

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/certs"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/health"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/healthcheck"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/monitor"
)

// buildHealth wires domain health checks: probes through every serving
// node's nginx, a job that runs them, and live events for the pages.
func (c *Controller) buildHealth() error {
	c.health = health.New(c.db, health.Config{
		Endpoint: func(ctx context.Context, srv *ent.Server) (health.Endpoint, error) {
			ep, err := c.nodeEndpoint(ctx, srv)
			if errors.Is(err, certs.ErrEndpointUnknown) {
				return health.Endpoint{}, health.ErrEndpointUnknown
			}
			if errors.Is(err, certs.ErrProbeRefused) || errors.Is(err, certs.ErrNoAddress) {
				return health.Endpoint{}, health.NotProbed(err)
			}
			if err != nil {
				return health.Endpoint{}, err
			}
			return health.Endpoint{Host: ep.Host, HTTPPort: ep.HTTPPort, HTTPSPort: ep.HTTPSPort}, nil
		},
		Audit: c.audit,
		OnProbed: func(domainID, up, down int) {
			c.events.Publish(events.Event{Topic: "domain." + strconv.Itoa(domainID), Name: "health",
				Data: map[string]any{"domain_id": domainID, "up": up, "down": down}})
		},
	}, c.log)
	if err := c.addMonitorsJob(); err != nil {
		return err
	}
	if err := c.addUpstreamProbeJob(); err != nil {
		return err
	}
	return c.sched.Add(scheduler.Job{
		Name: "domains.health", Title: "Probe domains with a health check through every serving node", Quiet: true,
		Every: c.cfg.HealthInterval,
		Run: func(ctx context.Context, l *scheduler.Log) error {
			return c.health.ProbeAll(ctx, l.Printf)
		},
	})
}

// healthWeb serves a domain's health check settings and results.
type healthWeb struct {
	c *Controller
	w *web.Server
}

func (hw *healthWeb) register() error {
	page := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindPage, Handler: h}
	}
	api := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: h}
	}
	for _, r := range []web.Route{
		page("GET", "/domains/{id}/health", web.PolicyUser, hw.page),
		page("POST", "/domains/{id}/health", web.PolicyAdmin, hw.savePage),
		page("POST", "/domains/{id}/health/check", web.PolicyAdmin, hw.checkPage),
		api("GET", "/api/v1/domains/{id}/health", web.PolicyUser, hw.apiGet),
		api("PUT", "/api/v1/domains/{id}/health", web.PolicyAdmin, hw.apiPut),
		api("POST", "/api/v1/domains/{id}/health/check", web.PolicyAdmin, hw.apiCheck),
	} {
		if err := hw.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// healthJSON is a domain's health check, newest results and uptime as the
// API shows them.
type healthJSON struct {
	Check *healthCheckJSON `json:"check"`
	// StatusPage says the domain is listed on the public status page.
	StatusPage bool        `json:"status_page"`
	Servers    []probeJSON `json:"servers"`
	// Uptime is over the last 24h, 7d and 30d, all servers together.
	Uptime map[string]uptimeJSON `json:"uptime"`
	// Hours are the last 48 hours, oldest first.
	Hours []hourJSON `json:"hours"`
	// Days are the last 30 UTC days, today last.
	Days []statusDay `json:"days"`
	// Outages are the newest runs of failed probes through each server,
	// newest first.
	Outages []outageJSON `json:"outages"`
}

// uptimeJSON is how probes answered over a span. Percent is null without
// probes.
type uptimeJSON struct {
	Up        int      `json:"up"`
	Down      int      `json:"down"`
	Percent   *float64 `json:"percent"`
	LatencyMS int      `json:"latency_ms"`
	// Label is Percent for people ("99.95 %", "—").
	Label string `json:"label"`
}

func toUptimeJSON(u health.Uptime) uptimeJSON {
	out := uptimeJSON{Up: u.Up, Down: u.Down, LatencyMS: u.LatencyMS, Label: u.Label()}
	if p := u.Percent(); p >= 0 {
		out.Percent = &p
	}
	return out
}

type hourJSON struct {
	Start time.Time `json:"start"`
	uptimeJSON
	// Class is how the hour looks in the strip: none, up, degraded or down.
	Class string `json:"class"`
}

// hourClass grades an hour for the strip: any failure is degraded, and
// half or more failing is down.
func hourClass(u health.Uptime) string {
	switch {
	case u.Probes() == 0:
		return "none"
	case u.Down == 0:
		return "up"
	case u.Down*2 >= u.Probes():
		return "down"
	}
	return "degraded"
}

// hoursShown is how many hours the strip shows.
const hoursShown = 48

type healthCheckJSON struct {
	Path    string `json:"path"`
	Enabled bool   `json:"enabled"`
}

type probeJSON struct {
	ServerID  int        `json:"server_id"`
	Server    string     `json:"server"`
	OK        bool       `json:"ok"`
	Status    int        `json:"status"`
	LatencyMS int        `json:"latency_ms"`
	URL       string     `json:"url"`
	Message   string     `json:"message,omitempty"`
	At        time.Time  `json:"at"`
	DownSince *time.Time `json:"down_since,omitempty"`
	// Uptime is this server's, over the last 24h, 7d and 30d.
	Uptime map[string]uptimeJSON `json:"uptime"`
}

func (hw *healthWeb) domain(r *http.Request) (*ent.Domain, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		return nil, health.ErrNotFound
	}
	d, err := hw.c.db.Client.Domain.Get(r.Context(), id)
	if ent.IsNotFound(err) {
		return nil, health.ErrNotFound
	}
	return d, err
}

// setStatusPage lists the domain on the public status page or takes it off.
func (hw *healthWeb) setStatusPage(r *http.Request, domainID int, listed bool) error {
	if err := hw.c.health.SetStatusPage(r.Context(), hw.w.Actor(r), domainID, listed); err != nil {
		return err
	}
	hw.c.statusForget()
	return nil
}

// view reads a domain's check and newest results.
func (hw *healthWeb) view(ctx context.Context, d *ent.Domain) (healthJSON, error) {
	domainID := d.ID
	out := healthJSON{Servers: []probeJSON{}, StatusPage: d.StatusPage}
	hc, err := hw.c.health.Check(ctx, domainID)
	if err != nil {
		return out, err
	}
	if hc != nil {
		out.Check = &healthCheckJSON{Path: hc.Path, Enabled: hc.Enabled}
	}
	latest, err := hw.c.health.Latest(ctx, domainID)
	if err != nil {
		return out, err
	}
	out.Uptime = map[string]uptimeJSON{}
	perServer := map[string]map[int]health.Uptime{}
	for _, sp := range health.Spans {
		all, err := hw.c.health.DomainUptime(ctx, []int{domainID}, sp.Span)
		if err != nil {
			return out, err
		}
		out.Uptime[sp.Name] = toUptimeJSON(all[domainID])
		if perServer[sp.Name], err = hw.c.health.ServerUptime(ctx, domainID, sp.Span); err != nil {
			return out, err
		}
	}
	for _, p := range latest {
		j := probeJSON{ServerID: p.ServerID, OK: p.Ok, Status: p.Status, LatencyMS: p.LatencyMs, URL: p.URL, Message: p.Message, At: p.At,
			DownSince: p.FailingSince, Uptime: map[string]uptimeJSON{}}
		if p.Edges.Server != nil {
			j.Server = p.Edges.Server.Name
		}
		for _, sp := range health.Spans {
			j.Uptime[sp.Name] = toUptimeJSON(perServer[sp.Name][p.ServerID])
		}
		out.Servers = append(out.Servers, j)
	}
	hours, err := hw.c.health.Hours(ctx, domainID, hoursShown)
	if err != nil {
		return out, err
	}
	for _, h := range hours {
		out.Hours = append(out.Hours, hourJSON{Start: h.Start, uptimeJSON: toUptimeJSON(h.Uptime), Class: hourClass(h.Uptime)})
	}
	days, err := hw.c.health.Days(ctx, []int{domainID}, statusDays)
	if err != nil {
		return out, err
	}
	for _, d := range days[domainID] {
		out.Days = append(out.Days, statusDay{Date: d.Start.Format(time.DateOnly), uptimeJSON: toUptimeJSON(d.Uptime), Class: hourClass(d.Uptime)})
	}
	outages, err := hw.c.health.Outages(ctx, domainID, outagesShown)
	if err != nil {
		return out, err
	}
	out.Outages = []outageJSON{}
	now := time.Now()
	for _, o := range outages {
		j := toOutageJSON(o.StartedAt, o.EndedAt, o.Checks, o.Message, now)
		j.ServerID = o.ServerID
		if o.Edges.Server != nil {
			j.Server = o.Edges.Server.Name
		}
		out.Outages = append(out.Outages, j)
	}
	return out, nil
}

func (hw *healthWeb) apiFail(w http.ResponseWriter, err error) {
	var fe *health.FieldError
	switch {
	case errors.Is(err, health.ErrNotFound):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such domain", nil)
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "validation_failed", "some fields are invalid", map[string]string{fe.Field: fe.Message})
	default:
		hw.c.log.Error("health api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the request could not be completed", nil)
	}
}

func (hw *healthWeb) apiGet(w http.ResponseWriter, r *http.Request) {
	d, err := hw.domain(r)
	if err != nil {
		hw.apiFail(w, err)
		return
	}
	v, err := hw.view(r.Context(), d)
	if err != nil {
		hw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, v)
}

func (hw *healthWeb) apiPut(w http.ResponseWriter, r *http.Request) {
	d, err := hw.domain(r)
	if err != nil {
		hw.apiFail(w, err)
		return
	}
	var in struct {
		Path       string `json:"path"`
		Enabled    *bool  `json:"enabled"`
		StatusPage *bool  `json:"status_page"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	enabled := in.Enabled == nil || *in.Enabled
	if _, err := hw.c.health.Set(r.Context(), hw.w.Actor(r), d.ID, in.Path, enabled); err != nil {
		hw.apiFail(w, err)
		return
	}
	if in.StatusPage != nil {
		if err := hw.setStatusPage(r, d.ID, *in.StatusPage); err != nil {
			hw.apiFail(w, err)
			return
		}
	}
	hw.apiGet(w, r)
}

func (hw *healthWeb) apiCheck(w http.ResponseWriter, r *http.Request) {
	d, err := hw.domain(r)
	if err != nil {
		hw.apiFail(w, err)
		return
	}
	if _, err := hw.c.health.ProbeDomain(r.Context(), d.ID); err != nil {
		hw.apiFail(w, err)
		return
	}
	hw.apiGet(w, r)
}

// healthPageData is the domain's health page.
type healthPageData struct {
	Domain *ent.Domain
	Health healthJSON
	Path   string
	Error  string
}

func (hw *healthWeb) page(w http.ResponseWriter, r *http.Request) {
	hw.render(w, r, http.StatusOK, "", "")
}

func (hw *healthWeb) render(w http.ResponseWriter, r *http.Request, status int, path, msg string) {
	d, err := hw.domain(r)
	if errors.Is(err, health.ErrNotFound) {
		hw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/domains", map[string]string{"Heading": "No such domain", "Message": "It may have been removed."})
		return
	}
	if err != nil {
		hw.c.log.Error("health page", "error", err)
		http.Error(w, "the domain could not be read", http.StatusInternalServerError)
		return
	}
	v, err := hw.view(r.Context(), d)
	if err != nil {
		hw.c.log.Error("health page", "error", err)
		http.Error(w, "the health check could not be read", http.StatusInternalServerError)
		return
	}
	data := healthPageData{Domain: d, Health: v, Path: path, Error: msg}
	if data.Path == "" {
		data.Path = "/"
		if v.Check != nil {
			data.Path = v.Check.Path
		}
	}
	hw.w.Render(w, r, status, "domain_health", "Health of "+d.Name, "/domains", data)
}

func (hw *healthWeb) savePage(w http.ResponseWriter, r *http.Request) {
	d, err := hw.domain(r)
	if err != nil {
		hw.render(w, r, http.StatusNotFound, "", "")
		return
	}
	if err := r.ParseForm(); err != nil { // bodies are bounded for every route
		hw.render(w, r, http.StatusBadRequest, "", "The form could not be read.")
		return
	}
	path, enabled := r.PostFormValue("path"), r.PostFormValue("enabled") != ""
	_, err = hw.c.health.Set(r.Context(), hw.w.Actor(r), d.ID, path, enabled)
	if err == nil {
		err = hw.setStatusPage(r, d.ID, r.PostFormValue("status_page") != "")
	}
	var fe *health.FieldError
	if errors.As(err, &fe) {
		hw.render(w, r, http.StatusUnprocessableEntity, "", "The path "+fe.Message+".")
		return
	}
	if err != nil {
		hw.c.log.Error("save health check", "error", err)
		hw.render(w, r, http.StatusInternalServerError, path, "The health check could not be saved because of a problem on our side.")
		return
	}
	if enabled {
		if _, err := hw.c.health.ProbeDomain(r.Context(), d.ID); err != nil {
			hw.c.log.Warn("first probe", "domain", d.Name, "error", err)
		}
		hw.w.Flash(r, "success", "Health check saved; every serving node was probed once.")
	} else {
		hw.w.Flash(r, "success", "Health check turned off.")
	}
	http.Redirect(w, r, "/domains/"+strconv.Itoa(d.ID)+"/health", http.StatusSeeOther)
}

func (hw *healthWeb) checkPage(w http.ResponseWriter, r *http.Request) {
	d, err := hw.domain(r)
	if err != nil {
		hw.render(w, r, http.StatusNotFound, "", "")
		return
	}
	if _, err := hw.c.health.ProbeDomain(r.Context(), d.ID); err != nil {
		hw.c.log.Error("probe", "domain", d.Name, "error", err)
		hw.w.Flash(r, "error", "The probe could not run because of a problem on our side.")
	}
	http.Redirect(w, r, "/domains/"+strconv.Itoa(d.ID)+"/health", http.StatusSeeOther)
}

// attention counts what needs a look for the dashboard: firing incidents,
// domains whose health check fails (maintenance aside), enabled monitors
// whose newest check failed and certificates that run out within two weeks.
// Parts with nothing to count (no health checks, monitors or certificates)
// are left out; a part that cannot be read is logged and left out.
func (c *Controller) attention(ctx context.Context) []web.Attention {
	class := func(n int, bad string) string {
		if n == 0 {
			return "ok"
		}
		return bad
	}
	var out []web.Attention
	if n, err := c.db.Client.Incident.Query().Where(incident.StateEQ(incident.StateFiring)).Count(ctx); err != nil {
		c.log.Error("dashboard: count incidents", "error", err)
	} else {
		out = append(out, web.Attention{Label: plural(n, "incident", "incidents") + " firing", Count: n, Href: "/alerts", Class: class(n, "bad")})
	}
	checked, err := c.db.Client.HealthCheck.Query().Where(healthcheck.Enabled(true)).Select(healthcheck.FieldDomainID).Ints(ctx)
	if err != nil {
		c.log.Error("dashboard: health checks", "error", err)
	} else if len(checked) > 0 {
		sums, err := c.health.Summaries(ctx, checked)
		if err != nil {
			c.log.Error("dashboard: domain health", "error", err)
		} else {
			down := 0
			for _, s := range sums {
				if s.Failing() {
					down++
				}
			}
			out = append(out, web.Attention{Label: plural(down, "domain", "domains") + " down", Count: down, Href: "/domains", Class: class(down, "bad")})
		}
	}
	if ms, err := c.db.Client.Monitor.Query().Where(monitor.Enabled(true)).Select(monitor.FieldCheckedAt, monitor.FieldOk).All(ctx); err != nil {
		c.log.Error("dashboard: monitors", "error", err)
	} else if len(ms) > 0 {
		down := 0
		for _, m := range ms {
			if m.CheckedAt != nil && !m.Ok {
				down++
			}
		}
		out = append(out, web.Attention{Label: plural(down, "monitor", "monitors") + " down", Count: down, Href: "/monitors", Class: class(down, "bad")})
	}
	if certs, err := c.db.Client.Certificate.Query().Where(certificate.StatusEQ(certificate.StatusActive)).
		Select(certificate.FieldNotAfter).All(ctx); err != nil {
		c.log.Error("dashboard: certificates", "error", err)
	} else if len(certs) > 0 {
		soon := 0
		limit := time.Now().Add(14 * 24 * time.Hour)
		for _, ct := range certs {
			if ct.NotAfter.Before(limit) {
				soon++
			}
		}
		out = append(out, web.Attention{Label: plural(soon, "certificate", "certificates") + " expiring within 14 days", Count: soon, Href: "/certificates", Class: class(soon, "warn")})
	}
	return out
}

// plural picks the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
