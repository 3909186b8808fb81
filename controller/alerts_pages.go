package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/ent"
)

// pageFail shows an error from the alerts package as a flash and goes back.
func (a *alertsWeb) pageFail(w http.ResponseWriter, r *http.Request, back string, err error) {
	msg := "The request could not be completed."
	switch {
	case errors.Is(err, alerts.ErrNotFound):
		msg = "It no longer exists."
	case errors.Is(err, alerts.ErrResolved):
		msg = "The incident is resolved already."
	default:
		var fe alerts.FieldErrors
		if errors.As(err, &fe) {
			msg = "Not saved: " + fe.Error()
		} else {
			a.c.log.Error("alerts page", "error", err)
		}
	}
	a.w.Flash(r, "error", msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

type incidentsData struct {
	Open    []alerts.IncidentView
	History []alerts.IncidentView
}

func (a *alertsWeb) incidentsPage(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.alerts.Incidents(r.Context(), alerts.IncidentFilter{Limit: 200})
	if err != nil {
		http.Error(w, "the incidents could not be read", http.StatusInternalServerError)
		return
	}
	var d incidentsData
	now := time.Now()
	for _, inc := range list {
		v := alerts.ViewOf(inc, now)
		if v.State == "resolved" {
			d.History = append(d.History, v)
		} else {
			d.Open = append(d.Open, v)
		}
	}
	a.w.Render(w, r, http.StatusOK, "alerts_incidents", "Alerts", "/alerts", d)
}

func (a *alertsWeb) ackPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if _, err := a.c.alerts.AckIncident(r.Context(), id, a.w.Actor(r)); err != nil {
		a.pageFail(w, r, "/alerts", err)
		return
	}
	a.w.Flash(r, "success", fmt.Sprintf("Incident %d acknowledged: no more reminders.", id))
	http.Redirect(w, r, "/alerts", http.StatusSeeOther)
}

// --- rules ---

type ruleRow struct {
	alerts.Rule
	Explanation string
}

func (a *alertsWeb) rulesPage(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.alerts.Rules(r.Context())
	if err != nil {
		http.Error(w, "the rules could not be read", http.StatusInternalServerError)
		return
	}
	names := a.serverNames(r.Context())
	rows := make([]ruleRow, len(list))
	for i, rule := range list {
		rows[i] = ruleRow{Rule: rule, Explanation: rule.Explain(names)}
	}
	a.w.Render(w, r, http.StatusOK, "alerts_rules", "Alert rules", "/alerts", map[string]any{"Rules": rows})
}

// ruleForm is the rule editor's state: raw form values, so input is kept
// when it is refused.
type ruleForm struct {
	ID                                                  int
	Name, Kind, Metric, Mount, Op, Warning, Critical    string
	Severity, Window, Repeat, Servers, Labels, Channels string
	Days                                                string
	Enabled                                             bool
	Errors                                              alerts.FieldErrors
	Explanation                                         string
	Kinds                                               []alerts.Kind
	Metrics                                             []alerts.MetricInfo
}

func formOf(rule alerts.Rule) ruleForm {
	f := ruleForm{ID: rule.ID, Name: rule.Name, Kind: string(rule.Kind), Metric: string(rule.Metric), Mount: rule.Mount,
		Op: string(rule.Op), Severity: string(rule.Severity), Enabled: rule.Enabled,
		Labels: strings.Join(rule.Labels, ", "), Servers: joinInts(rule.ServerIDs), Channels: joinInts(rule.ChannelIDs)}
	if rule.Warning != nil {
		f.Warning = strconv.FormatFloat(*rule.Warning, 'f', -1, 64)
	}
	if rule.Critical != nil {
		f.Critical = strconv.FormatFloat(*rule.Critical, 'f', -1, 64)
	}
	if rule.Window > 0 {
		f.Window = rule.Window.String()
	}
	if rule.Repeat > 0 {
		f.Repeat = rule.Repeat.String()
	}
	if rule.Days > 0 {
		f.Days = strconv.Itoa(rule.Days)
	}
	return f
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parse turns the form into a rule, collecting per-field messages.
func (f ruleForm) parse() (alerts.Rule, alerts.FieldErrors) {
	errs := alerts.FieldErrors{}
	rule := alerts.Rule{ID: f.ID, Name: strings.TrimSpace(f.Name), Kind: alerts.Kind(f.Kind), Enabled: f.Enabled,
		Labels: splitList(f.Labels)}
	if rule.Kind == alerts.KindMetric {
		rule.Metric, rule.Op = alerts.Metric(f.Metric), alerts.Op(f.Op)
		if rule.Metric == alerts.MetricFS {
			rule.Mount = strings.TrimSpace(f.Mount)
		}
		for name, p := range map[string]**float64{"warning": &rule.Warning, "critical": &rule.Critical} {
			raw := strings.TrimSpace(map[string]string{"warning": f.Warning, "critical": f.Critical}[name])
			if raw == "" {
				continue
			}
			v, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				errs[name] = "must be a number"
				continue
			}
			*p = &v
		}
	} else {
		rule.Severity = alerts.Severity(f.Severity)
	}
	if rule.Kind == alerts.KindCertExpiring {
		// Days applies only here; other kinds ignore the field, as they do
		// the metric fields.
		rule.Days = alerts.DefaultDays
		if raw := strings.TrimSpace(f.Days); raw != "" {
			v, err := strconv.Atoi(raw)
			if err != nil {
				errs["days"] = fmt.Sprintf("must be a whole number of days between 1 and %d", alerts.MaxDays)
			}
			rule.Days = v
		}
	}
	window := f.Window
	if rule.Kind.PerDomain() {
		// The form always carries a window; certificate and DNS rules have none.
		window = ""
	}
	for _, d := range []struct {
		name, raw string
		p         *time.Duration
	}{{"window", window, &rule.Window}, {"repeat", f.Repeat, &rule.Repeat}} {
		if strings.TrimSpace(d.raw) == "" {
			continue
		}
		v, err := time.ParseDuration(strings.TrimSpace(d.raw))
		if err != nil {
			errs[d.name] = "must be a duration such as 30s, 5m or 1h"
			continue
		}
		*d.p = v
	}
	for _, l := range []struct {
		name, raw string
		p         *[]int
	}{{"servers", f.Servers, &rule.ServerIDs}, {"channels", f.Channels, &rule.ChannelIDs}} {
		for _, s := range splitList(l.raw) {
			n, err := strconv.Atoi(s)
			if err != nil {
				errs[l.name] = "must be a comma-separated list of ids"
				break
			}
			*l.p = append(*l.p, n)
		}
	}
	return rule, errs
}

func (a *alertsWeb) renderRule(w http.ResponseWriter, r *http.Request, status int, f ruleForm) {
	f.Kinds, f.Metrics = alerts.Kinds, alerts.MetricInfos
	title := "New alert rule"
	if f.ID != 0 {
		title = "Edit alert rule"
	}
	if f.Explanation == "" {
		// Explain whatever is valid so far; the name does not change the words.
		rule, errs := f.parse()
		if rule.Name == "" {
			rule.Name = "rule"
		}
		if len(errs) == 0 && rule.Validate() == nil {
			f.Explanation = rule.Explain(a.serverNames(r.Context()))
		}
	}
	a.w.Render(w, r, status, "alerts_rule", title, "/alerts", f)
}

func (a *alertsWeb) ruleNewPage(w http.ResponseWriter, r *http.Request) {
	a.renderRule(w, r, http.StatusOK, ruleForm{Kind: "metric", Metric: "cpu", Op: ">", Warning: "80", Critical: "95", Window: "5m", Severity: "critical",
		Days: strconv.Itoa(alerts.DefaultDays), Enabled: true})
}

func (a *alertsWeb) ruleEditPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	rule, err := a.c.alerts.Rule(r.Context(), id)
	if err != nil {
		a.pageFail(w, r, "/alerts/rules", err)
		return
	}
	a.renderRule(w, r, http.StatusOK, formOf(rule))
}

func (a *alertsWeb) ruleSavePage(w http.ResponseWriter, r *http.Request) {
	f := ruleForm{Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"), Metric: r.PostFormValue("metric"),
		Mount: r.PostFormValue("mount"), Op: r.PostFormValue("op"), Warning: r.PostFormValue("warning"),
		Critical: r.PostFormValue("critical"), Severity: r.PostFormValue("severity"), Window: r.PostFormValue("window"),
		Repeat: r.PostFormValue("repeat"), Days: r.PostFormValue("days"), Servers: r.PostFormValue("servers"), Labels: r.PostFormValue("labels"),
		Channels: r.PostFormValue("channels"), Enabled: r.PostFormValue("enabled") == "on"}
	if r.PathValue("id") != "" {
		id, ok := pathInt(r, "id")
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.ID = id
	}
	rule, errs := f.parse()
	if r.PostFormValue("preview") != "" {
		// "Explain": show the rule in words without saving it.
		if len(errs) == 0 {
			if err := rule.Validate(); err != nil && !errors.As(err, &errs) {
				errs = alerts.FieldErrors{}
			}
		}
		f.Errors = errs
		a.renderRule(w, r, http.StatusOK, f)
		return
	}
	if len(errs) == 0 {
		saved, err := a.c.alerts.SaveRule(r.Context(), rule, a.w.Actor(r))
		if err == nil {
			a.w.Flash(r, "success", fmt.Sprintf("Rule %q saved.", saved.Name))
			http.Redirect(w, r, "/alerts/rules", http.StatusSeeOther)
			return
		}
		if !errors.As(err, &errs) {
			a.pageFail(w, r, "/alerts/rules", err)
			return
		}
	}
	f.Errors = errs
	a.renderRule(w, r, http.StatusUnprocessableEntity, f)
}

func (a *alertsWeb) ruleDeletePage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err := a.c.alerts.DeleteRule(r.Context(), id, a.w.Actor(r)); err != nil {
		a.pageFail(w, r, "/alerts/rules", err)
		return
	}
	a.w.Flash(r, "success", "Rule deleted; its open incidents resolve at the next evaluation.")
	http.Redirect(w, r, "/alerts/rules", http.StatusSeeOther)
}

// --- silences ---

type silenceRow struct {
	*ent.Silence
	Active           bool
	Rule, ServerName string
}

func (a *alertsWeb) silencesPage(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.alerts.Silences(r.Context())
	if err != nil {
		http.Error(w, "the silences could not be read", http.StatusInternalServerError)
		return
	}
	rules, _ := a.c.alerts.Rules(r.Context())
	ruleNames := map[int]string{}
	for _, rule := range rules {
		ruleNames[rule.ID] = rule.Name
	}
	names := a.serverNames(r.Context())
	now := time.Now()
	rows := make([]silenceRow, len(list))
	for i, s := range list {
		rows[i] = silenceRow{Silence: s, Active: !now.Before(s.StartsAt) && now.Before(s.EndsAt), Rule: "every rule", ServerName: "every server"}
		if s.RuleID != 0 {
			rows[i].Rule = or(ruleNames[s.RuleID], "#"+strconv.Itoa(s.RuleID))
		}
		if s.ServerID != 0 {
			rows[i].ServerName = or(names[s.ServerID], "#"+strconv.Itoa(s.ServerID))
		}
	}
	a.w.Render(w, r, http.StatusOK, "alerts_silences", "Silences", "/alerts",
		map[string]any{"Silences": rows, "Rules": rules, "Servers": names})
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *alertsWeb) silenceCreatePage(w http.ResponseWriter, r *http.Request) {
	ruleID, _ := strconv.Atoi(r.PostFormValue("rule_id"))
	serverID, _ := strconv.Atoi(r.PostFormValue("server_id"))
	d, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("duration")))
	if err != nil || d <= 0 {
		a.w.Flash(r, "error", "Not saved: duration must be a duration such as 2h.")
		http.Redirect(w, r, "/alerts/silences", http.StatusSeeOther)
		return
	}
	now := time.Now()
	if _, err := a.c.alerts.CreateSilence(r.Context(), alerts.SilenceInput{RuleID: ruleID, ServerID: serverID, StartsAt: now,
		EndsAt: now.Add(d), Comment: r.PostFormValue("comment")}, a.w.Actor(r)); err != nil {
		a.pageFail(w, r, "/alerts/silences", err)
		return
	}
	a.w.Flash(r, "success", "Silence created.")
	http.Redirect(w, r, "/alerts/silences", http.StatusSeeOther)
}

func (a *alertsWeb) silenceEndPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err := a.c.alerts.EndSilence(r.Context(), id, a.w.Actor(r)); err != nil {
		a.pageFail(w, r, "/alerts/silences", err)
		return
	}
	a.w.Flash(r, "success", "Silence ended.")
	http.Redirect(w, r, "/alerts/silences", http.StatusSeeOther)
}

// --- channels ---

func (a *alertsWeb) channelsPage(w http.ResponseWriter, r *http.Request) {
	list, err := a.c.channels.List(r.Context())
	if err != nil {
		http.Error(w, "the channels could not be read", http.StatusInternalServerError)
		return
	}
	deliveries, _ := a.c.channels.Deliveries(r.Context(), 50)
	a.w.Render(w, r, http.StatusOK, "alerts_channels", "Notification channels", "/alerts",
		map[string]any{"Channels": list, "Deliveries": deliveries})
}

func (a *alertsWeb) channelSavePage(w http.ResponseWriter, r *http.Request) {
	in := alerts.ChannelInput{Name: strings.TrimSpace(r.PostFormValue("name")), Kind: r.PostFormValue("kind"),
		Enabled: r.PostFormValue("enabled") == "on", Silent: r.PostFormValue("silent") == "on",
		URL: strings.TrimSpace(r.PostFormValue("url")), Secret: strings.TrimSpace(r.PostFormValue("secret"))}
	errs := alerts.FieldErrors{}
	if v := strings.TrimSpace(r.PostFormValue("chat_id")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs["chat_id"] = "must be a numeric chat id such as -1001234567890"
		}
		in.ChatID = n
	}
	if v := strings.TrimSpace(r.PostFormValue("topic_id")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs["topic_id"] = "must be a number"
		}
		in.TopicID = n
	}
	if r.PathValue("id") != "" {
		id, ok := pathInt(r, "id")
		if !ok {
			http.NotFound(w, r)
			return
		}
		in.ID = id
	}
	if len(errs) > 0 {
		a.pageFail(w, r, "/alerts/channels", errs)
		return
	}
	ch, err := a.c.channels.SaveChannel(r.Context(), in, a.w.Actor(r))
	if err != nil {
		a.pageFail(w, r, "/alerts/channels", err)
		return
	}
	a.w.Flash(r, "success", fmt.Sprintf("Channel %q saved.", ch.Name))
	http.Redirect(w, r, "/alerts/channels", http.StatusSeeOther)
}

func (a *alertsWeb) channelTestPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := a.c.channels.SendTest(ctx, id); err != nil {
		a.w.Flash(r, "error", err.Error())
	} else {
		a.record(r, "channel.test", "channel:"+strconv.Itoa(id), "test notification delivered")
		a.w.Flash(r, "success", "Test notification delivered.")
	}
	http.Redirect(w, r, "/alerts/channels", http.StatusSeeOther)
}

func (a *alertsWeb) channelDeletePage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err := a.c.channels.DeleteChannel(r.Context(), id, a.w.Actor(r)); err != nil {
		a.pageFail(w, r, "/alerts/channels", err)
		return
	}
	a.w.Flash(r, "success", "Channel deleted.")
	http.Redirect(w, r, "/alerts/channels", http.StatusSeeOther)
}

// --- jobs ---

func (a *alertsWeb) jobsPage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var jobs []jobView
	for _, st := range a.c.sched.Jobs() {
		jobs = append(jobs, jobViewOf(st, now))
	}
	a.w.Render(w, r, http.StatusOK, "jobs", "Jobs", "/jobs", map[string]any{"Jobs": jobs})
}

func (a *alertsWeb) jobRunPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	switch err := a.c.sched.Trigger(name); {
	case errors.Is(err, scheduler.ErrUnknownJob):
		http.NotFound(w, r)
		return
	case errors.Is(err, scheduler.ErrRunning):
		a.w.Flash(r, "error", "The job is running already; wait for it to finish.")
	default:
		a.record(r, "job.run", "job:"+name, "run now")
		a.w.Flash(r, "success", "The job was started.")
	}
	http.Redirect(w, r, "/jobs", http.StatusSeeOther)
}
