package proxyweb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/domain"
)

// Choices the route editor offers.
var (
	matchChoices = []struct{ Value, Label string }{{"prefix", "Prefix"}, {"exact", "Exact"}}
	kindChoices  = []struct{ Value, Label string }{{"proxy", "Proxy to upstream"}, {"redirect", "Redirect"}, {"respond", "Fixed response"}}
	codeChoices  = []string{"301", "302", "307", "308"}
)

type headerRow struct{ Name, Value string }

// routeRow is one route as the form holds it.
type routeRow struct {
	Match, Path, Kind, Upstream                 string
	WebSocket, PreserveHost                     bool
	RewritePrefix, RedirectCode, RedirectTarget string
	RespondStatus, RespondBody, ContentType     string
	CacheTTL                                    string // "10m", "1h"; empty caches nothing
}

// Blank reports a row nobody filled in (the editor's spare row for a new
// route); its match, kind and code selects always carry a value.
func (r routeRow) Blank() bool {
	r.Match, r.Kind, r.RedirectCode = "", "", ""
	return r == routeRow{}
}

// domainForm is the domain editor's content.
type domainForm struct {
	Name, Aliases, ClientMaxBodySize, Allow, Deny, Snippet string
	RateLimit, RateUnit, RateBurst, MaintenanceMessage     string
	ForceHTTPS, HSTS, HTTP2, Maintenance, RedirectAliases  bool
	Compress                                               bool
	Servers                                                []int
	Headers                                                []headerRow
	Routes                                                 []routeRow
}

// Caches reports whether a proxy route of the form keeps answers.
func (f domainForm) Caches() bool {
	return slices.ContainsFunc(f.Routes, func(r routeRow) bool { return r.Kind == "proxy" && r.CacheTTL != "" })
}

// HasServer reports whether the server with id is ticked.
func (f domainForm) HasServer(id int) bool { return slices.Contains(f.Servers, id) }

func domainFormOf(d *ent.Domain) domainForm {
	f := domainForm{
		Name: d.Name, Aliases: strings.Join(d.Aliases, "\n"), ClientMaxBodySize: d.ClientMaxBodySize,
		Allow: strings.Join(d.Allow, "\n"), Deny: strings.Join(d.Deny, "\n"), Snippet: d.Snippet,
		ForceHTTPS: d.ForceHTTPS, HSTS: d.Hsts, HTTP2: d.Http2, Maintenance: d.Maintenance, RedirectAliases: d.RedirectAliases,
		RateUnit: string(d.RateUnit), MaintenanceMessage: d.MaintenanceMessage, Compress: d.Compress,
	}
	if d.RateLimit > 0 {
		f.RateLimit, f.RateBurst = strconv.Itoa(d.RateLimit), strconv.Itoa(d.RateBurst)
	}
	for _, s := range d.Edges.Servers {
		f.Servers = append(f.Servers, s.ID)
	}
	for _, hd := range d.ResponseHeaders {
		f.Headers = append(f.Headers, headerRow{Name: hd.Name, Value: hd.Value})
	}
	for _, rt := range d.Edges.Routes {
		row := routeRow{
			Match: string(rt.Match), Path: rt.Path, Kind: string(rt.Kind), WebSocket: rt.Websocket, PreserveHost: rt.PreserveHost,
			RewritePrefix: rt.RewritePrefix, RedirectCode: itoa(rt.RedirectCode), RedirectTarget: rt.RedirectTarget,
			RespondStatus: itoa(rt.RespondStatus), RespondBody: rt.RespondBody, ContentType: rt.ContentType,
			CacheTTL: formatTTL(rt.CacheTTL),
		}
		if rt.Edges.Upstream != nil {
			row.Upstream = rt.Edges.Upstream.Name
		}
		f.Routes = append(f.Routes, row)
	}
	return f
}

// readDomainForm reads the posted editor as it was sent, blank rows included. Server ids
// that are not numbers are reported in errs.
func readDomainForm(v url.Values, errs Errors) domainForm {
	f := domainForm{
		Name: v.Get("name"), Aliases: v.Get("aliases"), ClientMaxBodySize: v.Get("client_max_body_size"),
		Allow: v.Get("allow"), Deny: v.Get("deny"), Snippet: v.Get("snippet"),
		ForceHTTPS: v.Get("force_https") != "", HSTS: v.Get("hsts") != "", HTTP2: v.Get("http2") != "", Maintenance: v.Get("maintenance") != "",
		RedirectAliases: v.Get("redirect_aliases") != "", Compress: v.Get("compress") != "",
		RateLimit: v.Get("rate_limit"), RateUnit: v.Get("rate_unit"), RateBurst: v.Get("rate_burst"),
		MaintenanceMessage: v.Get("maintenance_message"),
	}
	for _, s := range v["servers"] {
		id, err := strconv.Atoi(s)
		if err != nil || id <= 0 {
			errs["servers"] = "pick servers from the list"
			continue
		}
		f.Servers = append(f.Servers, id)
	}
	for i := range rowCount(v, "header_rows") {
		p := fmt.Sprintf("response_headers[%d].", i)
		f.Headers = append(f.Headers, headerRow{Name: v.Get(p + "name"), Value: v.Get(p + "value")})
	}
	for i := range rowCount(v, "route_rows") {
		p := fmt.Sprintf("routes[%d].", i)
		f.Routes = append(f.Routes, routeRow{
			Match: v.Get(p + "match"), Path: v.Get(p + "path"), Kind: v.Get(p + "kind"), Upstream: v.Get(p + "upstream"),
			WebSocket: v.Get(p+"websocket") != "", PreserveHost: v.Get(p+"preserve_host") != "",
			RewritePrefix: v.Get(p + "rewrite_prefix"), RedirectCode: v.Get(p + "redirect_code"), RedirectTarget: v.Get(p + "redirect_target"),
			RespondStatus: v.Get(p + "respond_status"), RespondBody: v.Get(p + "respond_body"), ContentType: v.Get(p + "content_type"),
			CacheTTL: v.Get(p + "cache_ttl"),
		})
	}
	return f
}

// input drops blank rows and converts the form to proxyconf's input.
func (f *domainForm) input(errs Errors) proxyconf.DomainInput {
	in := proxyconf.DomainInput{
		Name: f.Name, Aliases: splitList(f.Aliases), ForceHTTPS: f.ForceHTTPS, HSTS: f.HSTS, HTTP2: f.HTTP2,
		ClientMaxBodySize: strings.TrimSpace(f.ClientMaxBodySize), Allow: splitList(f.Allow), Deny: splitList(f.Deny),
		Maintenance: f.Maintenance, RedirectAliases: f.RedirectAliases, Snippet: f.Snippet, Servers: f.Servers,
		RateUnit: f.RateUnit, MaintenanceMessage: f.MaintenanceMessage, Compress: f.Compress,
	}
	rate := url.Values{"rate": {f.RateLimit}, "burst": {f.RateBurst}}
	in.RateLimit = intField(rate, "rate", "rate_limit", errs)
	in.RateBurst = intField(rate, "burst", "rate_burst", errs)
	var headers []headerRow
	for _, hd := range f.Headers {
		if hd != (headerRow{}) {
			headers = append(headers, hd)
			in.ResponseHeaders = append(in.ResponseHeaders, proxyconf.HeaderInput{Name: hd.Name, Value: hd.Value})
		}
	}
	f.Headers = headers
	var routes []routeRow
	for _, rt := range f.Routes {
		if rt.Blank() {
			continue
		}
		i := len(routes)
		routes = append(routes, rt)
		p := fmt.Sprintf("routes[%d].", i)
		nums := url.Values{"code": {rt.RedirectCode}, "status": {rt.RespondStatus}}
		ri := proxyconf.RouteInput{Match: rt.Match, Path: rt.Path, Kind: rt.Kind}
		switch rt.Kind {
		case "proxy":
			ri.Upstream, ri.WebSocket, ri.PreserveHost, ri.RewritePrefix = rt.Upstream, rt.WebSocket, rt.PreserveHost, rt.RewritePrefix
			ttl, err := parseTTL(rt.CacheTTL)
			if err != nil {
				errs[p+"cache_ttl"] = err.Error()
			}
			ri.CacheTTL = ttl
		case "redirect":
			ri.RedirectCode = intField(nums, "code", p+"redirect_code", errs)
			ri.RedirectTarget = rt.RedirectTarget
		case "respond":
			ri.RespondStatus = intField(nums, "status", p+"respond_status", errs)
			ri.RespondBody, ri.ContentType = rt.RespondBody, rt.ContentType
		}
		in.Routes = append(in.Routes, ri)
	}
	f.Routes = routes
	return in
}

// --- apply state ---

// ApplyState is where a server stands with its nginx configuration.
type ApplyState struct {
	Server           *ent.Server
	Desired, Applied int64
	Status, Outcome  string // of the desired revision; empty before the first
}

// InSync reports whether the server runs the revision it should.
func (a ApplyState) InSync() bool { return a.Desired > 0 && a.Desired == a.Applied }

// ApplyStates returns the state of each server, by server id (servers may
// repeat).
func ApplyStates(ctx context.Context, db *store.DB, servers []*ent.Server) (map[int]ApplyState, error) {
	revs, err := deploy.DesiredRevisions(ctx, db, servers)
	if err != nil {
		return nil, err
	}
	out := make(map[int]ApplyState, len(servers))
	for _, s := range servers {
		st := ApplyState{Server: s, Desired: s.DesiredRevision, Applied: s.AppliedRevision}
		if rev := revs[s.ID]; rev != nil {
			st.Status, st.Outcome = string(rev.Status), rev.Outcome
		}
		out[s.ID] = st
	}
	return out, nil
}

func (h *handler) applyStates(r *http.Request, servers []*ent.Server) (map[int]ApplyState, error) {
	return ApplyStates(r.Context(), h.db, servers)
}

// --- pages ---

type domainRow struct {
	*ent.Domain
	States []ApplyState
	Status DomainStatus
}

func (h *handler) domainsPage(w http.ResponseWriter, r *http.Request) {
	f, errs := parseDomainFilter(r.URL.RawQuery)
	d := domainListData{Filter: f, Healths: domainHealths}
	servers, err := h.servers(r)
	if err != nil {
		h.failed(w, r, "/domains", "domain list", err)
		return
	}
	for _, s := range servers {
		d.Servers = append(d.Servers, s.Name)
	}
	if f.Server != "" && errs["server"] == "" && !slices.Contains(d.Servers, f.Server) {
		d.Servers = append(d.Servers, f.Server) // keep the select showing the name asked for
	}
	if len(errs) > 0 {
		d.Errors = errs
		h.w.Render(w, r, http.StatusBadRequest, "proxy_domains", "Domains", "/domains", d)
		return
	}
	all, err := h.proxy.Domains(r.Context())
	if err != nil {
		h.failed(w, r, "/domains", "domain list", err)
		return
	}
	list, status := h.filterDomains(r.Context(), all, f, true)
	var onServers []*ent.Server
	for _, dom := range list {
		onServers = append(onServers, dom.Edges.Servers...)
	}
	states, err := h.applyStates(r, onServers)
	if err != nil {
		h.failed(w, r, "/domains", "domain list", err)
		return
	}
	rows := make([]domainRow, len(list))
	for i, dom := range list {
		rows[i] = domainRow{Domain: dom, Status: status[dom.ID]}
		for _, s := range dom.Edges.Servers {
			rows[i].States = append(rows[i].States, states[s.ID])
		}
	}
	d.Domains, d.Total = rows, len(all)
	h.w.Render(w, r, http.StatusOK, "proxy_domains", "Domains", "/domains", d)
}

// apiDomains lists the domains, narrowed by the same filters as the page.
func (h *handler) apiDomains(w http.ResponseWriter, r *http.Request) {
	f, errs := parseDomainFilter(r.URL.RawQuery)
	if len(errs) > 0 {
		web.WriteError(w, http.StatusBadRequest, "invalid", "the filter is not valid: "+errs.message(), errs)
		return
	}
	all, err := h.proxy.Domains(r.Context())
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	list, _ := h.filterDomains(r.Context(), all, f, false)
	out := make([]domainJSON, len(list))
	for i, d := range list {
		out[i] = toDomainJSON(d)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"domains": out})
}

// domainPageData is the editor page.
type domainPageData struct {
	ID        int // 0 for a new domain
	Form      domainForm
	Errors    Errors
	Servers   []*ent.Server
	Upstreams []string
	States    []ApplyState
	Users     []*ent.BasicAuthUser
	// UserErrors are the messages of the open basic-auth dialog; UserName what was typed.
	UserErrors Errors
	UserName   string
	Admin      bool
	Open       string
	Matches    any
	Kinds      any
	Codes      []string
}

func (h *handler) renderDomain(w http.ResponseWriter, r *http.Request, status int, d domainPageData) {
	servers, err := h.servers(r)
	if err != nil {
		h.failed(w, r, "/domains", "domain editor", err)
		return
	}
	ups, err := h.proxy.Upstreams(r.Context())
	if err != nil {
		h.failed(w, r, "/domains", "domain editor", err)
		return
	}
	d.Servers, d.Admin, d.Matches, d.Kinds, d.Codes = servers, isAdmin(r), matchChoices, kindChoices, codeChoices
	for _, u := range ups {
		d.Upstreams = append(d.Upstreams, u.Name)
	}
	if d.ID != 0 {
		dom, err := h.proxy.Domain(r.Context(), d.ID)
		if err != nil {
			h.failed(w, r, "/domains", "domain", err)
			return
		}
		d.Users = dom.Edges.BasicAuthUsers
		states, err := h.applyStates(r, dom.Edges.Servers)
		if err != nil {
			h.failed(w, r, "/domains", "domain", err)
			return
		}
		for _, s := range dom.Edges.Servers {
			d.States = append(d.States, states[s.ID])
		}
	}
	for i := range d.Form.Routes {
		if d.Form.Routes[i].Kind == "" {
			d.Form.Routes[i].Kind = "proxy"
		}
	}
	title := "New domain"
	if d.ID != 0 {
		title = d.Form.Name
	}
	h.w.Render(w, r, status, "proxy_domain", title, "/domains", d)
}

// pad gives the editor its blank rows.
func (f *domainForm) pad() {
	f.Headers = padRows(f.Headers, 1, 1)
	f.Routes = padRows(f.Routes, 1, 2)
}

// domainNewPage is the editor for a new domain: empty, or with ?from=ID a
// copy of that domain's settings, routes and servers under no name yet, so
// a site like another one takes a name and a click.
func (h *handler) domainNewPage(w http.ResponseWriter, r *http.Request) {
	var f domainForm
	if from := r.URL.Query().Get("from"); from != "" {
		id, err := strconv.Atoi(from)
		if err != nil || id <= 0 {
			h.notFound(w, r, "/domains")
			return
		}
		d, err := h.proxy.Domain(r.Context(), id)
		if err != nil {
			h.failed(w, r, "/domains", "domain", err)
			return
		}
		f = domainFormOf(d)
		f.Name, f.Aliases = "", ""
	}
	f.pad()
	h.renderDomain(w, r, http.StatusOK, domainPageData{Form: f})
}

// domainLookup sends ?name=<punycode name> to that domain's TLS page, where
// its certificate and DNS checks are: certificate and DNS incidents name
// their domain, not its id.
func (h *handler) domainLookup(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 253 {
		h.notFound(w, r, "/domains")
		return
	}
	id, err := h.db.Client.Domain.Query().Where(domain.Name(name)).OnlyID(r.Context())
	if err != nil {
		if !ent.IsNotFound(err) {
			h.failed(w, r, "/domains", "domain", err)
			return
		}
		h.notFound(w, r, "/domains")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/domains/%d/tls", id), http.StatusSeeOther)
}

func (h *handler) domainPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/domains")
		return
	}
	d, err := h.proxy.Domain(r.Context(), id)
	if err != nil {
		h.failed(w, r, "/domains", "domain", err)
		return
	}
	f := domainFormOf(d)
	if isAdmin(r) {
		f.pad()
	}
	h.renderDomain(w, r, http.StatusOK, domainPageData{ID: id, Form: f, Open: dialogParam(r)})
}

func (h *handler) domainCreate(w http.ResponseWriter, r *http.Request) { h.domainSave(w, r, 0) }

func (h *handler) domainUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/domains")
		return
	}
	h.domainSave(w, r, id)
}

func (h *handler) domainSave(w http.ResponseWriter, r *http.Request, id int) {
	if !parseForm(w, r) {
		h.badForm(w, r, "/domains")
		return
	}
	errs := Errors{}
	f := readDomainForm(r.PostForm, errs)
	if a := parseAction(r.PostForm); a.verb != "save" {
		switch a.list {
		case "routes":
			f.Routes = editRows(f.Routes, a)
		case "headers":
			f.Headers = editRows(f.Headers, a)
		}
		h.renderDomain(w, r, http.StatusOK, domainPageData{ID: id, Form: f})
		return
	}
	in := f.input(errs)
	var d *ent.Domain
	if len(errs) == 0 {
		var err error
		if id == 0 {
			d, err = h.proxy.CreateDomain(r.Context(), h.actor(r), in)
		} else {
			d, err = h.proxy.UpdateDomain(r.Context(), h.actor(r), id, in)
		}
		if fe, ok := fieldErrors(err); ok {
			errs = fe
		} else if err != nil {
			h.failed(w, r, "/domains", "saving of the domain", err)
			return
		}
	}
	if len(errs) > 0 {
		f.pad()
		h.renderDomain(w, r, http.StatusUnprocessableEntity, domainPageData{ID: id, Form: f, Errors: errs})
		return
	}
	verb := "created"
	if id != 0 {
		verb = "saved"
	}
	h.w.Flash(r, "success", fmt.Sprintf("Domain %s %s; its servers get the new configuration in a moment.", d.Name, verb))
	http.Redirect(w, r, fmt.Sprintf("/domains/%d", d.ID), http.StatusSeeOther)
}

func (h *handler) domainDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/domains")
		return
	}
	d, err := h.proxy.Domain(r.Context(), id)
	if err == nil {
		err = h.proxy.DeleteDomain(r.Context(), h.actor(r), id)
	}
	if err != nil {
		h.failed(w, r, "/domains", "removal of the domain", err)
		return
	}
	h.w.Flash(r, "success", fmt.Sprintf("Domain %s removed.", d.Name))
	http.Redirect(w, r, "/domains", http.StatusSeeOther)
}

// domainCachePurge makes the domain's servers forget what its routes cached.
func (h *handler) domainCachePurge(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/domains")
		return
	}
	d, err := h.proxy.PurgeDomainCache(r.Context(), h.actor(r), id)
	switch {
	case errors.Is(err, proxyconf.ErrNothingCached):
		h.w.Flash(r, "error", "None of this domain's routes caches its answers, so there is nothing to purge.")
	case err != nil:
		h.failed(w, r, "/domains", "purge of the cache", err)
		return
	default:
		h.w.Flash(r, "success", fmt.Sprintf("Cache of %s purged: its servers stop serving what they kept once they have the new configuration, in a moment.", d.Name))
	}
	http.Redirect(w, r, fmt.Sprintf("/domains/%d", id), http.StatusSeeOther)
}

func (h *handler) apiDomainCachePurge(w http.ResponseWriter, r *http.Request) {
	id, ok := apiID(w, r, "id")
	if !ok {
		return
	}
	d, err := h.proxy.PurgeDomainCache(r.Context(), h.actor(r), id)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"domain": toDomainJSON(d), "cache_generation": d.CacheGeneration})
}

// --- basic-auth users ---

// authUser loads the basic-auth user {uid} of domain {id}, refusing one of another domain.
func (h *handler) authUser(r *http.Request) (int, *ent.BasicAuthUser, error) {
	id, ok1 := pathInt(r, "id")
	uid, ok2 := pathInt(r, "uid")
	if !ok1 || !ok2 {
		return 0, nil, proxyconf.ErrNotFound
	}
	u, err := h.db.Client.BasicAuthUser.Get(r.Context(), uid)
	if ent.IsNotFound(err) || (err == nil && u.DomainID != id) {
		return 0, nil, proxyconf.ErrNotFound
	}
	return id, u, err
}

// authUserDone re-renders the domain page after a basic-auth change: with the dialog open
// and its messages on a validation error, else as a redirect with a flash.
func (h *handler) authUserDone(w http.ResponseWriter, r *http.Request, id int, dialog, typed, success string, err error) {
	if fe, ok := fieldErrors(err); ok {
		d, derr := h.proxy.Domain(r.Context(), id)
		if derr != nil {
			h.failed(w, r, "/domains", "domain", derr)
			return
		}
		f := domainFormOf(d)
		f.pad()
		h.renderDomain(w, r, http.StatusUnprocessableEntity, domainPageData{ID: id, Form: f, Open: dialog, UserErrors: fe, UserName: typed})
		return
	}
	if err != nil {
		h.failed(w, r, "/domains", "change of the basic-auth user", err)
		return
	}
	h.w.Flash(r, "success", success)
	http.Redirect(w, r, fmt.Sprintf("/domains/%d#users", id), http.StatusSeeOther)
}

func (h *handler) authUserCreate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/domains")
		return
	}
	if !parseForm(w, r) {
		h.badForm(w, r, "/domains")
		return
	}
	name := r.PostForm.Get("username")
	_, err := h.proxy.AddBasicAuthUser(r.Context(), h.actor(r), id, name, r.PostForm.Get("password"))
	typed := name
	if fe, ok := fieldErrors(err); ok && fe["username"] != "" {
		typed = "" // do not reflect what cannot be a user name
	}
	h.authUserDone(w, r, id, "add-user", typed, fmt.Sprintf("User %s can now sign in to this domain.", name), err)
}

func (h *handler) authUserPassword(w http.ResponseWriter, r *http.Request) {
	id, u, err := h.authUser(r)
	if err != nil {
		h.failed(w, r, "/domains", "basic-auth user", err)
		return
	}
	if !parseForm(w, r) {
		h.badForm(w, r, "/domains")
		return
	}
	err = h.proxy.SetBasicAuthPassword(r.Context(), h.actor(r), u.ID, r.PostForm.Get("password"))
	h.authUserDone(w, r, id, fmt.Sprintf("password-%d", u.ID), "", fmt.Sprintf("Password of %s changed.", u.Username), err)
}

func (h *handler) authUserDelete(w http.ResponseWriter, r *http.Request) {
	id, u, err := h.authUser(r)
	if err != nil {
		h.failed(w, r, "/domains", "basic-auth user", err)
		return
	}
	err = h.proxy.DeleteBasicAuthUser(r.Context(), h.actor(r), u.ID)
	h.authUserDone(w, r, id, "", "", fmt.Sprintf("User %s removed.", u.Username), err)
}

// --- API ---

type authUserJSON struct {
	ID        int       `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// domainJSON is a domain as the API shows it: the input shape (so it can be sent back
// with PUT once id, users and times are dropped) plus its basic-auth users, whose
// password hashes are never included.
type domainJSON struct {
	ID int `json:"id"`
	proxyconf.DomainInput
	BasicAuthUsers []authUserJSON `json:"basic_auth_users"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

func toAuthUserJSON(u *ent.BasicAuthUser) authUserJSON {
	return authUserJSON{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func toDomainJSON(d *ent.Domain) domainJSON {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	in := proxyconf.DomainInput{
		Name: d.Name, Aliases: nz(d.Aliases), ForceHTTPS: d.ForceHTTPS, HSTS: d.Hsts, HTTP2: d.Http2,
		ClientMaxBodySize: d.ClientMaxBodySize, ResponseHeaders: []proxyconf.HeaderInput{}, Allow: nz(d.Allow), Deny: nz(d.Deny),
		Maintenance: d.Maintenance, RedirectAliases: d.RedirectAliases, Snippet: d.Snippet, Servers: []int{}, Routes: []proxyconf.RouteInput{},
		Compress:  d.Compress,
		RateLimit: d.RateLimit, RateUnit: string(d.RateUnit), RateBurst: d.RateBurst, MaintenanceMessage: d.MaintenanceMessage,
	}
	for _, hd := range d.ResponseHeaders {
		in.ResponseHeaders = append(in.ResponseHeaders, proxyconf.HeaderInput{Name: hd.Name, Value: hd.Value})
	}
	for _, s := range d.Edges.Servers {
		in.Servers = append(in.Servers, s.ID)
	}
	for _, rt := range d.Edges.Routes {
		ri := proxyconf.RouteInput{
			Match: string(rt.Match), Path: rt.Path, Kind: string(rt.Kind), WebSocket: rt.Websocket, PreserveHost: rt.PreserveHost,
			RewritePrefix: rt.RewritePrefix, RedirectCode: rt.RedirectCode, RedirectTarget: rt.RedirectTarget,
			RespondStatus: rt.RespondStatus, RespondBody: rt.RespondBody, ContentType: rt.ContentType, CacheTTL: rt.CacheTTL,
		}
		if rt.Edges.Upstream != nil {
			ri.Upstream = rt.Edges.Upstream.Name
		}
		in.Routes = append(in.Routes, ri)
	}
	out := domainJSON{ID: d.ID, DomainInput: in, BasicAuthUsers: []authUserJSON{}, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	for _, u := range d.Edges.BasicAuthUsers {
		out.BasicAuthUsers = append(out.BasicAuthUsers, toAuthUserJSON(u))
	}
	return out
}

func (h *handler) apiAuthUserCreate(w http.ResponseWriter, r *http.Request) {
	id, ok := apiID(w, r, "id")
	if !ok {
		return
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	u, err := h.proxy.AddBasicAuthUser(r.Context(), h.actor(r), id, in.Username, in.Password)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusCreated, map[string]any{"user": toAuthUserJSON(u)})
}

func (h *handler) apiAuthUserPassword(w http.ResponseWriter, r *http.Request) {
	_, u, err := h.authUser(r)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	var in struct {
		Password string `json:"password"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	if err := h.proxy.SetBasicAuthPassword(r.Context(), h.actor(r), u.ID, in.Password); err != nil {
		h.apiFail(w, r, err)
		return
	}
	u, err = h.db.Client.BasicAuthUser.Get(r.Context(), u.ID)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"user": toAuthUserJSON(u)})
}

func (h *handler) apiAuthUserDelete(w http.ResponseWriter, r *http.Request) {
	_, u, err := h.authUser(r)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	if err := h.proxy.DeleteBasicAuthUser(r.Context(), h.actor(r), u.ID); err != nil {
		h.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
