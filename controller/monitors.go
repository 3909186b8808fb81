package controller

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/monitors"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/monitor"
)

// newMonitors returns the monitors service. Its only state is the push
// rate limit, so the job and the pages may each hold one; pushes go through
// the pages' one.
func (c *Controller) newMonitors() *monitors.Service {
	return monitors.New(c.db, monitors.Config{Audit: c.audit, OnChange: c.statusForget, Every: c.monitorsEvery(), Now: c.monitorsClock.now}, c.log)
}

// monitorsClock is the monitors' clock: the time, unless a test set it.
type monitorsClock struct{ at atomic.Pointer[time.Time] }

func (k *monitorsClock) now() time.Time {
	if t := k.at.Load(); t != nil {
		return *t
	}
	return time.Now()
}

// set stands the clock at t (tests).
func (k *monitorsClock) set(t time.Time) { k.at.Store(&t) }

// monitorsEvery is how often the job looks for monitors that are due: every
// monitors.Tick, or more often when health checks run more often (tests).
func (c *Controller) monitorsEvery() time.Duration {
	return min(monitors.Tick, c.cfg.HealthInterval)
}

// addMonitorsJob schedules the checks of the enabled monitors that are due.
func (c *Controller) addMonitorsJob() error {
	svc := c.newMonitors()
	return c.sched.Add(scheduler.Job{
		Name: "monitors.probe", Title: "Check the enabled monitors that are due over HTTP, TCP or TLS, and the push monitors whose push is late", Quiet: true,
		Every: c.monitorsEvery(),
		Run: func(ctx context.Context, l *scheduler.Log) error {
			return svc.ProbeAll(ctx, l.Printf)
		},
	})
}

// monitorsWeb serves monitors: pages and API.
type monitorsWeb struct {
	c      *Controller
	w      *web.Server
	svc    *monitors.Service
	misses pushMisses
}

// pushMisses counts, per client address and minute, pushes to tokens that
// do not exist. Each one costs a database lookup, so a client guessing
// tokens is turned away without one after pushMissBurst misses in a minute.
// Addresses beyond pushMissAddrs in a minute share one count, which bounds
// the memory a flood from many addresses can take.
type pushMisses struct {
	mu     sync.Mutex
	minute time.Time
	count  map[string]int
}

const (
	pushMissBurst = 20
	pushMissAddrs = 10000
	pushMissOther = "*" // the shared count of addresses beyond pushMissAddrs
)

// key is the count addr uses this minute.
func (p *pushMisses) key(addr string, now time.Time) string {
	if m := now.Truncate(time.Minute); !m.Equal(p.minute) || p.count == nil {
		p.minute, p.count = m, map[string]int{}
	}
	if _, ok := p.count[addr]; !ok && len(p.count) >= pushMissAddrs {
		return pushMissOther
	}
	return addr
}

// blocked reports whether addr used up its misses this minute.
func (p *pushMisses) blocked(addr string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[p.key(addr, now)] >= pushMissBurst
}

// miss counts a push to a token that does not exist.
func (p *pushMisses) miss(addr string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count[p.key(addr, now)]++
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
		page("POST", "/monitors/{id}/push-token", web.PolicyAdmin, mw.pushTokenPage),
		api("GET", "/api/v1/monitors", web.PolicyUser, mw.apiList),
		api("POST", "/api/v1/monitors", web.PolicyAdmin, mw.apiCreate),
		api("GET", "/api/v1/monitors/{id}", web.PolicyUser, mw.apiGet),
		api("PUT", "/api/v1/monitors/{id}", web.PolicyAdmin, mw.apiUpdate),
		api("DELETE", "/api/v1/monitors/{id}", web.PolicyAdmin, mw.apiDelete),
		api("POST", "/api/v1/monitors/{id}/check", web.PolicyAdmin, mw.apiCheck),
		api("POST", "/api/v1/monitors/{id}/push-token", web.PolicyAdmin, mw.apiPushToken),
		// The push URL is public: the token in its path is the credential.
		// A page route without a session, so the guard reads neither a
		// cookie nor an Authorization header, and sets no cookie.
		{Method: "GET", Pattern: "/push/{token}", Policy: web.PolicyPublic, Kind: web.KindPage, NoSession: true, SecretPath: true, Handler: mw.push},
		{Method: "POST", Pattern: "/push/{token}", Policy: web.PolicyPublic, Kind: web.KindPage, NoSession: true, SecretPath: true, Handler: mw.push},
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
	ID   int    `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Target is empty for a push monitor.
	Target string `json:"target"`
	// TimeoutMS is 0 for a push monitor.
	TimeoutMS int `json:"timeout_ms"`
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
	// LastPushAt is when a push monitor's newest push arrived.
	LastPushAt *time.Time `json:"last_push_at,omitempty"`
	// PushDueAt is when an enabled push monitor gets a failed check unless
	// a push comes first.
	PushDueAt *time.Time `json:"push_due_at,omitempty"`
	// PushGraceS is how long past its interval a push monitor waits for a
	// push, in seconds: a tenth of the interval, at least 30.
	PushGraceS int `json:"push_grace_s,omitempty"`
	// PushURL and PushToken are a push monitor's push URL and its token,
	// only in the answer that made the token (create, a change to kind
	// push, a new push URL): the token is kept only as a hash. PushURL is
	// a path when the controller has no public_url and listens on every
	// address; prefix it with the address your job reaches it at.
	PushURL   string `json:"push_url,omitempty"`
	PushToken string `json:"push_token,omitempty"`
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
	if m.Kind == monitor.KindPush {
		out.TimeoutMS = 0
		out.LastPushAt, out.PushDueAt = m.LastPushAt, m.PushDueAt
		out.PushGraceS = int(monitors.Grace(m.IntervalS) / time.Second)
	}
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
	case errors.Is(err, monitors.ErrNotPush):
		web.WriteError(w, http.StatusConflict, "not_push", "only push monitors have a push URL; change its kind to push first", nil)
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
	mw.apiAnswer(w, r, http.StatusOK, monitorID(r), "")
}

// apiAnswer answers with the monitor, and with its push URL when token,
// just made, is not "".
func (mw *monitorsWeb) apiAnswer(w http.ResponseWriter, r *http.Request, status, id int, token string) {
	if id == 0 {
		mw.apiFail(w, monitors.ErrNotFound)
		return
	}
	v, err := mw.view(r.Context(), id)
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	if token != "" {
		// The token is in this one answer and kept nowhere else.
		v.PushToken, v.PushURL = token, mw.c.pushURL(token)
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
	m, token, err := mw.svc.Create(r.Context(), mw.w.Actor(r), req.input())
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiAnswer(w, r, http.StatusCreated, m.ID, token)
}

func (mw *monitorsWeb) apiUpdate(w http.ResponseWriter, r *http.Request) {
	var req monitorRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	m, token, err := mw.svc.Update(r.Context(), mw.w.Actor(r), monitorID(r), req.input())
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiAnswer(w, r, http.StatusOK, m.ID, token)
}

// apiPushToken gives a push monitor a new push URL; the old one stops
// working.
func (mw *monitorsWeb) apiPushToken(w http.ResponseWriter, r *http.Request) {
	m, token, err := mw.svc.NewPushToken(r.Context(), mw.w.Actor(r), monitorID(r))
	if err != nil {
		mw.apiFail(w, err)
		return
	}
	mw.apiAnswer(w, r, http.StatusOK, m.ID, token)
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
	f := monitorForm{Name: m.Name, Kind: m.Kind, Target: m.Target, TimeoutMS: strconv.Itoa(m.TimeoutMS), IntervalS: strconv.Itoa(m.IntervalS),
		Retries:      strconv.Itoa(m.Retries),
		ExpectStatus: m.ExpectStatus, ExpectBody: m.ExpectBody, IgnoreTLSErrors: m.IgnoreTLSErrors, Enabled: m.Enabled, StatusPage: m.StatusPage}
	if m.Kind == monitors.KindPush {
		// Hidden for push; what the form starts from if the kind changes.
		f.TimeoutMS = strconv.Itoa(monitors.DefaultTimeoutMS)
	}
	return f
}

// readForm reads the posted form; a timeout or interval that is not a
// number is refused at its field. The fields the form hides for a kind
// (HTTP-only ones for TCP and TLS; target, timeout and those for push) are
// dropped here.
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
	case monitors.KindPush:
		in.Target, in.ExpectStatus, in.ExpectBody, in.IgnoreTLSErrors = "", "", "", false
	}
	errs := monitors.FieldErrors{}
	for _, n := range []struct {
		field, text, unit string
		to                *int
	}{{"timeout_ms", f.TimeoutMS, "milliseconds", &in.TimeoutMS}, {"interval_s", f.IntervalS, "seconds", &in.IntervalS},
		{"retries", f.Retries, "failed checks", &in.Retries}} {
		if n.text == "" || (n.field == "timeout_ms" && in.Kind == monitors.KindPush) {
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
	// Push is a push URL just made, shown in this one answer.
	Push *pushReveal
}

// pushReveal is a push URL shown once, with a command that calls it.
type pushReveal struct {
	URL  string
	Curl string
	// Path is true when URL is only a path: the controller knows no
	// address to put before it.
	Path bool
}

// pushURL is where a job pushes with token: under the controller's public
// URL, or its listening address when that names a host; else only the
// path.
func (c *Controller) pushURL(token string) string {
	return c.pushBase() + "/push/" + token
}

// pushBase is the address push URLs start with, "" when there is none
// worth showing (no public_url, and the controller listens on every
// address).
func (c *Controller) pushBase() string {
	if c.cfg.PublicURL == "" {
		// The listen address is a URL to give out only when it names a host.
		host, _, err := net.SplitHostPort(c.HTTPAddr())
		if ip := net.ParseIP(host); err != nil || ip == nil || ip.IsUnspecified() {
			return ""
		}
	}
	return strings.TrimSuffix(c.URL(), "/")
}

func (c *Controller) revealPush(token string) *pushReveal {
	u := c.pushURL(token)
	return &pushReveal{URL: u, Curl: "curl -fsS -m 10 --retry 3 " + u, Path: strings.HasPrefix(u, "/")}
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
	m, token, err := mw.svc.Create(r.Context(), mw.w.Actor(r), in)
	if errors.As(err, &errs) {
		mw.renderList(w, r, http.StatusUnprocessableEntity, f, errs, "")
		return
	}
	if err != nil {
		mw.c.log.Error("create monitor", "error", err)
		mw.renderList(w, r, http.StatusInternalServerError, f, nil, "The monitor could not be saved because of a problem on our side.")
		return
	}
	if token != "" {
		mw.renderDetail(w, r, http.StatusOK, m.ID, nil, nil, "", mw.c.revealPush(token))
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
	if m.Kind == monitor.KindPush {
		mw.w.Flash(r, "success", "Monitor saved; it keeps its push URL.")
		return
	}
	if _, err := mw.svc.Check(r.Context(), m.ID); err != nil {
		mw.c.log.Warn("first check", "monitor", m.Name, "error", err)
	}
	mw.w.Flash(r, "success", "Monitor saved and checked once.")
}

func (mw *monitorsWeb) detailPage(w http.ResponseWriter, r *http.Request) {
	mw.renderDetail(w, r, http.StatusOK, monitorID(r), nil, nil, "", nil)
}

// renderDetail renders monitor id's page; push, when set, is a push URL
// just made, shown in this answer only.
func (mw *monitorsWeb) renderDetail(w http.ResponseWriter, r *http.Request, status, id int, f *monitorForm, errs monitors.FieldErrors, msg string, push *pushReveal) {
	v, err := mw.view(r.Context(), id)
	if errors.Is(err, monitors.ErrNotFound) || id == 0 {
		mw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/monitors", map[string]string{"Heading": "No such monitor", "Message": "It may have been removed."})
		return
	}
	if err != nil {
		mw.c.log.Error("monitor page", "error", err)
		http.Error(w, "the monitor could not be read", http.StatusInternalServerError)
		return
	}
	data := monitorsPageData{Monitor: &v, Form: monitorFormOf(v), Errors: errs, Error: msg, Push: push}
	if f != nil {
		data.Form = *f
	}
	if push != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	mw.w.Render(w, r, status, "monitors", "Monitor "+v.Name, "/monitors", data)
}

func (mw *monitorsWeb) updatePage(w http.ResponseWriter, r *http.Request) {
	id := monitorID(r)
	if err := r.ParseForm(); err != nil {
		mw.renderDetail(w, r, http.StatusBadRequest, id, nil, nil, "The form could not be read.", nil)
		return
	}
	f, in, errs := readMonitorForm(r)
	if errs != nil {
		mw.renderDetail(w, r, http.StatusUnprocessableEntity, id, &f, errs, "", nil)
		return
	}
	m, token, err := mw.svc.Update(r.Context(), mw.w.Actor(r), id, in)
	switch {
	case errors.As(err, &errs):
		mw.renderDetail(w, r, http.StatusUnprocessableEntity, id, &f, errs, "", nil)
		return
	case err != nil && !errors.Is(err, monitors.ErrNotFound):
		mw.c.log.Error("update monitor", "error", err)
		mw.renderDetail(w, r, http.StatusInternalServerError, id, &f, nil, "The monitor could not be saved because of a problem on our side.", nil)
		return
	case err != nil:
		mw.renderDetail(w, r, http.StatusNotFound, id, nil, nil, "", nil)
		return
	case token != "":
		mw.renderDetail(w, r, http.StatusOK, m.ID, nil, nil, "", mw.c.revealPush(token))
		return
	}
	mw.firstCheck(r, m)
	http.Redirect(w, r, "/monitors/"+strconv.Itoa(m.ID), http.StatusSeeOther)
}

func (mw *monitorsWeb) checkPage(w http.ResponseWriter, r *http.Request) {
	id := monitorID(r)
	if _, err := mw.svc.Check(r.Context(), id); errors.Is(err, monitors.ErrNotFound) || id == 0 {
		mw.renderDetail(w, r, http.StatusNotFound, id, nil, nil, "", nil)
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
		mw.renderDetail(w, r, http.StatusNotFound, monitorID(r), nil, nil, "", nil)
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

// pushTokenPage gives a push monitor a new push URL and shows it once.
func (mw *monitorsWeb) pushTokenPage(w http.ResponseWriter, r *http.Request) {
	id := monitorID(r)
	m, token, err := mw.svc.NewPushToken(r.Context(), mw.w.Actor(r), id)
	switch {
	case errors.Is(err, monitors.ErrNotFound) || id == 0:
		mw.renderDetail(w, r, http.StatusNotFound, id, nil, nil, "", nil)
	case errors.Is(err, monitors.ErrNotPush):
		mw.w.Flash(r, "error", "Only push monitors have a push URL.")
		http.Redirect(w, r, "/monitors/"+strconv.Itoa(id), http.StatusSeeOther)
	case err != nil:
		mw.c.log.Error("new push URL", "monitor", id, "error", err)
		mw.w.Flash(r, "error", "No new push URL was made because of a problem on our side; the current one still works.")
		http.Redirect(w, r, "/monitors/"+strconv.Itoa(id), http.StatusSeeOther)
	default:
		mw.renderDetail(w, r, http.StatusOK, m.ID, nil, nil, "", mw.c.revealPush(token))
	}
}

// pushBodyLimit is how much of a push's body is read: none of it is used,
// and a job's output posted along is not worth more.
const pushBodyLimit = 4 << 10

// push takes a push from an outside job: GET or POST /push/{token} with an
// optional ?status=up|down&msg=TEXT&ping=MS. It answers in plain text: 200
// "ok" when recorded; 400 with the reason for a query it refuses; 404 for
// an unknown token and for a monitor that is off (alike); 429 for a second
// push within a second, recorded nowhere. It sets no cookie, may not be
// cached, and never writes the token to the log.
func (mw *monitorsWeb) push(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	answer := func(status int, text string) {
		w.WriteHeader(status)
		io.WriteString(w, text+"\n")
	}
	// The body is ignored; a little of it is read so that the connection
	// can serve the job's next request, and a larger one closes it.
	if n, _ := io.CopyN(io.Discard, r.Body, pushBodyLimit+1); n > pushBodyLimit {
		h.Set("Connection", "close")
	}
	token := r.PathValue("token")
	client, now := mw.w.ClientAddr(r), mw.c.monitorsClock.now()
	if mw.misses.blocked(client, now) {
		h.Set("Retry-After", "60")
		answer(http.StatusTooManyRequests, "too many pushes to unknown URLs from this address; try again in a minute")
		return
	}
	if !monitors.TokenShape(token) {
		mw.misses.miss(client, now)
		answer(http.StatusNotFound, "not found")
		return
	}
	rep, err := monitors.ParseReport(r.URL.RawQuery)
	if err != nil {
		answer(http.StatusBadRequest, err.Error())
		return
	}
	_, err = mw.svc.Push(r.Context(), token, rep)
	switch {
	case err == nil:
		answer(http.StatusOK, "ok")
	case errors.Is(err, monitors.ErrTooSoon):
		h.Set("Retry-After", "1")
		answer(http.StatusTooManyRequests, "too many pushes: one a second is recorded")
	case errors.Is(err, monitors.ErrNotFound) || errors.Is(err, monitors.ErrPushOff):
		mw.misses.miss(client, now)
		answer(http.StatusNotFound, "not found")
	default:
		mw.c.log.Error("record a push", "error", err)
		answer(http.StatusInternalServerError, "the push could not be recorded; try again")
	}
}
