package proxyweb

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/upstream"
)

// Methods are the balancing methods the editor offers, in the order shown.
var methods = []struct{ Value, Label string }{
	{"round_robin", "Round robin"},
	{"least_conn", "Least connections"},
	{"ip_hash", "Client IP hash"},
	{"hash", "Hash of a key"},
	{"random_two_least_conn", "Random, two choices, least connections"},
}

// targetRow is one target as the form holds it: numbers stay text until saved.
type targetRow struct {
	Host, Port, Weight, MaxFails, FailTimeout string
	Backup, Down                              bool
}

func (t targetRow) empty() bool {
	return t == targetRow{}
}

// upstreamForm is the upstream editor's content.
type upstreamForm struct {
	Name, Method, HashKey                               string
	Consistent                                          bool
	Keepalive, ConnectTimeout, ReadTimeout, SendTimeout string
	Targets                                             []targetRow
}

func upstreamFormOf(u *ent.Upstream) upstreamForm {
	f := upstreamForm{
		Name: u.Name, Method: string(u.Method), HashKey: u.HashKey, Consistent: u.Consistent,
		Keepalive: itoa(u.Keepalive), ConnectTimeout: itoa(u.ConnectTimeout), ReadTimeout: itoa(u.ReadTimeout), SendTimeout: itoa(u.SendTimeout),
	}
	for _, t := range u.Edges.Targets {
		f.Targets = append(f.Targets, targetRow{Host: t.Host, Port: itoa(t.Port), Weight: itoa(t.Weight), MaxFails: itoa(t.MaxFails),
			FailTimeout: itoa(t.FailTimeout), Backup: t.Backup, Down: t.Down})
	}
	return f
}

// readUpstreamForm reads the posted editor as it was sent, blank rows included.
func readUpstreamForm(v url.Values) upstreamForm {
	f := upstreamForm{
		Name: v.Get("name"), Method: v.Get("method"), HashKey: v.Get("hash_key"), Consistent: v.Get("consistent") != "",
		Keepalive: v.Get("keepalive"), ConnectTimeout: v.Get("connect_timeout"), ReadTimeout: v.Get("read_timeout"), SendTimeout: v.Get("send_timeout"),
	}
	for i := range rowCount(v, "target_rows") {
		p := fmt.Sprintf("targets[%d].", i)
		f.Targets = append(f.Targets, targetRow{
			Host: v.Get(p + "host"), Port: v.Get(p + "port"), Weight: v.Get(p + "weight"), MaxFails: v.Get(p + "max_fails"),
			FailTimeout: v.Get(p + "fail_timeout"), Backup: v.Get(p+"backup") != "", Down: v.Get(p+"down") != "",
		})
	}
	return f
}

// input drops blank rows and converts the form to proxyconf's input; numbers that are
// not numbers are reported under their field keys.
func (f *upstreamForm) input() (proxyconf.UpstreamInput, Errors) {
	errs := Errors{}
	var rows []targetRow
	for _, t := range f.Targets {
		if !t.empty() {
			rows = append(rows, t)
		}
	}
	f.Targets = rows
	vals := url.Values{"keepalive": {f.Keepalive}, "connect_timeout": {f.ConnectTimeout}, "read_timeout": {f.ReadTimeout}, "send_timeout": {f.SendTimeout}}
	in := proxyconf.UpstreamInput{
		Name: f.Name, Method: f.Method, HashKey: f.HashKey, Consistent: f.Consistent,
		Keepalive:      intField(vals, "keepalive", "keepalive", errs),
		ConnectTimeout: intField(vals, "connect_timeout", "connect_timeout", errs),
		ReadTimeout:    intField(vals, "read_timeout", "read_timeout", errs),
		SendTimeout:    intField(vals, "send_timeout", "send_timeout", errs),
	}
	for i, t := range rows {
		p := fmt.Sprintf("targets[%d].", i)
		tv := url.Values{"port": {t.Port}, "weight": {t.Weight}, "max_fails": {t.MaxFails}, "fail_timeout": {t.FailTimeout}}
		in.Targets = append(in.Targets, proxyconf.TargetInput{
			Host: t.Host, Backup: t.Backup, Down: t.Down,
			Port:        intField(tv, "port", p+"port", errs),
			Weight:      intField(tv, "weight", p+"weight", errs),
			MaxFails:    intField(tv, "max_fails", p+"max_fails", errs),
			FailTimeout: intField(tv, "fail_timeout", p+"fail_timeout", errs),
		})
	}
	return in, errs
}

// --- pages ---

type upstreamRow struct {
	*ent.Upstream
	UsedBy []string
	// Reach sums up the nodes' newest probes of its servers: how many of
	// the probes succeeded and failed (both 0 when none was probed).
	ReachOK, ReachFailed, ReachTotal int
}

func (h *handler) upstreamsPage(w http.ResponseWriter, r *http.Request) {
	list, err := h.proxy.Upstreams(r.Context())
	if err != nil {
		h.failed(w, r, "/upstreams", "upstream list", err)
		return
	}
	used, err := h.upstreamUsers(r)
	if err != nil {
		h.failed(w, r, "/upstreams", "upstream list", err)
		return
	}
	rows := make([]upstreamRow, len(list))
	for i, u := range list {
		rows[i] = upstreamRow{Upstream: u, UsedBy: used[u.ID]}
		for _, t := range h.healthOf(u) {
			for _, st := range t.States {
				rows[i].ReachTotal++
				if st.OK {
					rows[i].ReachOK++
				} else {
					rows[i].ReachFailed++
				}
			}
		}
	}
	h.w.Render(w, r, http.StatusOK, "proxy_upstreams", "Upstreams", "/upstreams", map[string]any{"Upstreams": rows})
}

// upstreamUsers maps upstream ids to the domains and streams that use them.
func (h *handler) upstreamUsers(r *http.Request) (map[int][]string, error) {
	out := map[int][]string{}
	doms, err := h.proxy.Domains(r.Context())
	if err != nil {
		return nil, err
	}
	for _, d := range doms {
		seen := map[int]bool{}
		for _, rt := range d.Edges.Routes {
			if rt.UpstreamID != nil && !seen[*rt.UpstreamID] {
				seen[*rt.UpstreamID] = true
				out[*rt.UpstreamID] = append(out[*rt.UpstreamID], d.Name)
			}
		}
	}
	streams, err := h.proxy.Streams(r.Context())
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		out[s.UpstreamID] = append(out[s.UpstreamID], "stream "+s.Name)
	}
	return out, nil
}

// upstreamPageData is the editor page.
type upstreamPageData struct {
	ID      int // 0 for a new upstream
	Form    upstreamForm
	Errors  Errors
	Methods any
	Admin   bool
	Open    string
	Delete  string // why the last delete was refused
	Created *time.Time
	// Health is what the nodes found dialling each stored server, in the
	// upstream's order; nil when nothing reports probes.
	Health []targetHealth
}

// targetHealth is one upstream server and what the nodes that dialled it
// found.
type targetHealth struct {
	Address string
	States  []TargetState
}

func (h *handler) renderUpstream(w http.ResponseWriter, r *http.Request, status int, d upstreamPageData) {
	d.Methods, d.Admin = methods, isAdmin(r)
	if d.Form.Method == "" {
		d.Form.Method = "round_robin"
	}
	title := "New upstream"
	if d.ID != 0 {
		title = "Upstream " + d.Form.Name
	}
	h.w.Render(w, r, status, "proxy_upstream", title, "/upstreams", d)
}

func (h *handler) upstreamNewPage(w http.ResponseWriter, r *http.Request) {
	h.renderUpstream(w, r, http.StatusOK, upstreamPageData{Form: upstreamForm{Targets: padRows[targetRow](nil, 1, 2)}})
}

// upstreamLookup sends ?name=<upstream name> to that upstream's page, where
// incidents about its servers link to; anything else is not found.
func (h *handler) upstreamLookup(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 64 {
		h.notFound(w, r, "/upstreams")
		return
	}
	id, err := h.db.Client.Upstream.Query().Where(upstream.Name(name)).OnlyID(r.Context())
	if err != nil {
		if !ent.IsNotFound(err) {
			h.failed(w, r, "/upstreams", "upstream", err)
			return
		}
		h.notFound(w, r, "/upstreams")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/upstreams/%d", id), http.StatusSeeOther)
}

func (h *handler) upstreamPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/upstreams")
		return
	}
	u, err := h.proxy.Upstream(r.Context(), id)
	if err != nil {
		h.failed(w, r, "/upstreams", "upstream", err)
		return
	}
	f := upstreamFormOf(u)
	if isAdmin(r) {
		f.Targets = padRows(f.Targets, 1, 2)
	}
	h.renderUpstream(w, r, http.StatusOK, upstreamPageData{ID: id, Form: f, Open: dialogParam(r), Created: &u.CreatedAt, Health: h.healthOf(u)})
}

// healthOf is what the nodes found dialling u's servers (servers marked
// down are not dialled and not listed).
func (h *handler) healthOf(u *ent.Upstream) []targetHealth {
	if h.targetHealth == nil {
		return nil
	}
	var addrs []string
	for _, t := range u.Edges.Targets {
		if !t.Down {
			addrs = append(addrs, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
		}
	}
	states := h.targetHealth(addrs)
	out := make([]targetHealth, len(addrs))
	for i, a := range addrs {
		out[i] = targetHealth{Address: a, States: states[a]}
	}
	return out
}

// apiUpstreamHealth answers what the nodes found dialling the upstream's
// servers: {"targets": [{"address": "10.0.0.1:8080", "servers": [...]}]}.
func (h *handler) apiUpstreamHealth(w http.ResponseWriter, r *http.Request) {
	id, ok := apiID(w, r, "id")
	if !ok {
		return
	}
	u, err := h.proxy.Upstream(r.Context(), id)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	type target struct {
		Address string        `json:"address"`
		Servers []TargetState `json:"servers"`
	}
	out := []target{}
	for _, t := range h.healthOf(u) {
		if t.States == nil {
			t.States = []TargetState{}
		}
		out = append(out, target{Address: t.Address, Servers: t.States})
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"targets": out})
}

func (h *handler) upstreamCreate(w http.ResponseWriter, r *http.Request) { h.upstreamSave(w, r, 0) }

func (h *handler) upstreamUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/upstreams")
		return
	}
	h.upstreamSave(w, r, id)
}

func (h *handler) upstreamSave(w http.ResponseWriter, r *http.Request, id int) {
	if !parseForm(w, r) {
		h.badForm(w, r, "/upstreams")
		return
	}
	f := readUpstreamForm(r.PostForm)
	if a := parseAction(r.PostForm); a.verb != "save" {
		if a.list == "targets" {
			f.Targets = editRows(f.Targets, a)
		}
		h.renderUpstream(w, r, http.StatusOK, upstreamPageData{ID: id, Form: f})
		return
	}
	in, errs := f.input()
	var u *ent.Upstream
	var err error
	if len(errs) == 0 {
		if id == 0 {
			u, err = h.proxy.CreateUpstream(r.Context(), h.actor(r), in)
		} else {
			u, err = h.proxy.UpdateUpstream(r.Context(), h.actor(r), id, in)
		}
		if fe, ok := fieldErrors(err); ok {
			errs = fe
		} else if err != nil {
			h.failed(w, r, "/upstreams", "saving of the upstream", err)
			return
		}
	}
	if len(errs) > 0 {
		f.Targets = padRows(f.Targets, 1, 2)
		h.renderUpstream(w, r, http.StatusUnprocessableEntity, upstreamPageData{ID: id, Form: f, Errors: errs})
		return
	}
	verb := "created"
	if id != 0 {
		verb = "saved"
	}
	h.w.Flash(r, "success", fmt.Sprintf("Upstream %s %s.", u.Name, verb))
	http.Redirect(w, r, fmt.Sprintf("/upstreams/%d", u.ID), http.StatusSeeOther)
}

func (h *handler) upstreamDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/upstreams")
		return
	}
	u, err := h.proxy.Upstream(r.Context(), id)
	if err != nil {
		h.failed(w, r, "/upstreams", "upstream", err)
		return
	}
	err = h.proxy.DeleteUpstream(r.Context(), h.actor(r), id)
	if errors.Is(err, proxyconf.ErrInUse) {
		f := upstreamFormOf(u)
		f.Targets = padRows(f.Targets, 1, 2)
		h.renderUpstream(w, r, http.StatusConflict, upstreamPageData{ID: id, Form: f, Delete: inUseMessage(err), Created: &u.CreatedAt})
		return
	}
	if err != nil {
		h.failed(w, r, "/upstreams", "removal of the upstream", err)
		return
	}
	h.w.Flash(r, "success", fmt.Sprintf("Upstream %s removed.", u.Name))
	http.Redirect(w, r, "/upstreams", http.StatusSeeOther)
}

// inUseMessage turns proxyconf's in-use error into a sentence.
func inUseMessage(err error) string {
	msg := err.Error()
	if msg == "" {
		return msg
	}
	return "Not removed: " + msg + "."
}

// --- API ---

type upstreamJSON struct {
	ID int `json:"id"`
	proxyconf.UpstreamInput
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toUpstreamJSON(u *ent.Upstream) upstreamJSON {
	in := proxyconf.UpstreamInput{
		Name: u.Name, Method: string(u.Method), HashKey: u.HashKey, Consistent: u.Consistent, Keepalive: u.Keepalive,
		ConnectTimeout: u.ConnectTimeout, ReadTimeout: u.ReadTimeout, SendTimeout: u.SendTimeout, Targets: []proxyconf.TargetInput{},
	}
	for _, t := range u.Edges.Targets {
		in.Targets = append(in.Targets, proxyconf.TargetInput{Host: t.Host, Port: t.Port, Weight: t.Weight, MaxFails: t.MaxFails,
			FailTimeout: t.FailTimeout, Backup: t.Backup, Down: t.Down})
	}
	return upstreamJSON{ID: u.ID, UpstreamInput: in, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}
