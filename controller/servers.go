package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/certs"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyweb"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/schema"
	"github.com/gatehousehq/gatehouse/ent/server"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// serversWeb serves the server pages and the /api/v1/servers endpoints.
type serversWeb struct {
	c *Controller
	w *web.Server
}

func (sv *serversWeb) register() error {
	page := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindPage, Handler: h}
	}
	api := func(method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: h}
	}
	list := page("GET", "/servers", web.PolicyUser, sv.listPage)
	list.Nav, list.NavOrder = "Servers", 20
	for _, r := range []web.Route{
		list,
		page("GET", "/servers/new", web.PolicyAdmin, sv.newPage),
		page("POST", "/servers", web.PolicyAdmin, sv.createPage),
		page("GET", "/servers/{id}", web.PolicyUser, sv.serverPage),
		page("POST", "/servers/{id}/token", web.PolicyAdmin, sv.tokenPage),
		page("POST", "/servers/{id}/delete", web.PolicyAdmin, sv.deletePage),
		page("GET", "/servers/{id}/settings", web.PolicyAdmin, sv.settingsPage),
		page("POST", "/servers/{id}/settings", web.PolicyAdmin, sv.saveSettingsPage),

		api("GET", "/api/v1/servers", web.PolicyUser, sv.apiList),
		api("POST", "/api/v1/servers", web.PolicyAdmin, sv.apiCreate),
		api("GET", "/api/v1/servers/{id}", web.PolicyUser, sv.apiGet),
		api("PATCH", "/api/v1/servers/{id}", web.PolicyAdmin, sv.apiUpdate),
		api("DELETE", "/api/v1/servers/{id}", web.PolicyAdmin, sv.apiDelete),
		api("POST", "/api/v1/servers/{id}/token", web.PolicyAdmin, sv.apiToken),
		api("GET", "/api/v1/servers/{id}/metrics", web.PolicyUser, sv.apiMetrics),
		api("GET", "/api/v1/servers/{id}/latest", web.PolicyUser, sv.apiLatest),
		api("GET", "/api/v1/servers/{id}/glances/{plugin}", web.PolicyUser, sv.apiGlances),
		page("GET", "/servers/{id}/logs", web.PolicyAdmin, sv.logsPage),
		api("GET", "/api/v1/servers/{id}/logs/{log}", web.PolicyAdmin, sv.apiLog),
	} {
		if err := sv.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// serverJSON is a server as the API shows it.
type serverJSON struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Status  string   `json:"status"`
	Local   bool     `json:"local"`
	Labels  []string `json:"labels"`
	// RealIPFrom are the trusted proxies in front of the node's nginx, whose
	// RealIPHeader carries the client address; empty when clients connect
	// directly.
	RealIPFrom   []string `json:"real_ip_from"`
	RealIPHeader string   `json:"real_ip_header,omitempty"`
	// UnknownNames is how its nginx answers names none of its domains
	// serves: "" (nginx's default), "close" or "not_found".
	UnknownNames string `json:"unknown_names"`
	// CacheMaxSize bounds its cache of proxied answers ("" means 1g).
	CacheMaxSize  string           `json:"cache_max_size"`
	LastSeenAt    *time.Time       `json:"last_seen_at"`
	AgentVersion  string           `json:"agent_version"`
	Hostname      string           `json:"hostname"`
	OS            string           `json:"os"`
	Arch          string           `json:"arch"`
	Kernel        string           `json:"kernel"`
	MetricsSource string           `json:"metrics_source"`
	Addresses     []string         `json:"addresses"`
	CertNotAfter  *time.Time       `json:"cert_not_after"`
	Connected     bool             `json:"connected"`
	CreatedAt     time.Time        `json:"created_at"`
	Latest        *metrics.Summary `json:"latest,omitempty"`
	// Nginx is the node's nginx as its agent last reported it; null before.
	Nginx *schema.NginxNode `json:"nginx"`
}

func (sv *serversWeb) toJSON(s *ent.Server) serverJSON {
	labels, addrs, realIP := s.Labels, s.Addresses, s.RealIPFrom
	if labels == nil {
		labels = []string{}
	}
	if realIP == nil {
		realIP = []string{}
	}
	if addrs == nil {
		addrs = []string{}
	}
	return serverJSON{
		ID: s.ID, Name: s.Name, Address: s.Address, Status: string(s.Status), Local: s.Local, Labels: labels,
		RealIPFrom: realIP, RealIPHeader: s.RealIPHeader, UnknownNames: s.UnknownNames, CacheMaxSize: s.CacheMaxSize,
		LastSeenAt: s.LastSeenAt, AgentVersion: s.AgentVersion, Hostname: s.Hostname, OS: s.Os, Arch: s.Arch,
		Kernel: s.Kernel, MetricsSource: s.MetricsSource, Addresses: addrs, CertNotAfter: s.CertNotAfter,
		Connected: sv.c.hub.Connected(strconv.Itoa(s.ID)), CreatedAt: s.CreatedAt, Nginx: s.NginxNode,
	}
}

type enrollmentJSON struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Command   string    `json:"command"`
	CAPin     string    `json:"ca_pin"`
	Address   string    `json:"controller_address"`
}

func (sv *serversWeb) enroll(ctx context.Context, s *ent.Server) (*Enrollment, error) {
	return enrollment(ctx, sv.c.registry, s, sv.c.cfg, sv.c.ca.Pin())
}

// lookup finds the server named by the {id} path value.
func (sv *serversWeb) lookup(r *http.Request) (*ent.Server, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		return nil, errNoServer
	}
	s, err := sv.c.db.Client.Server.Get(r.Context(), id)
	if ent.IsNotFound(err) {
		return nil, errNoServer
	}
	return s, err
}

var errNoServer = errors.New("no such server")

func (sv *serversWeb) record(r *http.Request, action, target, detail string) {
	if err := sv.c.audit.Record(r.Context(), audit.For(sv.w.Actor(r), action, target, detail)); err != nil {
		sv.c.log.Error("audit", "action", action, "error", err)
	}
}

func (sv *serversWeb) create(r *http.Request, name string, settings ServerSettings) (*ent.Server, *Enrollment, error) {
	settings, err := settings.normalize()
	if err != nil {
		return nil, nil, err
	}
	if err := nodes.ValidName(name); err != nil {
		return nil, nil, err
	}
	address := ""
	if settings.Address != nil {
		address = *settings.Address
	}
	s, err := sv.c.registry.Create(r.Context(), name, address, false)
	if err != nil {
		return nil, nil, err
	}
	detail := "enrollment token issued"
	if settings.Labels != nil && len(*settings.Labels) > 0 {
		if s, err = sv.c.db.Client.Server.UpdateOne(s).SetLabels(*settings.Labels).Save(r.Context()); err != nil {
			return nil, nil, err
		}
		detail += "; labels " + strings.Join(s.Labels, ",")
	}
	if address != "" {
		detail += "; address " + address
	}
	e, err := sv.enroll(r.Context(), s)
	if err != nil {
		return nil, nil, err
	}
	sv.record(r, "server.create", "server:"+s.Name, detail)
	return s, e, nil
}

// update changes a server's address and labels.
func (sv *serversWeb) update(r *http.Request, s *ent.Server, in ServerSettings) (*ent.Server, error) {
	s, changed, nginx, err := applyServerSettings(r.Context(), sv.c.db.Client, s, in)
	if err != nil {
		return nil, err
	}
	if nginx && sv.c.deployer != nil {
		sv.c.deployer.Changed(s.ID)
	}
	if changed != "" {
		sv.record(r, "server.update", "server:"+s.Name, changed)
		sv.c.events.Publish(events.Event{Topic: "server." + strconv.Itoa(s.ID), Name: "server.settings", Data: map[string]any{"id": s.ID}})
	}
	return s, nil
}

func (sv *serversWeb) remove(r *http.Request, s *ent.Server) error {
	if err := sv.c.registry.Delete(r.Context(), s.ID); err != nil {
		return err
	}
	sv.c.writer.Forget(s.ID)
	sv.record(r, "server.delete", "server:"+s.Name, "certificates no longer accepted")
	sv.c.events.Publish(events.Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": s.ID, "status": "removed"}})
	return nil
}

// --- API ---

func (sv *serversWeb) apiList(w http.ResponseWriter, r *http.Request) {
	f, errs := parseServerFilter(r.URL.RawQuery)
	if len(errs) > 0 {
		web.WriteError(w, http.StatusBadRequest, "invalid", "the filter is not valid: "+errs.Error(), errs)
		return
	}
	list, _, err := sv.filtered(r.Context(), f)
	if err != nil {
		sv.c.log.Error("server list", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the server list could not be read", nil)
		return
	}
	ids := make([]int, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	sums, _ := sv.c.query.LatestSummaries(r.Context(), ids)
	out := make([]serverJSON, len(list))
	for i, s := range list {
		out[i] = sv.toJSON(s)
		if sum, ok := sums[s.ID]; ok {
			out[i].Latest = &sum
		}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"servers": out})
}

func (sv *serversWeb) apiCreate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		ServerSettings
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	s, e, err := sv.create(r, in.Name, in.ServerSettings)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusCreated, map[string]any{"server": sv.toJSON(s), "enrollment": sv.enrollmentJSON(e)})
}

func (sv *serversWeb) enrollmentJSON(e *Enrollment) enrollmentJSON {
	return enrollmentJSON{Token: e.Token, ExpiresAt: e.ExpiresAt, Command: e.Command, CAPin: sv.c.ca.Pin(), Address: sv.c.cfg.AgentAddress}
}

// apiUpdate changes a server's address and labels; absent fields are kept.
func (sv *serversWeb) apiUpdate(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	var in ServerSettings
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	if s, err = sv.update(r, s, in); err != nil {
		sv.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, sv.toJSON(s))
}

func (sv *serversWeb) apiFail(w http.ResponseWriter, err error) {
	var fe SettingsError
	switch {
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", "the server settings are not valid", fe)
	case errors.Is(err, errNoServer):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such server", nil)
	case errors.Is(err, nodes.ErrNameTaken):
		web.WriteError(w, http.StatusConflict, "conflict", "a server with this name exists", map[string]string{"name": "is taken"})
	case errors.Is(err, nodes.ErrInvalidName):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", "the server name is not valid", map[string]string{"name": err.Error()})
	default:
		sv.c.log.Error("servers api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the request could not be completed", nil)
	}
}

func (sv *serversWeb) apiGet(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	out := sv.toJSON(s)
	if sums, _ := sv.c.query.LatestSummaries(r.Context(), []int{s.ID}); len(sums) > 0 {
		sum := sums[s.ID]
		out.Latest = &sum
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (sv *serversWeb) apiDelete(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err == nil {
		err = sv.remove(r, s)
	}
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (sv *serversWeb) apiToken(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	e, err := sv.enroll(r.Context(), s)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	sv.record(r, "server.token", "server:"+s.Name, "enrollment token issued")
	web.WriteJSON(w, http.StatusCreated, map[string]any{"enrollment": sv.enrollmentJSON(e)})
}

// ranges are the chart spans the UI offers.
var ranges = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (sv *serversWeb) apiMetrics(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	rng := r.URL.Query().Get("range")
	if rng == "" {
		rng = "1h"
	}
	span, ok := ranges[rng]
	if !ok {
		web.WriteError(w, http.StatusBadRequest, "invalid", "range must be 1h, 24h, 7d or 30d", map[string]string{"range": "must be 1h, 24h, 7d or 30d"})
		return
	}
	series, err := sv.c.query.Series(r.Context(), s.ID, span, time.Now())
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, series)
}

func (sv *serversWeb) apiLatest(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	latest, err := sv.c.query.Latest(r.Context(), s.ID)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	if latest == nil {
		web.WriteError(w, http.StatusNotFound, "no_data", "this server has not reported metrics yet", nil)
		return
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(latest)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// apiGlances returns one Glances plugin's data, fetched through the agent.
func (sv *serversWeb) apiGlances(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	plugin := r.PathValue("plugin")
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	res, err := sv.c.hub.Send(ctx, strconv.Itoa(s.ID), &agentv1.Command{Kind: &agentv1.Command_FetchGlancesPlugin{FetchGlancesPlugin: &agentv1.FetchGlancesPlugin{Name: plugin}}})
	var cerr *hub.CommandError
	switch {
	case errors.Is(err, hub.ErrNotConnected):
		web.WriteError(w, http.StatusServiceUnavailable, "offline", "the server's agent is not connected", nil)
		return
	case errors.As(err, &cerr):
		web.WriteError(w, http.StatusBadGateway, "agent_error", "the agent could not fetch "+strconv.Quote(plugin)+": "+cerr.Error(), nil)
		return
	case err != nil:
		web.WriteError(w, http.StatusBadGateway, "agent_error", "the agent did not answer: "+err.Error(), nil)
		return
	}
	raw := res.GetGlancesPlugin().GetJson()
	if !json.Valid(raw) {
		web.WriteError(w, http.StatusBadGateway, "agent_error", "the agent returned data that is not JSON", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(raw)
}

// --- pages ---

type serverRow struct {
	*ent.Server
	Values web.TileValues
	Apply  proxyweb.ApplyState
	// Outdated says its agent runs another version than the controller.
	Outdated bool
}

// serverListData is what the server list page shows.
type serverListData struct {
	Servers []serverRow
	// Total counts every server the controller knows, before filtering.
	Total  int
	Filter serverFilter
	// Errors says, per query parameter, why the filter was refused; the
	// list is then left empty.
	Errors   SettingsError
	Statuses []string
}

// Count is the "N of M servers" line of a filtered list.
func (d serverListData) Count() string {
	noun := "servers"
	if d.Total == 1 {
		noun = "server"
	}
	return fmt.Sprintf("%d of %d %s", len(d.Servers), d.Total, noun)
}

func (sv *serversWeb) listPage(w http.ResponseWriter, r *http.Request) {
	f, errs := parseServerFilter(r.URL.RawQuery)
	d := serverListData{Filter: f, Statuses: serverStatuses}
	if len(errs) > 0 {
		d.Errors = errs
		sv.w.Render(w, r, http.StatusBadRequest, "servers", "Servers", "/servers", d)
		return
	}
	list, total, err := sv.filtered(r.Context(), f)
	if err != nil {
		sv.c.log.Error("server list", "error", err)
		http.Error(w, "the server list could not be read", http.StatusInternalServerError)
		return
	}
	ids := make([]int, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	vals := sv.c.tileValues(r.Context(), ids)
	states, err := proxyweb.ApplyStates(r.Context(), sv.c.db, list)
	if err != nil {
		sv.c.log.Error("nginx apply states for the server list", "error", err)
	}
	rows := make([]serverRow, len(list))
	for i, s := range list {
		rows[i] = serverRow{Server: s, Values: vals[s.ID], Apply: states[s.ID], Outdated: !s.Local && agentOutdated(s)}
	}
	d.Servers, d.Total = rows, total
	sv.w.Render(w, r, http.StatusOK, "servers", "Servers", "/servers", d)
}

// filtered reads the servers f keeps, in name order, and how many servers
// there are in all. Server counts are small, so the filter runs here rather
// than in SQL, the same on SQLite and PostgreSQL.
func (sv *serversWeb) filtered(ctx context.Context, f serverFilter) ([]*ent.Server, int, error) {
	all, err := sv.c.db.Client.Server.Query().Order(ent.Asc(server.FieldName)).All(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read the servers: %w", err)
	}
	if !f.Active() {
		return all, len(all), nil
	}
	kept := make([]*ent.Server, 0, len(all))
	for _, s := range all {
		if f.match(s) {
			kept = append(kept, s)
		}
	}
	return kept, len(all), nil
}

// --- list filters ---

// serverStatuses are the states a server can be in, in the order the list
// offers them.
var serverStatuses = []string{"pending", "online", "offline", "removed"}

// maxServerQuery bounds the search text of the server list, in characters.
const maxServerQuery = 100

// serverFilter narrows the server list. The page and the API read it from
// the same query parameters: q, a case-insensitive substring of a server's
// name, hostname, address or any address its agent reported; label, which
// may repeat, each a label the server must carry; and status. The zero
// value keeps every server.
type serverFilter struct {
	Q      string
	Labels []string
	Status string
}

// parseServerFilter reads a filter from a raw query string, by the rules of
// web.ListQuery. On error the filter still holds what was given, fit to
// show back, so the page can show it again.
func parseServerFilter(raw string) (serverFilter, SettingsError) {
	q := web.ParseListQuery(raw, "server list", "q", "label", "status")
	f := serverFilter{Q: q.Search("q", maxServerQuery), Status: q.Choice("status", "status", serverStatuses)}
	for _, l := range q.Values("label") {
		l = strings.TrimSpace(l)
		if !alerts.ValidLabel(l) {
			if _, seen := q.Errors["label"]; !seen {
				q.Errors["label"] = fmt.Sprintf("%q is not a label: each label is 1-63 letters, digits and . _ : / = -, starting with a letter or digit", web.EchoText(l, 40))
			}
			l = web.EchoText(l, 63)
		}
		if l != "" && !slices.Contains(f.Labels, l) {
			f.Labels = append(f.Labels, l)
		}
	}
	if len(f.Labels) > MaxServerLabels {
		q.Errors["label"] = fmt.Sprintf("at most %d labels; no server carries more", MaxServerLabels)
		f.Labels = f.Labels[:MaxServerLabels]
	}
	return f, SettingsError(q.Errors)
}

// Active reports whether f narrows the list at all.
func (f serverFilter) Active() bool { return f.Q != "" || f.Status != "" || len(f.Labels) > 0 }

// match reports whether s passes every part of f.
func (f serverFilter) match(s *ent.Server) bool {
	if f.Status != "" && string(s.Status) != f.Status {
		return false
	}
	for _, l := range f.Labels {
		if !slices.Contains(s.Labels, l) {
			return false
		}
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	for _, field := range append([]string{s.Name, s.Hostname, s.Address}, s.Addresses...) {
		if strings.Contains(strings.ToLower(field), q) {
			return true
		}
	}
	return false
}

// link is the list page filtered by f.
func (f serverFilter) link() string {
	v := url.Values{}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	for _, l := range f.Labels {
		v.Add("label", l)
	}
	if len(v) == 0 {
		return "/servers"
	}
	return "/servers?" + v.Encode()
}

// WithLabel links to the list filtered by f and by label l as well.
func (f serverFilter) WithLabel(l string) string {
	if !slices.Contains(f.Labels, l) {
		f.Labels = append(slices.Clip(f.Labels), l)
	}
	return f.link()
}

// WithoutLabel links to the list filtered by f without label l.
func (f serverFilter) WithoutLabel(l string) string {
	f.Labels = slices.DeleteFunc(slices.Clone(f.Labels), func(x string) bool { return x == l })
	return f.link()
}

type newServerData struct {
	Name       string
	Error      string
	Fields     SettingsError
	Settings   settingsForm
	Enrollment *Enrollment
	Server     *ent.Server
	Pin        string
	Address    string
}

func (sv *serversWeb) newPage(w http.ResponseWriter, r *http.Request) {
	sv.w.Render(w, r, http.StatusOK, "server_new", "Add server", "/servers", newServerData{Pin: sv.c.ca.Pin(), Address: sv.c.cfg.AgentAddress})
}

func (sv *serversWeb) createPage(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("name")
	form := settingsForm{Address: r.PostFormValue("address"), Labels: r.PostFormValue("labels")}
	s, e, err := sv.create(r, name, form.settings())
	d := newServerData{Name: name, Settings: form, Pin: sv.c.ca.Pin(), Address: sv.c.cfg.AgentAddress}
	if err != nil {
		var fe SettingsError
		switch {
		case errors.As(err, &fe):
			d.Fields = fe
		case errors.Is(err, nodes.ErrNameTaken):
			d.Error = "A server with this name exists already; choose another name."
		default:
			d.Error = err.Error()
		}
		sv.w.Render(w, r, http.StatusUnprocessableEntity, "server_new", "Add server", "/servers", d)
		return
	}
	d.Server, d.Enrollment = s, e
	sv.w.Render(w, r, http.StatusCreated, "server_new", "Add server", "/servers", d)
}

func (sv *serversWeb) tokenPage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	e, err := sv.enroll(r.Context(), s)
	if err != nil {
		http.Error(w, "an enrollment token could not be issued", http.StatusInternalServerError)
		return
	}
	sv.record(r, "server.token", "server:"+s.Name, "enrollment token issued")
	sv.w.Render(w, r, http.StatusOK, "server_new", "Install the agent", "/servers", newServerData{Server: s, Enrollment: e, Pin: sv.c.ca.Pin(), Address: sv.c.cfg.AgentAddress})
}

func (sv *serversWeb) deletePage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if err := sv.remove(r, s); err != nil {
		http.Error(w, "the server could not be removed", http.StatusInternalServerError)
		return
	}
	sv.w.Flash(r, "success", fmt.Sprintf("Server %s removed; its agent can no longer connect.", s.Name))
	http.Redirect(w, r, "/servers", http.StatusSeeOther)
}

type serverPageData struct {
	Server     *ent.Server
	Values     web.TileValues
	Range      string
	Ranges     []string
	Sample     *agentv1.MetricSample
	Interfaces []*agentv1.Interface
	Connected  bool
	CertDays   int
}

func (sv *serversWeb) serverPage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/servers", map[string]string{"Heading": "No such server", "Message": "It may have been removed."})
		return
	}
	rng := r.URL.Query().Get("range")
	if _, ok := ranges[rng]; !ok {
		rng = "1h"
	}
	d := serverPageData{Server: s, Range: rng, Ranges: []string{"1h", "24h", "7d", "30d"}, Connected: sv.c.hub.Connected(strconv.Itoa(s.ID))}
	d.Values = sv.c.tileValues(r.Context(), []int{s.ID})[s.ID]
	if latest, err := sv.c.query.Latest(r.Context(), s.ID); err == nil && latest != nil {
		d.Sample = latest
		d.Interfaces = append(d.Interfaces, latest.GetInterfaces()...)
		sort.Slice(d.Interfaces, func(i, j int) bool { return d.Interfaces[i].GetName() < d.Interfaces[j].GetName() })
	}
	if s.CertNotAfter != nil {
		d.CertDays = int(time.Until(*s.CertNotAfter).Hours() / 24)
	}
	sv.w.Render(w, r, http.StatusOK, "server", s.Name, "/servers", d)
}

// settingsForm is the settings form as typed. Name is empty on the
// add-server form, which has its own name field.
type settingsForm struct {
	Name    string
	Address string
	Labels  string
	// RealIPFrom is one address or network per line; nil on the add-server
	// form, which does not have it.
	RealIPFrom   *string
	RealIPHeader string
	// UnknownNames and CacheMaxSize are nil on the add-server form, which
	// does not have them.
	UnknownNames *string
	CacheMaxSize *string
}

// UnknownValue is the chosen answer to unknown names ("" when the form has
// none).
func (f settingsForm) UnknownValue() string {
	if f.UnknownNames == nil {
		return ""
	}
	return *f.UnknownNames
}

func (f settingsForm) settings() ServerSettings {
	labels := ParseLabels(f.Labels)
	s := ServerSettings{Address: &f.Address, Labels: &labels}
	if f.Name != "" {
		s.Name = &f.Name
	}
	if f.RealIPFrom != nil {
		from := strings.Fields(*f.RealIPFrom)
		s.RealIPFrom, s.RealIPHeader = &from, &f.RealIPHeader
	}
	s.UnknownNames, s.CacheMaxSize = f.UnknownNames, f.CacheMaxSize
	return s
}

type settingsPageData struct {
	Server *ent.Server
	Form   settingsForm
	Fields SettingsError
	// Headers are the client address headers to choose from.
	Headers []string
	// Unknown are the answers to unknown names to choose from.
	Unknown []struct{ Value, Label string }
	// Probe says where the controller dials the server's nginx, or why not.
	Probe string
}

func (sv *serversWeb) settingsPage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/servers", map[string]string{"Heading": "No such server", "Message": "It may have been removed."})
		return
	}
	from := strings.Join(s.RealIPFrom, "\n")
	unknown, cacheSize := s.UnknownNames, s.CacheMaxSize
	d := settingsPageData{Server: s, Form: settingsForm{Name: s.Name, Address: s.Address, Labels: strings.Join(s.Labels, ", "),
		RealIPFrom: &from, RealIPHeader: s.RealIPHeader, UnknownNames: &unknown, CacheMaxSize: &cacheSize}}
	sv.renderSettings(w, r, http.StatusOK, d)
}

func (sv *serversWeb) saveSettingsPage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	form := settingsForm{Name: r.PostFormValue("name"), Address: r.PostFormValue("address"), Labels: r.PostFormValue("labels"),
		RealIPHeader: r.PostFormValue("real_ip_header")}
	if _, sent := r.PostForm["real_ip_from"]; sent {
		from := r.PostFormValue("real_ip_from")
		form.RealIPFrom = &from
	}
	if _, sent := r.PostForm["unknown_names"]; sent {
		u := r.PostFormValue("unknown_names")
		form.UnknownNames = &u
	}
	if _, sent := r.PostForm["cache_max_size"]; sent {
		c := r.PostFormValue("cache_max_size")
		form.CacheMaxSize = &c
	}
	settings := form.settings()
	if _, sent := r.PostForm["name"]; sent && settings.Name == nil {
		empty := ""
		settings.Name = &empty // sent empty: refused, not taken as "keep"
	}
	saved, err := sv.update(r, s, settings)
	if err != nil {
		var fe SettingsError
		if !errors.As(err, &fe) {
			sv.c.log.Error("server settings", "server", s.Name, "error", err)
			fe = SettingsError{"address": "the settings could not be stored; try again"}
		}
		sv.renderSettings(w, r, http.StatusUnprocessableEntity, settingsPageData{Server: s, Form: form, Fields: fe})
		return
	}
	sv.w.Flash(r, "success", fmt.Sprintf("Settings of %s saved.", saved.Name))
	http.Redirect(w, r, "/servers/"+strconv.Itoa(saved.ID)+"/settings", http.StatusSeeOther)
}

func (sv *serversWeb) renderSettings(w http.ResponseWriter, r *http.Request, status int, d settingsPageData) {
	d.Headers = nginxconf.RealIPHeaders
	d.Unknown = UnknownNameChoices
	ep, err := sv.c.nodeEndpoint(r.Context(), d.Server)
	switch {
	case err == nil:
		d.Probe = "Health probes and the certificate watch reach its nginx at " + ep.Host + "."
	case errors.Is(err, certs.ErrEndpointUnknown):
		d.Probe = "Its agent has not reported where nginx listens yet; nothing is probed until it does."
	default:
		d.Probe = err.Error()
	}
	sv.w.Render(w, r, status, "server_settings", "Settings of "+d.Server.Name, "/servers", d)
}
