package proxyweb

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/ent"
)

// streamForm is the stream editor's content.
type streamForm struct {
	Name, ListenPort, Protocol, Upstream string
	Servers                              []int
}

// HasServer reports whether the server with id is ticked.
func (f streamForm) HasServer(id int) bool { return slices.Contains(f.Servers, id) }

func streamFormOf(s *ent.StreamProxy) streamForm {
	f := streamForm{Name: s.Name, ListenPort: itoa(s.ListenPort), Protocol: string(s.Protocol)}
	if s.Edges.Upstream != nil {
		f.Upstream = s.Edges.Upstream.Name
	}
	for _, sv := range s.Edges.Servers {
		f.Servers = append(f.Servers, sv.ID)
	}
	return f
}

func readStreamForm(v url.Values, errs Errors) (streamForm, proxyconf.StreamInput) {
	f := streamForm{Name: v.Get("name"), ListenPort: v.Get("listen_port"), Protocol: v.Get("protocol"), Upstream: v.Get("upstream")}
	for _, s := range v["servers"] {
		id, err := strconv.Atoi(s)
		if err != nil || id <= 0 {
			errs["servers"] = "pick servers from the list"
			continue
		}
		f.Servers = append(f.Servers, id)
	}
	in := proxyconf.StreamInput{Name: f.Name, Protocol: f.Protocol, Upstream: f.Upstream, Servers: f.Servers,
		ListenPort: intField(v, "listen_port", "listen_port", errs)}
	return f, in
}

func (h *handler) streamsPage(w http.ResponseWriter, r *http.Request) {
	list, err := h.proxy.Streams(r.Context())
	if err != nil {
		h.failed(w, r, "/streams", "stream list", err)
		return
	}
	h.w.Render(w, r, http.StatusOK, "proxy_streams", "Streams", "/streams", map[string]any{"Streams": list})
}

type streamPageData struct {
	ID        int
	Form      streamForm
	Errors    Errors
	Servers   []*ent.Server
	Upstreams []string
	Admin     bool
	Open      string
}

func (h *handler) renderStream(w http.ResponseWriter, r *http.Request, status int, d streamPageData) {
	servers, err := h.servers(r)
	if err != nil {
		h.failed(w, r, "/streams", "stream editor", err)
		return
	}
	ups, err := h.proxy.Upstreams(r.Context())
	if err != nil {
		h.failed(w, r, "/streams", "stream editor", err)
		return
	}
	d.Servers, d.Admin = servers, isAdmin(r)
	for _, u := range ups {
		d.Upstreams = append(d.Upstreams, u.Name)
	}
	if d.Form.Protocol == "" {
		d.Form.Protocol = "tcp"
	}
	title := "New stream"
	if d.ID != 0 {
		title = "Stream " + d.Form.Name
	}
	h.w.Render(w, r, status, "proxy_stream", title, "/streams", d)
}

func (h *handler) streamNewPage(w http.ResponseWriter, r *http.Request) {
	h.renderStream(w, r, http.StatusOK, streamPageData{})
}

func (h *handler) streamPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/streams")
		return
	}
	s, err := h.proxy.Stream(r.Context(), id)
	if err != nil {
		h.failed(w, r, "/streams", "stream", err)
		return
	}
	h.renderStream(w, r, http.StatusOK, streamPageData{ID: id, Form: streamFormOf(s), Open: dialogParam(r)})
}

func (h *handler) streamCreate(w http.ResponseWriter, r *http.Request) { h.streamSave(w, r, 0) }

func (h *handler) streamUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/streams")
		return
	}
	h.streamSave(w, r, id)
}

func (h *handler) streamSave(w http.ResponseWriter, r *http.Request, id int) {
	if !parseForm(w, r) {
		h.badForm(w, r, "/streams")
		return
	}
	errs := Errors{}
	f, in := readStreamForm(r.PostForm, errs)
	var s *ent.StreamProxy
	if len(errs) == 0 {
		var err error
		if id == 0 {
			s, err = h.proxy.CreateStream(r.Context(), h.actor(r), in)
		} else {
			s, err = h.proxy.UpdateStream(r.Context(), h.actor(r), id, in)
		}
		if fe, ok := fieldErrors(err); ok {
			errs = fe
		} else if err != nil {
			h.failed(w, r, "/streams", "saving of the stream", err)
			return
		}
	}
	if len(errs) > 0 {
		h.renderStream(w, r, http.StatusUnprocessableEntity, streamPageData{ID: id, Form: f, Errors: errs})
		return
	}
	h.w.Flash(r, "success", fmt.Sprintf("Stream %s saved.", s.Name))
	http.Redirect(w, r, "/streams", http.StatusSeeOther)
}

func (h *handler) streamDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		h.notFound(w, r, "/streams")
		return
	}
	s, err := h.proxy.Stream(r.Context(), id)
	if err == nil {
		err = h.proxy.DeleteStream(r.Context(), h.actor(r), id)
	}
	if err != nil {
		h.failed(w, r, "/streams", "removal of the stream", err)
		return
	}
	h.w.Flash(r, "success", fmt.Sprintf("Stream %s removed.", s.Name))
	http.Redirect(w, r, "/streams", http.StatusSeeOther)
}

// --- API ---

type streamJSON struct {
	ID int `json:"id"`
	proxyconf.StreamInput
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toStreamJSON(s *ent.StreamProxy) streamJSON {
	in := proxyconf.StreamInput{Name: s.Name, ListenPort: s.ListenPort, Protocol: string(s.Protocol), Servers: []int{}}
	if s.Edges.Upstream != nil {
		in.Upstream = s.Edges.Upstream.Name
	}
	for _, sv := range s.Edges.Servers {
		in.Servers = append(in.Servers, sv.ID)
	}
	return streamJSON{ID: s.ID, StreamInput: in, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}
