package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
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
	ID                                               int
	Name, Kind, Metric, Mount, Op, Warning, Critical string
	Severity, Window, Repeat, Labels                 string
	// UptimeWarning and UptimeCritical are an uptime rule's levels (percent).
	UptimeWarning, UptimeCritical string
	// Servers and Channels are the checked ids as submitted.
	Servers, Channels []string
	Days              string
	Enabled           bool
	Errors            alerts.FieldErrors
	Explanation       string
	Kinds             []kindOption
	Metrics           []alerts.MetricInfo
	// ServerOptions and ChannelOptions are the checkboxes, with the
	// submitted ids checked.
	ServerOptions, ChannelOptions []scopeOption
	// LabelsInUse are the labels servers carry, with how many carry each.
	LabelsInUse []labelUse
	// KindsFor maps a group of fields to the kinds it applies to, space
	// separated, for the form's data-kinds attributes.
	KindsFor map[string]string
}

// labelUse is a server label and the number of servers with it.
type labelUse struct {
	Label   string
	Servers int
}

// kindOption is one entry of the rule type select.
type kindOption struct {
	Code, Label, Description string
	Selected                 bool
}

// scopeOption is one server or channel checkbox.
type scopeOption struct {
	ID         int
	Name, Note string
	Checked    bool
}

// kindsWhere lists the kinds a field group applies to, space separated.
func kindsWhere(applies func(alerts.Kind) bool) string {
	var out []string
	for _, k := range alerts.Kinds {
		if applies(k) {
			out = append(out, string(k))
		}
	}
	return strings.Join(out, " ")
}

var ruleFieldKinds = map[string]string{
	"metric":   kindsWhere(func(k alerts.Kind) bool { return k == alerts.KindMetric }),
	"days":     kindsWhere(alerts.Kind.HasDays),
	"uptime":   kindsWhere(func(k alerts.Kind) bool { return k == alerts.KindUptimeBelow }),
	"severity": kindsWhere(func(k alerts.Kind) bool { return k != alerts.KindMetric && k != alerts.KindUptimeBelow }),
	"window":   kindsWhere(alerts.Kind.HasWindow),
	"scope":    kindsWhere(func(k alerts.Kind) bool { return !k.PerMonitor() }),
}

func formOf(rule alerts.Rule) ruleForm {
	f := ruleForm{ID: rule.ID, Name: rule.Name, Kind: string(rule.Kind), Metric: string(rule.Metric), Mount: rule.Mount,
		Op: string(rule.Op), Severity: string(rule.Severity), Enabled: rule.Enabled,
		Labels: strings.Join(rule.Labels, ", "), Servers: intStrings(rule.ServerIDs), Channels: intStrings(rule.ChannelIDs)}
	if rule.Warning != nil {
		f.Warning = strconv.FormatFloat(*rule.Warning, 'f', -1, 64)
	}
	if rule.Critical != nil {
		f.Critical = strconv.FormatFloat(*rule.Critical, 'f', -1, 64)
	}
	if rule.Kind == alerts.KindUptimeBelow {
		f.UptimeWarning, f.UptimeCritical, f.Warning, f.Critical = f.Warning, f.Critical, "", ""
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

func intStrings(v []int) []string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return s
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
	levels := map[string]string{"warning": f.Warning, "critical": f.Critical}
	if rule.Kind == alerts.KindUptimeBelow {
		levels = map[string]string{"warning": f.UptimeWarning, "critical": f.UptimeCritical}
	}
	if rule.Kind == alerts.KindMetric || rule.Kind == alerts.KindUptimeBelow {
		if rule.Kind == alerts.KindMetric {
			rule.Metric, rule.Op = alerts.Metric(f.Metric), alerts.Op(f.Op)
			if rule.Metric == alerts.MetricFS {
				rule.Mount = strings.TrimSpace(f.Mount)
			}
		}
		for name, p := range map[string]**float64{"warning": &rule.Warning, "critical": &rule.Critical} {
			raw := strings.TrimSpace(levels[name])
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
	if rule.Kind.HasDays() {
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
	if !rule.Kind.HasWindow() {
		// The form always carries a window; only some kinds have one.
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
		name, what string
		raw        []string
		p          *[]int
	}{{"servers", "servers", f.Servers, &rule.ServerIDs}, {"channels", "channels", f.Channels, &rule.ChannelIDs}} {
		for _, s := range l.raw {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				errs[l.name] = "choose " + l.what + " from the list"
				break
			}
			if !slices.Contains(*l.p, n) {
				*l.p = append(*l.p, n)
			}
		}
	}
	if rule.Kind.PerMonitor() {
		// The form hides the scope for monitor rules: whatever it still
		// holds does not apply.
		rule.ServerIDs, rule.Labels = nil, nil
		delete(errs, "servers")
	}
	return rule, errs
}

// ruleScope is what the rule form offers to scope and notify: the servers
// and the notification channels, each ordered by name.
type ruleScope struct {
	servers  []*ent.Server
	channels []*ent.NotificationChannel
}

func (a *alertsWeb) ruleScope(ctx context.Context) (ruleScope, error) {
	servers, err := a.c.db.Client.Server.Query().Order(ent.Asc(server.FieldName)).All(ctx)
	if err != nil {
		return ruleScope{}, fmt.Errorf("read servers: %w", err)
	}
	channels, err := a.c.channels.List(ctx)
	if err != nil {
		return ruleScope{}, fmt.Errorf("read channels: %w", err)
	}
	return ruleScope{servers: servers, channels: channels}, nil
}

func (s ruleScope) server(id int) *ent.Server {
	for _, sv := range s.servers {
		if sv.ID == id {
			return sv
		}
	}
	return nil
}

func (s ruleScope) channel(id int) *ent.NotificationChannel {
	for _, ch := range s.channels {
		if ch.ID == id {
			return ch
		}
	}
	return nil
}

// check refuses servers that do not exist or were removed and channels that
// do not exist, adding field messages to errs.
func (s ruleScope) check(rule alerts.Rule, errs alerts.FieldErrors) {
	if errs["servers"] == "" {
		for _, id := range rule.ServerIDs {
			if sv := s.server(id); sv == nil {
				errs["servers"] = fmt.Sprintf("there is no server #%d; choose servers from the list", id)
				break
			} else if sv.Status == server.StatusRemoved {
				errs["servers"] = fmt.Sprintf("%s was removed; uncheck it", sv.Name)
				break
			}
		}
	}
	if errs["channels"] == "" {
		for _, id := range rule.ChannelIDs {
			if s.channel(id) == nil {
				errs["channels"] = fmt.Sprintf("there is no channel #%d; choose channels from the list", id)
				break
			}
		}
	}
}

// options fills the form's checkboxes. Removed servers are not offered; a
// submitted or stored id that is not offered any more shows checked with a
// note, so saving never widens the rule's scope silently.
func (s ruleScope) options(f *ruleForm) {
	chosen := func(raw []string) map[int]bool {
		out := map[int]bool{}
		for _, v := range raw {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				out[n] = true
			}
		}
		return out
	}
	servers, channels := chosen(f.Servers), chosen(f.Channels)
	f.ServerOptions, f.ChannelOptions, f.LabelsInUse = nil, nil, nil
	uses := map[string]int{}
	for _, sv := range s.servers {
		if sv.Status == server.StatusRemoved {
			continue
		}
		for _, l := range sv.Labels {
			uses[l]++
		}
		f.ServerOptions = append(f.ServerOptions, scopeOption{ID: sv.ID, Name: sv.Name, Note: string(sv.Status), Checked: servers[sv.ID]})
		delete(servers, sv.ID)
	}
	for _, l := range slices.Sorted(maps.Keys(uses)) {
		f.LabelsInUse = append(f.LabelsInUse, labelUse{Label: l, Servers: uses[l]})
	}
	for _, ch := range s.channels {
		note := string(ch.Kind)
		if !ch.Enabled {
			note += ", disabled"
		}
		f.ChannelOptions = append(f.ChannelOptions, scopeOption{ID: ch.ID, Name: ch.Name, Note: note, Checked: channels[ch.ID]})
		delete(channels, ch.ID)
	}
	for _, id := range slices.Sorted(maps.Keys(servers)) {
		o := scopeOption{ID: id, Name: "#" + strconv.Itoa(id), Note: "no longer exists; uncheck it to save", Checked: true}
		if sv := s.server(id); sv != nil {
			o.Name, o.Note = sv.Name, "removed; uncheck it to save"
		}
		f.ServerOptions = append(f.ServerOptions, o)
	}
	for _, id := range slices.Sorted(maps.Keys(channels)) {
		f.ChannelOptions = append(f.ChannelOptions, scopeOption{ID: id, Name: "#" + strconv.Itoa(id),
			Note: "no longer exists; uncheck it to save", Checked: true})
	}
}

func (a *alertsWeb) renderRule(w http.ResponseWriter, r *http.Request, status int, f ruleForm, scope ruleScope) {
	f.Metrics, f.KindsFor = alerts.MetricInfos, ruleFieldKinds
	f.Kinds = make([]kindOption, len(alerts.Kinds))
	for i, k := range alerts.Kinds {
		f.Kinds[i] = kindOption{Code: string(k), Label: k.Label(), Description: k.Description(), Selected: string(k) == f.Kind}
	}
	scope.options(&f)
	title := "New alert rule"
	if f.ID != 0 {
		title = "Edit alert rule"
	}
	if f.Explanation == "" && len(f.Errors) == 0 {
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
	scope, err := a.ruleScope(r.Context())
	if err != nil {
		a.pageFail(w, r, "/alerts/rules", err)
		return
	}
	a.renderRule(w, r, http.StatusOK, ruleForm{Kind: "metric", Metric: "cpu", Op: ">", Warning: "80", Critical: "95", Window: "5m", Severity: "critical",
		Days: strconv.Itoa(alerts.DefaultDays), Enabled: true}, scope)
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
	scope, err := a.ruleScope(r.Context())
	if err != nil {
		a.pageFail(w, r, "/alerts/rules", err)
		return
	}
	a.renderRule(w, r, http.StatusOK, formOf(rule), scope)
}

func (a *alertsWeb) ruleSavePage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	f := ruleForm{Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"), Metric: r.PostFormValue("metric"),
		Mount: r.PostFormValue("mount"), Op: r.PostFormValue("op"), Warning: r.PostFormValue("warning"),
		Critical: r.PostFormValue("critical"), Severity: r.PostFormValue("severity"), Window: r.PostFormValue("window"),
		UptimeWarning: r.PostFormValue("uptime_warning"), UptimeCritical: r.PostFormValue("uptime_critical"),
		Repeat: r.PostFormValue("repeat"), Days: r.PostFormValue("days"), Servers: r.PostForm["server_ids"], Labels: r.PostFormValue("labels"),
		Channels: r.PostForm["channel_ids"], Enabled: r.PostFormValue("enabled") == "on"}
	if r.PathValue("id") != "" {
		id, ok := pathInt(r, "id")
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.ID = id
	}
	scope, err := a.ruleScope(r.Context())
	if err != nil {
		a.pageFail(w, r, "/alerts/rules", err)
		return
	}
	rule, errs := f.parse()
	scope.check(rule, errs)
	if r.PostFormValue("preview") != "" {
		// "Explain": show the rule in words without saving it.
		if len(errs) == 0 {
			if err := rule.Validate(); err != nil && !errors.As(err, &errs) {
				errs = alerts.FieldErrors{}
			}
		}
		f.Errors = errs
		a.renderRule(w, r, http.StatusOK, f, scope)
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
	a.renderRule(w, r, http.StatusUnprocessableEntity, f, scope)
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

// channelForm is the new-channel form as typed, kept when it is refused.
// The secret is never sent back.
type channelForm struct {
	Name, Kind, ChatID, TopicID, URL, WebhookFormat                  string
	SMTPHost, SMTPPort, SMTPSecurity, SMTPUsername, MailFrom, MailTo string
	Silent, Enabled                                                  bool
	Errors                                                           alerts.FieldErrors
}

func channelFormOf(r *http.Request) channelForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return channelForm{Name: v("name"), Kind: v("kind"), ChatID: v("chat_id"), TopicID: v("topic_id"), URL: v("url"), WebhookFormat: v("webhook_format"),
		SMTPHost: v("smtp_host"), SMTPPort: v("smtp_port"), SMTPSecurity: v("smtp_security"), SMTPUsername: v("smtp_username"),
		MailFrom: v("mail_from"), MailTo: v("mail_to"), Silent: r.PostFormValue("silent") == "on", Enabled: r.PostFormValue("enabled") == "on"}
}

// channelFormView is the channel form with where it posts to.
type channelFormView struct {
	Form          channelForm
	Action, Title string
	Submit        string
	Editing       bool
}

// storedChannelForm is a stored channel as the form shows it (no secret).
func storedChannelForm(ch *ent.NotificationChannel) channelForm {
	f := channelForm{Name: ch.Name, Kind: string(ch.Kind), URL: ch.URL, WebhookFormat: ch.WebhookFormat,
		SMTPHost: ch.SMTPHost, SMTPSecurity: ch.SMTPSecurity, SMTPUsername: ch.SMTPUsername, MailFrom: ch.MailFrom,
		MailTo: strings.Join(ch.MailTo, "\n"), Silent: ch.Silent, Enabled: ch.Enabled}
	if ch.ChatID != 0 {
		f.ChatID = strconv.FormatInt(ch.ChatID, 10)
	}
	if ch.TopicID != 0 {
		f.TopicID = strconv.Itoa(ch.TopicID)
	}
	if ch.SMTPPort != 0 {
		f.SMTPPort = strconv.Itoa(ch.SMTPPort)
	}
	if f.SMTPSecurity == "" {
		f.SMTPSecurity = "starttls"
	}
	return f
}

func (a *alertsWeb) channelsPage(w http.ResponseWriter, r *http.Request) {
	a.renderChannels(w, r, http.StatusOK, channelForm{Kind: "telegram", SMTPSecurity: "starttls", Enabled: true})
}

// channelEditPage shows a stored channel's form.
func (a *alertsWeb) channelEditPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ch, err := a.c.db.Client.NotificationChannel.Get(r.Context(), id)
	if err != nil {
		a.pageFail(w, r, "/alerts/channels", notFoundOr(err))
		return
	}
	a.renderChannel(w, r, http.StatusOK, ch, storedChannelForm(ch))
}

func (a *alertsWeb) renderChannel(w http.ResponseWriter, r *http.Request, status int, ch *ent.NotificationChannel, form channelForm) {
	form.Kind = string(ch.Kind) // it cannot change
	view := channelFormView{Form: form, Action: "/alerts/channels/" + strconv.Itoa(ch.ID), Title: "Settings", Submit: "Save channel", Editing: true}
	a.w.Render(w, r, status, "alerts_channel", "Channel "+ch.Name, "/alerts", map[string]any{"Name": ch.Name, "FormView": view})
}

// notFoundOr turns ent's not-found into the alerts package's.
func notFoundOr(err error) error {
	if ent.IsNotFound(err) {
		return alerts.ErrNotFound
	}
	return err
}

func (a *alertsWeb) renderChannels(w http.ResponseWriter, r *http.Request, status int, form channelForm) {
	list, err := a.c.channels.List(r.Context())
	if err != nil {
		http.Error(w, "the channels could not be read", http.StatusInternalServerError)
		return
	}
	deliveries, _ := a.c.channels.Deliveries(r.Context(), 50)
	view := channelFormView{Form: form, Action: "/alerts/channels", Title: "New channel", Submit: "Add channel"}
	a.w.Render(w, r, status, "alerts_channels", "Notification channels", "/alerts",
		map[string]any{"Channels": list, "Deliveries": deliveries, "FormView": view})
}

func (a *alertsWeb) channelSavePage(w http.ResponseWriter, r *http.Request) {
	in := alerts.ChannelInput{Name: strings.TrimSpace(r.PostFormValue("name")), Kind: r.PostFormValue("kind"),
		Enabled: r.PostFormValue("enabled") == "on", Silent: r.PostFormValue("silent") == "on",
		URL: strings.TrimSpace(r.PostFormValue("url")), Secret: strings.TrimSpace(r.PostFormValue("secret")),
		WebhookFormat: strings.TrimSpace(r.PostFormValue("webhook_format")), SMTPHost: strings.TrimSpace(r.PostFormValue("smtp_host")),
		SMTPSecurity: r.PostFormValue("smtp_security"),
		SMTPUsername: strings.TrimSpace(r.PostFormValue("smtp_username")), MailFrom: strings.TrimSpace(r.PostFormValue("mail_from")),
		MailTo: splitAddresses(r.PostFormValue("mail_to"))}
	// The form hides the fields of the other types (they may still hold
	// what was typed before the type changed): only the chosen type's count.
	switch in.Kind {
	case "telegram":
		in.URL, in.WebhookFormat = "", ""
	case "webhook":
		in.Silent = false
	case "email":
		in.URL, in.WebhookFormat, in.Silent = "", "", false
	}
	if in.Kind != "email" {
		in.SMTPHost, in.SMTPSecurity, in.SMTPUsername, in.MailFrom, in.MailTo = "", "", "", "", nil
	}
	errs := alerts.FieldErrors{}
	if v := strings.TrimSpace(r.PostFormValue("smtp_port")); v != "" && in.Kind == "email" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs["smtp_port"] = "must be a port number such as 587"
		}
		in.SMTPPort = n
	}
	if v := strings.TrimSpace(r.PostFormValue("chat_id")); v != "" && in.Kind == "telegram" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs["chat_id"] = "must be a numeric chat id such as -1001234567890"
		}
		in.ChatID = n
	}
	if v := strings.TrimSpace(r.PostFormValue("topic_id")); v != "" && in.Kind == "telegram" {
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
	var fe alerts.FieldErrors
	if len(errs) == 0 {
		ch, err := a.c.channels.SaveChannel(r.Context(), in, a.w.Actor(r))
		if err == nil {
			a.w.Flash(r, "success", fmt.Sprintf("Channel %q saved.", ch.Name))
			http.Redirect(w, r, "/alerts/channels", http.StatusSeeOther)
			return
		}
		if !errors.As(err, &fe) {
			a.pageFail(w, r, "/alerts/channels", err)
			return
		}
		errs = fe
	}
	// A refused channel: the form again, as typed, with the messages beside
	// the fields.
	form := channelFormOf(r)
	form.Errors = errs
	if in.ID == 0 {
		a.renderChannels(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	ch, err := a.c.db.Client.NotificationChannel.Get(r.Context(), in.ID)
	if err != nil {
		a.pageFail(w, r, "/alerts/channels", notFoundOr(err))
		return
	}
	a.renderChannel(w, r, http.StatusUnprocessableEntity, ch, form)
}

// splitAddresses splits a list of email addresses typed one per line or
// separated by commas or semicolons.
func splitAddresses(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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
