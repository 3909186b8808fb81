package controller

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/monitors"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
)

// newMonitors returns the monitors service; it keeps no state of its own,
// so the job and the pages may each hold one.
func (c *Controller) newMonitors() *monitors.Service {
	return monitors.New(c.db, monitors.Config{Audit: c.audit, OnChange: c.statusForget, Every: c.monitorsEvery()}, c.log)
}

// monitorsEvery is how often the job looks for monitors that are due: every
// monitors.Tick, or more often when health checks run more often (tests).
func (c *Controller) monitorsEvery() time.Duration {
	return min(monitors.Tick, c.cfg.HealthInterval)
}

// addMonitorsJob schedules the checks of the enabled monitors that are due.
func (c *Controller) addMonitorsJob() error {
	svc := c.newMonitors()
	return c.sched.Add(scheduler.Job{
		Name: "monitors.probe", Title: "Check the enabled monitors that are due over HTTP or TCP", Quiet: true,
		Every: c.monitorsEvery(),
		Run: func(ctx context.Context, l *scheduler.Log) error {
			return svc.ProbeAll(ctx, l.Printf)
		},
	})
}

// monitorsWeb serves monitors: pages and API.
type monitorsWeb struct {
	c   *Controller
	w   *web.Server
	svc *monitors.Service
}

func (c *Controller) registerMonitors(w *web.Server) error {
	return (&monitorsWeb{c: c, w: w, svc: c.newMonitors()}).register()
}

func (mw *monitorsWeb) register() error {
	page := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindPage, Handler: h}
	}
	api := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: h}
	}
	list := page("GET", "/monitors", web.PolicyUser, mw.listPage)
	// Between Domains (22) and Upstreams (24).
	list.Nav, list.NavOrder = "Monitors", 23
	for _, r := range []web.Route{
		list,
		page("POST", "/monitors", web.PolicyAdmin, mw.createPage),
		page("GET", "/monitors/{id}", web.PolicyUser, mw.detailPage),
		page("POST", "/monitors/{id}", web.PolicyAdmin, mw.updatePage),
		page("POST", "/monitors/{id}/check", web.PolicyAdmin, mw.checkPage),
		page("POST", "/monitors/{id}/delete", web.PolicyAdmin, mw.deletePage),
		api("GET", "/api/v1/monitors", web.PolicyUser, mw.apiList),
		api("POST", "/api/v1/monitors", web.PolicyAdmin, mw.apiCreate),
		api("GET", "/api/v1/monitors/{id}", web.PolicyUser, mw.apiGet),
		api("PUT", "/api/v1/monitors/{id}", web.PolicyAdmin, mw.apiUpdate),
		api("DELETE", "/api/v1/monitors/{id}", web.PolicyAdmin, mw.apiDelete),
		api("POST", "/api/v1/monitors/{id}/check", web.PolicyAdmin, mw.apiCheck),
	} {
		if err := mw.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// monitorJSON is a monitor, its newest result and uptime as the API shows
// them.
type monitorJSON struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	TimeoutMS int    `json:"timeout_ms"`
	// IntervalS is how often it is checked, in seconds.
	IntervalS int `json:"interval_s"`
	// Retries is how many failed checks in a row it tolerates before it is down.
	Retries int `json:"retries"`
	// FailedChecks counts the failed checks of the current run.
	FailedChecks int `json:"failed_checks"`
	// ExpectStatus lists the HTTP statuses that count as up; empty means 200-399.
	ExpectStatus string `json:"expect_status"`
	// ExpectBody is text the first 64 KiB of the answer must hold; empty means any.
	ExpectBody string `json:"expect_body"`
	// IgnoreTLSErrors accepts any certificate of an https target.
	IgnoreTLSErrors bool `json:"ignore_tls_errors"`
	Enabled         bool `json:"enabled"`
	// CertExpiresAt is when the certificate an https target presented
	// expires, as its newest check that reached the handshake found.
	CertExpiresAt *time.Time `json:"cert_expires_at,omitempty"`
	// StatusPage says it is listed on the public status page.
	StatusPage bool `json:"status_page"`
	// State is up, retrying (failing, within its retries), down, unchecked
	// (no result yet) or off (disabled).
	State     string     `json:"state"`
	CheckedAt *time.Time `json:"checked_at"`
	OK        bool       `json:"ok"`
	// Status is the HTTP status of the newest check, 0 for tcp or without an answer.
	Status    int    `json:"status"`
	LatencyMS int    `json:"latency_ms"`
	Message   string `json:"message,omitempty"`
	// DownSince is when the current run of failed checks began.
	DownSince *time.Time `json:"down_since,omitempty"`
	// Uptime is over the last 24h, 7d and 30d.
	Uptime map[string]uptimeJSON `json:"uptime"`
	// Hours are the last 48 hours, oldest first (one monitor only).
	Hours []hourJSON `json:"hours,omitempty"`
	// Days are the last 30 UTC days, today last (one monitor only).
	Days []statusDay `json:"days,omitempty"`
	// Outages are the newest runs of failed checks, newest first (one
	// monitor only).
	Outages []outageJSON `json:"outages,omitempty"`
}

// outagesShown is how many outages a monitor's page and API list.
const outagesShown = 20

// outageJSON is one run of failed checks.
type outageJSON struct {
	// Server is the server a domain's probes failed through; absent for a
	// monitor.
	Server    string    `json:"server,omitempty"`
	ServerID  int       `json:"server_id,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// EndedAt is when a good check ended it; absent while it lasts.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// Duration is how long it lasted, or has lasted so far.
	Duration string `json:"duration"`
	// Checks is how many checks failed in it.
	Checks int `json:"checks"`
	// Message is why the first check failed.
	Message string `json:"message"`
}

func toMonitorJSON(m *ent.Monitor, up map[string]map[int]uptime.Uptime) monitorJSON {
	out := monitorJSON{ID: m.ID, Name: m.Name, Kind: string(m.Kind), Target: m.Target, TimeoutMS: m.TimeoutMs, IntervalS: m.IntervalS,
		Retries: m.Retries, FailedChecks: m.FailedChecks,
		ExpectStatus: m.ExpectStatus, ExpectBody: m.ExpectBody, IgnoreTLSErrors: m.IgnoreTLSErrors, Enabled: m.Enabled,
		CertExpiresAt: m.CertNotAfter, StatusPage: m.StatusPage,
		CheckedAt: m.CheckedAt, OK: m.Ok, Status: m.Status, LatencyMS: m.LatencyMs, Message: m.Message, DownSince: m.FailingSince,
		Uptime: map[string]uptimeJSON{}}
	switch {
	case !m.Enabled:
		out.State = "off"
	case m.CheckedAt == nil:
		out.State = "unchecked"
	case m.Ok && m.FailedChecks > 0:
		out.State = "retrying"
	case m.Ok:
		out.State = "up"
	default:
		out.State = "down"
	}
	for _, sp := range uptime.Spans {
		out.Uptime[sp.Name] = toUptimeJSON(up[sp.Name][m.ID])
	}
	return out
}

func (mw *monitorsWeb) list(ctx context.Context) ([]monitorJSON, error) {
	ms, err := mw.svc.List(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	up, err := mw.svc.Uptime(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]monitorJSON, len(ms))
	for i, m := range ms {
		out[i] = toMonitorJSON(m, up)
	}
	return out, nil
}

// view reads one monitor with its hours and days.
func (mw *monitorsWeb) view(ctx context.Context, id int) (monitorJSON, error) {
	m, err := mw.svc.Get(ctx, id)
	if err != nil {
		return monitorJSON{}, err
	}
	up, err := mw.svc.Uptime(ctx, []int{id})
	if err != nil {
		return monitorJSON{}, err
	}
	out := toMonitorJSON(m, up)
	hours, err := mw.svc.Hours(ctx, id, hoursShown)
	if err != nil {
		return out, err
	}
	for _, h := range hours {
		out.Hours = append(out.Hours, hourJSON{Start: h.Start, uptimeJSON: toUptimeJSON(h.Uptime), Class: hourClass(h.Uptime)})
	}
	days, err := mw.svc.Days(ctx, id, statusDays)
	if err != nil {
		return out, err
	}
	for _, d := range days {
		out.Days = append(out.Days, statusDay{Date: d.Start.Format(time.DateOnly), uptimeJSON: toUptimeJSON(d.Uptime), Class: hourClass(d.Uptime)})
	}
	outages, err := mw.svc.Outages(ctx, id, outagesShown)
	if err != nil {
		return out, err
	}
	now := time.Now()
	for _, o := range outages {
		out.Outages = append(out.Outages, toOutageJSON(o.StartedAt, o.EndedAt, o.Checks, o.Message, now))
	}
	return out, nil
}

// toOutageJSON is a run of failed checks; one still open has lasted until now.
func toOutageJSON(start time.Time, end *time.Time, checks int, message string, now time.Time) outageJSON {
	until := now
	if end != nil {
		until = *end
	}
	return outageJSON{StartedAt: start, EndedAt: end, Checks: checks, Message: message,
		Duration: shortDuration(max(until.Sub(start), 0).Round(time.Second))}
}

func monitorID(r *http.Request) int {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

func (mw *monitorsWeb) apiFail(w http.ResponseWriter, err error) {
	var fe monitors.FieldErrors
	switch {
	case errors.Is(err, monitors.ErrNotFound):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such monitor", nil)
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "validation_failed", "some fields are invalid", fe)
	default:
		mw.c.log.Error("monitors api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the request could not be completed", nil)
	}
}

func (mw *monitorsWeb) apiList(w http.ResponseWriter, r *http.Request) {
	out, err := mw.list(r.Context())
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"monitors": out})
}

func (mw *monitorsWeb) apiGet(w http.ResponseWriter, r *http.Request) {
	mw.apiAnswer(w, r, http.StatusOK, monitorID(r))
}

func (mw *monitorsWeb) apiAnswer(w http.ResponseWriter, r *http.Request, status, id int) {
	if id == 0 {
		mw.apiFail(w, monitors.ErrNotFound)
		return
	}
	v, err := mw.view(r.Context(), id)
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, status, v)
}

// monitorRequest is a monitor's settings in the API (monitors.Input, whose
// fields say what each means), with enabled defaulting to true when left
// out; timeout_ms defaults to 10000 and interval_s to 60.
type monitorRequest struct {
	monitors.Input
	// Enabled shadows Input's: a missing value means true.
	Enabled *bool `json:"enabled"`
}

func (req monitorRequest) input() monitors.Input {
	in := req.Input
	in.Enabled = req.Enabled == nil || *req.Enabled
	return in
}

func (mw *monitorsWeb) apiCreate(w http.ResponseWriter, r *http.Request) {
	var req monitorRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	m, err := mw.svc.Create(r.Context(), mw.w.Actor(r), req.input())
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiAnswer(w, r, http.StatusCreated, m.ID)
}

func (mw *monitorsWeb) apiUpdate(w http.ResponseWriter, r *http.Request) {
	var req monitorRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	if _, err := mw.svc.Update(r.Context(), mw.w.Actor(r), monitorID(r), req.input()); err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiGet(w, r)
}

func (mw *monitorsWeb) apiDelete(w http.ResponseWriter, r *http.Request) {
	if err := mw.svc.Delete(r.Context(), mw.w.Actor(r), monitorID(r)); err != nil {
		mw.apiFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (mw *monitorsWeb) apiCheck(w http.ResponseWriter, r *http.Request) {
	if _, err := mw.svc.Check(r.Context(), monitorID(r)); err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiGet(w, r)
}

// monitorForm is what the form holds, as typed.
type monitorForm struct {
	Name, Kind, Target, TimeoutMS, IntervalS, Retries, ExpectStatus, ExpectBody string
	IgnoreTLSErrors, Enabled, StatusPage                                        bool
}

func monitorFormOf(m monitorJSON) monitorForm {
	return monitorForm{Name: m.Name, Kind: m.Kind, Target: m.Target, TimeoutMS: strconv.Itoa(m.TimeoutMS), IntervalS: strconv.Itoa(m.IntervalS),
		Retries:      strconv.Itoa(m.Retries),
		ExpectStatus: m.ExpectStatus, ExpectBody: m.ExpectBody, IgnoreTLSErrors: m.IgnoreTLSErrors, Enabled: m.Enabled, StatusPage: m.StatusPage}
}

// readForm reads the posted form; a timeout or interval that is not a
// number is refused at its field. The HTTP-only fields of a TCP monitor are
// hidden in the form and dropped here.
func readMonitorForm(r *http.Request) (monitorForm, monitors.Input, monitors.FieldErrors) {
	f := monitorForm{Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"), Target: r.PostFormValue("target"),
		TimeoutMS: r.PostFormValue("timeout_ms"), IntervalS: r.PostFormValue("interval_s"), Retries: r.PostFormValue("retries"),
		ExpectStatus: r.PostFormValue("expect_status"), ExpectBody: r.PostFormValue("expect_body"),
		IgnoreTLSErrors: r.PostFormValue("ignore_tls_errors") != "",
		Enabled:         r.PostFormValue("enabled") != "", StatusPage: r.PostFormValue("status_page") != ""}
	in := monitors.Input{Name: f.Name, Kind: f.Kind, Target: f.Target, ExpectStatus: f.ExpectStatus, ExpectBody: f.ExpectBody,
		IgnoreTLSErrors: f.IgnoreTLSErrors, Enabled: f.Enabled, StatusPage: f.StatusPage}
	switch in.Kind {
	case monitors.KindTCP:
		in.ExpectStatus, in.ExpectBody, in.IgnoreTLSErrors = "", "", false
	case monitors.KindTLS:
		in.ExpectStatus, in.ExpectBody = "", ""
	}
	errs := monitors.FieldErrors{}
	for _, n := range []struct {
		field, text, unit string
		to                *int
	}{{"timeout_ms", f.TimeoutMS, "milliseconds", &in.TimeoutMS}, {"interval_s", f.IntervalS, "seconds", &in.IntervalS},
		{"retries", f.Retries, "failed checks", &in.Retries}} {
		if n.text == "" {
			continue
		}
		v, err := strconv.Atoi(n.text)
		if err != nil {
			errs[n.field] = "must be a whole number of " + n.unit
			continue
		}
		*n.to = v
	}
	if len(errs) > 0 {
		return f, in, errs
	}
	return f, in, nil
}

// monitorsPageData is the list of monitors, or one monitor when Monitor is
// set (one template holds both, so they share the form).
type monitorsPageData struct {
	Monitors []monitorJSON
	Monitor  *monitorJSON
	Form     monitorForm
	Errors   monitors.FieldErrors
	Error    string
}

func (mw *monitorsWeb) listPage(w http.ResponseWriter, r *http.Request) {
	mw.renderList(w, r, http.StatusOK, monitorForm{Kind: monitors.KindHTTP, TimeoutMS: strconv.Itoa(monitors.DefaultTimeoutMS),
		IntervalS: strconv.Itoa(monitors.DefaultIntervalS), Retries: "0", Enabled: true}, nil, "")
}

func (mw *monitorsWeb) renderList(w http.ResponseWriter, r *http.Request, status int, f monitorForm, errs monitors.FieldErrors, msg string) {
	list, err := mw.list(r.Context())
	if err != nil {
		mw.c.log.Error("monitors page", "error", err)
		http.Error(w, "the monitors could not be read", http.StatusInternalServerError)
		return
	}
	mw.w.Render(w, r, status, "monitors", "Monitors", "/monitors", monitorsPageData{Monitors: list, Form: f, Errors: errs, Error: msg})
}

func (mw *monitorsWeb) createPage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		mw.renderList(w, r, http.StatusBadRequest, monitorForm{}, nil, "The form could not be read.")
		return
	}
	f, in, errs := readMonitorForm(r)
	if errs != nil {
		mw.renderList(w, r, http.StatusUnprocessableEntity, f, errs, "")
		return
	}
	m, err := mw.svc.Create(r.Context(), mw.w.Actor(r), in)
	if errors.As(err, &errs) {
		mw.renderList(w, r, http.StatusUnprocessableEntity, f, errs, "")
		return
	}
	if err != nil {
		mw.c.log.Error("create monitor", "error", err)
		mw.renderList(w, r, http.StatusInternalServerError, f, nil, "The monitor could not be saved because of a problem on our side.")
		return
	}
	mw.firstCheck(r, m)
	http.Redirect(w, r, "/monitors/"+strconv.Itoa(m.ID), http.StatusSeeOther)
}

// firstCheck checks a monitor that was just saved, so its page shows a result.
func (mw *monitorsWeb) firstCheck(r *http.Request, m *ent.Monitor) {
	if !m.Enabled {
		mw.w.Flash(r, "success", "Monitor saved; it is off, so it is not checked.")
		return
	}
	if _, err := mw.svc.Check(r.Context(), m.ID); err != nil {
		mw.c.log.Warn("first check", "monitor", m.Name, "error", err)
	}
	mw.w.Flash(r, "success", "Monitor saved and checked once.")
}

func (mw *monitorsWeb) detailPage(w http.ResponseWriter, r *http.Request) {
	mw.renderDetail(w, r, http.StatusOK, nil, nil, "")
}

func (mw *monitorsWeb) renderDetail(w http.ResponseWriter, r *http.Request, status int, f *monitorForm, errs monitors.FieldErrors, msg string) {
	v, err := mw.view(r.Context(), monitorID(r))
	if errors.Is(err, monitors.ErrNotFound) || monitorID(r) == 0 {
		mw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/monitors", map[string]string{"Heading": "No such monitor", "Message": "It may have been removed."})
		return
	}
	if err != nil {
		mw.c.log.Error("monitor page", "error", err)
		http.Error(w, "the monitor could not be read", http.StatusInternalServerError)
		return
	}
	data := monitorsPageData{Monitor: &v, Form: monitorFormOf(v), Errors: errs, Error: msg}
	if f != nil {
		data.Form = *f
	}
	mw.w.Render(w, r, status, "monitors", "Monitor "+v.Name, "/monitors", data)
}

func (mw *monitorsWeb) updatePage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		mw.renderDetail(w, r, http.StatusBadRequest, nil, nil, "The form could not be read.")
		return
	}
	f, in, errs := readMonitorForm(r)
	if errs != nil {
		mw.renderDetail(w, r, http.StatusUnprocessableEntity, &f, errs, "")
		return
	}
	m, err := mw.svc.Update(r.Context(), mw.w.Actor(r), monitorID(r), in)
	switch {
	case errors.As(err, &errs):
		mw.renderDetail(w, r, http.StatusUnprocessableEntity, &f, errs, "")
		return
	case err != nil && !errors.Is(err, monitors.ErrNotFound):
		mw.c.log.Error("update monitor", "error", err)
		mw.renderDetail(w, r, http.StatusInternalServerError, &f, nil, "The monitor could not be saved because of a problem on our side.")
		return
	case err != nil:
		mw.renderDetail(w, r, http.StatusNotFound, nil, nil, "")
		return
	}
	mw.firstCheck(r, m)
	http.Redirect(w, r, "/monitors/"+strconv.Itoa(m.ID), http.StatusSeeOther)
}

func (mw *monitorsWeb) checkPage(w http.ResponseWriter, r *http.Request) {
	id := monitorID(r)
	if _, err := mw.svc.Check(r.Context(), id); errors.Is(err, monitors.ErrNotFound) || id == 0 {
		mw.renderDetail(w, r, http.StatusNotFound, nil, nil, "")
		return
	} else if err != nil {
		mw.c.log.Error("check monitor", "error", err)
		mw.w.Flash(r, "error", "The check could not run because of a problem on our side.")
	}
	http.Redirect(w, r, "/monitors/"+strconv.Itoa(id), http.StatusSeeOther)
}

func (mw *monitorsWeb) deletePage(w http.ResponseWriter, r *http.Request) {
	err := mw.svc.Delete(r.Context(), mw.w.Actor(r), monitorID(r))
	if errors.Is(err, monitors.ErrNotFound) || monitorID(r) == 0 {
		mw.renderDetail(w, r, http.StatusNotFound, nil, nil, "")
		return
	}
	if err != nil {
		mw.c.log.Error("delete monitor", "error", err)
		mw.w.Flash(r, "error", "The monitor could not be removed because of a problem on our side.")
		http.Redirect(w, r, "/monitors/"+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	mw.w.Flash(r, "success", "Monitor removed.")
	http.Redirect(w, r, "/monitors", http.StatusSeeOther)
}
