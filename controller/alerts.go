package controller

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
	"github.com/gatehousehq/gatehouse/controller/internal/notify"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
)

// buildAlerts creates the alert engine and the notification channels.
func (c *Controller) buildAlerts() {
	c.channels = alerts.NewChannels(c.db, c.box, c.log, alerts.ChannelsOptions{
		TelegramAPI: c.cfg.TelegramAPIURL,
		Audit:       c.audit,
		// With backoff capped at a minute, this rides out an endpoint outage
		// of about half an hour before a notification is given up.
		Notify: notify.Options{MaxAttempts: 36},
	})
	c.alerts = alerts.New(c.db, c.log, c.alertOptions(time.Now))
}

// alertOptions is what the alert engine is built with: the audit log, live
// updates, the notification channels and what the nodes' upstream probes
// found, judged at the times now tells.
func (c *Controller) alertOptions(now func() time.Time) alerts.Options {
	return alerts.Options{Audit: c.audit, Events: c.events, Notifier: c.channels, Now: now,
		UpstreamProbes: c.upstreamProbes.forAlerts}
}

// publishMetrics is the metrics writer's publisher: live tiles, and the
// alert engine's observations (which never block the writer).
func (c *Controller) publishMetrics(latest []metrics.Summary) {
	c.tiles.add(latest)
	for _, s := range latest {
		if full := c.writer.Latest(s.ServerID); full != nil {
			c.alerts.Observe(alerts.ObservationFromSample(s.ServerID, full))
		}
	}
}

// alertsWeb serves the alert pages and /api/v1/alerts.
type alertsWeb struct {
	c *Controller
	w *web.Server
}

func (a *alertsWeb) register() error {
	page := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindPage, Handler: h}
	}
	api := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: h}
	}
	incidents := page("GET", "/alerts", web.PolicyUser, a.incidentsPage)
	incidents.Nav, incidents.NavOrder = "Alerts", 28
	jobs := page("GET", "/jobs", web.PolicyUser, a.jobsPage)
	jobs.Nav, jobs.NavOrder, jobs.NavMenu = "Jobs", 45, web.NavSystem
	for _, r := range []web.Route{
		incidents,
		page("POST", "/alerts/incidents/{id}/ack", web.PolicyUser, a.ackPage),
		page("GET", "/alerts/rules", web.PolicyUser, a.rulesPage),
		page("GET", "/alerts/rules/new", web.PolicyAdmin, a.ruleNewPage),
		page("GET", "/alerts/rules/{id}", web.PolicyAdmin, a.ruleEditPage),
		page("POST", "/alerts/rules", web.PolicyAdmin, a.ruleSavePage),
		page("POST", "/alerts/rules/{id}", web.PolicyAdmin, a.ruleSavePage),
		page("POST", "/alerts/rules/{id}/delete", web.PolicyAdmin, a.ruleDeletePage),
		page("GET", "/alerts/silences", web.PolicyUser, a.silencesPage),
		page("POST", "/alerts/silences", web.PolicyUser, a.silenceCreatePage),
		page("POST", "/alerts/silences/{id}/end", web.PolicyUser, a.silenceEndPage),
		page("GET", "/alerts/channels", web.PolicyAdmin, a.channelsPage),
		page("POST", "/alerts/channels", web.PolicyAdmin, a.channelSavePage),
		page("GET", "/alerts/channels/{id}", web.PolicyAdmin, a.channelEditPage),
		page("POST", "/alerts/channels/{id}", web.PolicyAdmin, a.channelSavePage),
		page("POST", "/alerts/channels/{id}/test", web.PolicyAdmin, a.channelTestPage),
		page("POST", "/alerts/channels/{id}/delete", web.PolicyAdmin, a.channelDeletePage),
		jobs,
		page("POST", "/jobs/{name}/run", web.PolicyAdmin, a.jobRunPage),

		api("GET", "/api/v1/alerts/rules", web.PolicyUser, a.apiRules),
		api("POST", "/api/v1/alerts/rules", web.PolicyAdmin, a.apiRuleCreate),
		api("GET", "/api/v1/alerts/rules/{id}", web.PolicyUser, a.apiRuleGet),
		api("PUT", "/api/v1/alerts/rules/{id}", web.PolicyAdmin, a.apiRuleUpdate),
		api("DELETE", "/api/v1/alerts/rules/{id}", web.PolicyAdmin, a.apiRuleDelete),
		api("GET", "/api/v1/alerts/incidents", web.PolicyUser, a.apiIncidents),
		api("POST", "/api/v1/alerts/incidents/{id}/ack", web.PolicyUser, a.apiAck),
		api("POST", "/api/v1/alerts/incidents/{id}/silence", web.PolicyUser, a.apiSilenceIncident),
		api("GET", "/api/v1/alerts/silences", web.PolicyUser, a.apiSilences),
		api("POST", "/api/v1/alerts/silences", web.PolicyUser, a.apiSilenceCreate),
		api("DELETE", "/api/v1/alerts/silences/{id}", web.PolicyUser, a.apiSilenceEnd),
		api("GET", "/api/v1/alerts/channels", web.PolicyAdmin, a.apiChannels),
		api("POST", "/api/v1/alerts/channels", web.PolicyAdmin, a.apiChannelCreate),
		api("PUT", "/api/v1/alerts/channels/{id}", web.PolicyAdmin, a.apiChannelUpdate),
		api("DELETE", "/api/v1/alerts/channels/{id}", web.PolicyAdmin, a.apiChannelDelete),
		api("POST", "/api/v1/alerts/channels/{id}/test", web.PolicyAdmin, a.apiChannelTest),
		api("GET", "/api/v1/alerts/deliveries", web.PolicyAdmin, a.apiDeliveries),
		api("GET", "/api/v1/jobs", web.PolicyUser, a.apiJobs),
		api("GET", "/api/v1/jobs/{name}/runs", web.PolicyUser, a.apiJobRuns),
		api("POST", "/api/v1/jobs/{name}/run", web.PolicyAdmin, a.apiJobRun),
	} {
		if err := a.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

func pathInt(r *http.Request, name string) (int, bool) {
	id, err := strconv.Atoi(r.PathValue(name))
	return id, err == nil && id > 0
}

// apiFail answers an error from the alerts package.
func (a *alertsWeb) apiFail(w http.ResponseWriter, err error) {
	var fe alerts.FieldErrors
	switch {
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", "some fields are not valid", fe)
	case errors.Is(err, alerts.ErrNotFound):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such item", nil)
	case errors.Is(err, alerts.ErrResolved):
		web.WriteError(w, http.StatusConflict, "resolved", "the incident is resolved already", nil)
	default:
		a.c.log.Error("alerts api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the request could not be completed", nil)
	}
}

// --- rules ---

// ruleJSON is a rule in the API. Durations are Go duration strings ("5m").
type ruleJSON struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Enabled     *bool    `json:"enabled"` // default true
	Metric      string   `json:"metric,omitempty"`
	Mount       string   `json:"mount,omitempty"`
	Op          string   `json:"op,omitempty"`
	Warning     *float64 `json:"warning,omitempty"`
	Critical    *float64 `json:"critical,omitempty"`
	Severity    string   `json:"severity,omitempty"`
	Window      string   `json:"window,omitempty"`
	Days        *int     `json:"days,omitempty"` // cert_expiring only; default 14
	Repeat      string   `json:"repeat,omitempty"`
	ServerIDs   []int    `json:"server_ids"`
	Labels      []string `json:"labels"`
	ChannelIDs  []int    `json:"channel_ids"`
	Explanation string   `json:"explanation,omitempty"`
}

func (a *alertsWeb) serverNames(ctx context.Context) map[int]string {
	out := map[int]string{}
	list, err := a.c.db.Client.Server.Query().All(ctx)
	if err != nil {
		return out
	}
	for _, s := range list {
		out[s.ID] = s.Name
	}
	return out
}

func toRuleJSON(r alerts.Rule, names map[int]string) ruleJSON {
	enabled := r.Enabled
	out := ruleJSON{ID: r.ID, Name: r.Name, Kind: string(r.Kind), Enabled: &enabled, Metric: string(r.Metric), Mount: r.Mount,
		Op: string(r.Op), Warning: r.Warning, Critical: r.Critical, ServerIDs: r.ServerIDs, Labels: r.Labels,
		ChannelIDs: r.ChannelIDs, Explanation: r.Explain(names)}
	if r.Kind != alerts.KindMetric {
		out.Severity = string(r.Severity)
	}
	if r.Kind.HasDays() {
		days := r.Days
		out.Days = &days
	}
	if r.Window > 0 {
		out.Window = r.Window.String()
	}
	if r.Repeat > 0 {
		out.Repeat = r.Repeat.String()
	}
	for _, p := range []*[]int{&out.ServerIDs, &out.ChannelIDs} {
		if *p == nil {
			*p = []int{}
		}
	}
	if out.Labels == nil {
		out.Labels = []string{}
	}
	return out
}

// toRule converts API input; duration parse errors come back as field errors.
func (in ruleJSON) toRule() (alerts.Rule, error) {
	r := alerts.Rule{ID: in.ID, Name: in.Name, Kind: alerts.Kind(in.Kind), Enabled: in.Enabled == nil || *in.Enabled, Metric: alerts.Metric(in.Metric),
		Mount: in.Mount, Op: alerts.Op(in.Op), Warning: in.Warning, Critical: in.Critical, Severity: alerts.Severity(in.Severity),
		ServerIDs: in.ServerIDs, Labels: in.Labels, ChannelIDs: in.ChannelIDs}
	switch {
	case in.Days != nil:
		r.Days = *in.Days
	case r.Kind.HasDays():
		r.Days = alerts.DefaultDays
	}
	errs := alerts.FieldErrors{}
	for _, d := range []struct {
		name string
		s    string
		p    *time.Duration
	}{{"window", in.Window, &r.Window}, {"repeat", in.Repeat, &r.Repeat}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			errs[d.name] = "must be a duration such as 30s, 5m or 1h"
			continue
		}
		*d.p = v
	}
	if len(errs) > 0 {
		return r, errs
	}
	return r, nil
}

func (a *alertsWeb) apiRules(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.alerts.Rules(r.Context())
	if err != nil {
		a.apiFail(w, err)
		return
	}
	names := a.serverNames(r.Context())
	out := make([]ruleJSON, len(list))
	for i, rule := range list {
		out[i] = toRuleJSON(rule, names)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"rules": out})
}

func (a *alertsWeb) apiRuleGet(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	rule, err := a.c.alerts.Rule(r.Context(), id)
	if err != nil {
		a.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, toRuleJSON(rule, a.serverNames(r.Context())))
}

func (a *alertsWeb) saveRuleAPI(w http.ResponseWriter, r *http.Request, id int) {
	var in ruleJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	in.ID = id
	rule, err := in.toRule()
	if err == nil {
		rule, err = a.c.alerts.SaveRule(r.Context(), rule, a.w.Actor(r))
	}
	if err != nil {
		a.apiFail(w, err)
		return
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	web.WriteJSON(w, status, toRuleJSON(rule, a.serverNames(r.Context())))
}

func (a *alertsWeb) apiRuleCreate(w http.ResponseWriter, r *http.Request) { a.saveRuleAPI(w, r, 0) }

func (a *alertsWeb) apiRuleUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	a.saveRuleAPI(w, r, id)
}

func (a *alertsWeb) apiRuleDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	if err := a.c.alerts.DeleteRule(r.Context(), id, a.w.Actor(r)); err != nil {
		a.apiFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- incidents and silences ---

func (a *alertsWeb) apiIncidents(w http.ResponseWriter, r *http.Request) {
	f := alerts.IncidentFilter{Open: r.URL.Query().Get("state") == "open"}
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil {
		f.Limit = n
	}
	list, err := a.c.alerts.Incidents(r.Context(), f)
	if err != nil {
		a.apiFail(w, err)
		return
	}
	now := time.Now()
	out := make([]alerts.IncidentView, len(list))
	for i, inc := range list {
		out[i] = alerts.ViewOf(inc, now)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func (a *alertsWeb) apiAck(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	inc, err := a.c.alerts.AckIncident(r.Context(), id, a.w.Actor(r))
	if err != nil {
		a.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, alerts.ViewOf(inc, time.Now()))
}

type silenceJSON struct {
	ID        int       `json:"id"`
	RuleID    int       `json:"rule_id"`
	ServerID  int       `json:"server_id"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by"`
	Active    bool      `json:"active"`
}

func toSilenceJSON(s *ent.Silence, now time.Time) silenceJSON {
	return silenceJSON{ID: s.ID, RuleID: s.RuleID, ServerID: s.ServerID, StartsAt: s.StartsAt, EndsAt: s.EndsAt,
		Comment: s.Comment, CreatedBy: s.CreatedBy, Active: !now.Before(s.StartsAt) && now.Before(s.EndsAt)}
}

func (a *alertsWeb) apiSilenceIncident(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	var in struct {
		Duration string `json:"duration"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	d, err := time.ParseDuration(in.Duration)
	if err != nil || d <= 0 {
		a.apiFail(w, alerts.FieldErrors{"duration": "must be a duration such as 1h"})
		return
	}
	s, err := a.c.alerts.SilenceIncident(r.Context(), id, d, a.w.Actor(r))
	if err != nil {
		a.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusCreated, toSilenceJSON(s, time.Now()))
}

func (a *alertsWeb) apiSilences(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.alerts.Silences(r.Context())
	if err != nil {
		a.apiFail(w, err)
		return
	}
	now := time.Now()
	out := make([]silenceJSON, len(list))
	for i, s := range list {
		out[i] = toSilenceJSON(s, now)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"silences": out})
}

func (a *alertsWeb) apiSilenceCreate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RuleID   int        `json:"rule_id"`
		ServerID int        `json:"server_id"`
		StartsAt *time.Time `json:"starts_at"`
		EndsAt   *time.Time `json:"ends_at"`
		Duration string     `json:"duration"`
		Comment  string     `json:"comment"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	si := alerts.SilenceInput{RuleID: in.RuleID, ServerID: in.ServerID, StartsAt: time.Now(), Comment: in.Comment}
	if in.StartsAt != nil {
		si.StartsAt = *in.StartsAt
	}
	switch {
	case in.EndsAt != nil && in.Duration != "":
		a.apiFail(w, alerts.FieldErrors{"duration": "give ends_at or duration, not both"})
		return
	case in.EndsAt != nil:
		si.EndsAt = *in.EndsAt
	case in.Duration != "":
		d, err := time.ParseDuration(in.Duration)
		if err != nil || d <= 0 {
			a.apiFail(w, alerts.FieldErrors{"duration": "must be a duration such as 2h"})
			return
		}
		si.EndsAt = si.StartsAt.Add(d)
	}
	s, err := a.c.alerts.CreateSilence(r.Context(), si, a.w.Actor(r))
	if err != nil {
		a.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusCreated, toSilenceJSON(s, time.Now()))
}

func (a *alertsWeb) apiSilenceEnd(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	if err := a.c.alerts.EndSilence(r.Context(), id, a.w.Actor(r)); err != nil {
		a.apiFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- channels ---

// channelJSON is a channel in the API; the secret is write-only.
type channelJSON struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Enabled *bool  `json:"enabled"` // default true
	ChatID  int64  `json:"chat_id,omitempty"`
	TopicID int    `json:"topic_id,omitempty"`
	Silent  bool   `json:"silent,omitempty"`
	URL     string `json:"url,omitempty"`
	// WebhookFormat is the body a webhook receives: gatehouse (the default,
	// shown as absent), slack or discord.
	WebhookFormat string `json:"webhook_format,omitempty"`
	// Email over SMTP.
	SMTPHost     string   `json:"smtp_host,omitempty"`
	SMTPPort     int      `json:"smtp_port,omitempty"`
	SMTPSecurity string   `json:"smtp_security,omitempty"` // starttls (default), tls or none (loopback only)
	SMTPUsername string   `json:"smtp_username,omitempty"`
	MailFrom     string   `json:"mail_from,omitempty"`
	MailTo       []string `json:"mail_to,omitempty"`
	HasSecret    bool     `json:"has_secret"`
	// Secret is accepted on input only: the bot token, webhook signing
	// secret or SMTP password.
	Secret string `json:"secret,omitempty"`
}

func toChannelJSON(ch *ent.NotificationChannel) channelJSON {
	enabled := ch.Enabled
	return channelJSON{ID: ch.ID, Name: ch.Name, Kind: string(ch.Kind), Enabled: &enabled, ChatID: ch.ChatID,
		TopicID: ch.TopicID, Silent: ch.Silent, URL: ch.URL, WebhookFormat: ch.WebhookFormat, HasSecret: len(ch.Secret) > 0,
		SMTPHost: ch.SMTPHost, SMTPPort: ch.SMTPPort, SMTPSecurity: ch.SMTPSecurity, SMTPUsername: ch.SMTPUsername,
		MailFrom: ch.MailFrom, MailTo: ch.MailTo}
}

func (a *alertsWeb) apiChannels(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.channels.List(r.Context())
	if err != nil {
		a.apiFail(w, err)
		return
	}
	out := make([]channelJSON, len(list))
	for i, ch := range list {
		out[i] = toChannelJSON(ch)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (a *alertsWeb) saveChannelAPI(w http.ResponseWriter, r *http.Request, id int) {
	var in channelJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	ch, err := a.c.channels.SaveChannel(r.Context(), alerts.ChannelInput{ID: id, Name: in.Name, Kind: in.Kind, Enabled: in.Enabled == nil || *in.Enabled,
		ChatID: in.ChatID, TopicID: in.TopicID, Silent: in.Silent, URL: in.URL, WebhookFormat: in.WebhookFormat, Secret: in.Secret,
		SMTPHost: in.SMTPHost, SMTPPort: in.SMTPPort, SMTPSecurity: in.SMTPSecurity, SMTPUsername: in.SMTPUsername,
		MailFrom: in.MailFrom, MailTo: in.MailTo}, a.w.Actor(r))
	if err != nil {
		a.apiFail(w, err)
		return
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	web.WriteJSON(w, status, toChannelJSON(ch))
}

func (a *alertsWeb) apiChannelCreate(w http.ResponseWriter, r *http.Request) {
	a.saveChannelAPI(w, r, 0)
}

func (a *alertsWeb) apiChannelUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	a.saveChannelAPI(w, r, id)
}

func (a *alertsWeb) apiChannelDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	if err := a.c.channels.DeleteChannel(r.Context(), id, a.w.Actor(r)); err != nil {
		a.apiFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *alertsWeb) apiChannelTest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		a.apiFail(w, alerts.ErrNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := a.c.channels.SendTest(ctx, id); err != nil {
		web.WriteError(w, http.StatusBadGateway, "not_delivered", err.Error(), nil)
		return
	}
	a.record(r, "channel.test", "channel:"+strconv.Itoa(id), "test notification delivered")
	web.WriteJSON(w, http.StatusOK, map[string]any{"delivered": true})
}

func (a *alertsWeb) record(r *http.Request, action, target, detail string) {
	if err := a.c.audit.Record(r.Context(), audit.For(a.w.Actor(r), action, target, detail)); err != nil {
		a.c.log.Error("audit", "action", action, "error", err)
	}
}

type deliveryJSON struct {
	At         time.Time `json:"at"`
	ChannelID  int       `json:"channel_id"`
	Channel    string    `json:"channel"`
	IncidentID int       `json:"incident_id"`
	Key        string    `json:"key"`
	Kind       string    `json:"kind"`
	Attempt    int       `json:"attempt"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error"`
}

func (a *alertsWeb) apiDeliveries(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := a.c.channels.Deliveries(r.Context(), n)
	if err != nil {
		a.apiFail(w, err)
		return
	}
	out := make([]deliveryJSON, len(list))
	for i, d := range list {
		out[i] = deliveryJSON{At: d.At, ChannelID: d.ChannelID, Channel: d.Channel, IncidentID: d.IncidentID, Key: d.Key,
			Kind: d.Kind, Attempt: d.Attempt, Outcome: d.Outcome, Error: d.Error}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

// --- jobs ---

func (a *alertsWeb) apiJobs(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var out []jobView
	for _, st := range a.c.sched.Jobs() {
		out = append(out, jobViewOf(st, now))
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

type runJSON struct {
	ID         int        `json:"id"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Outcome    string     `json:"outcome"`
	Log        string     `json:"log"`
	Error      string     `json:"error"`
}

func (a *alertsWeb) apiJobRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := a.c.sched.History(r.Context(), r.PathValue("name"), 50)
	if errors.Is(err, scheduler.ErrUnknownJob) {
		web.WriteError(w, http.StatusNotFound, "not_found", "no such job", nil)
		return
	}
	if err != nil {
		a.apiFail(w, err)
		return
	}
	out := make([]runJSON, len(runs))
	for i, run := range runs {
		out[i] = runJSON{ID: run.ID, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Outcome: string(run.Outcome), Log: run.Log, Error: run.Error}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (a *alertsWeb) apiJobRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	switch err := a.c.sched.Trigger(name); {
	case errors.Is(err, scheduler.ErrUnknownJob):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such job", nil)
	case errors.Is(err, scheduler.ErrRunning):
		web.WriteError(w, http.StatusConflict, "running", "the job is running already; wait for it to finish", nil)
	default:
		a.record(r, "job.run", "job:"+name, "run now")
		web.WriteJSON(w, http.StatusAccepted, map[string]any{"started": true})
	}
}
