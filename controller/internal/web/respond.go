package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gatehousehq/gatehouse/ui"
)

// APIError is the body of every JSON error:
// {"error":{"code":"not_found","message":"...","fields":{"username":"..."}}}.
type APIError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

type errorBody struct {
	Error APIError `json:"error"`
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"response could not be encoded"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, message string, fields map[string]string) {
	WriteJSON(w, status, errorBody{Error: APIError{Code: code, Message: message, Fields: fields}})
}

// WriteError writes a JSON error with the stable shape.
func WriteError(w http.ResponseWriter, status int, code, message string, fields map[string]string) {
	writeError(w, status, code, message, fields)
}

// fail answers an error in the route's kind: JSON for the API, a page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, k Kind, status int, code, message string) {
	if k == KindAPI {
		writeError(w, status, code, message, nil)
		return
	}
	s.renderError(w, r, status, http.StatusText(status), message)
}

// maxJSONBody bounds API request bodies.
const maxJSONBody = 64 << 10

// DecodeJSON reads r's JSON body into v, refusing unknown fields, trailing
// data, other content types and bodies over 64 KiB. On failure it has
// already written the error response and returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body must be at most %d bytes", maxJSONBody), nil)
			return false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "the body is not valid JSON for this endpoint: "+jsonProblem(err), nil)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must hold exactly one JSON object", nil)
		return false
	}
	return true
}

// jsonProblem describes a decoding error without echoing input values.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return fmt.Sprintf("field %q has the wrong type", ute.Field)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return "malformed"
}

// Flash stores a message shown once on the viewer's next page.
func (s *Server) Flash(r *http.Request, kind, message string) {
	s.sessions.Put(r.Context(), sessFlashK, kind)
	s.sessions.Put(r.Context(), sessFlash, message)
}

func (s *Server) popFlash(r *http.Request) *ui.Flash {
	rt, ok := r.Context().Value(routeKey{}).(*Route)
	if !ok || rt.NoSession {
		return nil
	}
	msg := s.sessions.PopString(r.Context(), sessFlash)
	kind := s.sessions.PopString(r.Context(), sessFlashK)
	if msg == "" {
		return nil
	}
	if kind != "error" {
		kind = "success"
	}
	return &ui.Flash{Kind: kind, Message: msg}
}

// nav lists the navigation links the viewer may follow, with active marked
// current, and the links of a menu gathered under it.
func (s *Server) nav(admin bool, active string) []ui.NavItem {
	s.mu.RLock()
	var routes []Route
	for _, rt := range s.routes {
		if rt.Nav != "" && (rt.Policy != PolicyAdmin || admin) {
			routes = append(routes, rt)
		}
	}
	s.mu.RUnlock()
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].NavOrder < routes[j].NavOrder })
	out := make([]ui.NavItem, 0, len(routes))
	menus := map[string]int{} // menu name → its index in out
	for _, rt := range routes {
		item := ui.NavItem{Label: rt.Nav, Path: strings.TrimSuffix(rt.Pattern, "{$}")}
		item.Current = item.Path == active
		if rt.NavMenu == "" {
			out = append(out, item)
			continue
		}
		i, ok := menus[rt.NavMenu]
		if !ok {
			i = len(out)
			menus[rt.NavMenu] = i
			out = append(out, ui.NavItem{Label: rt.NavMenu})
		}
		out[i].Items = append(out[i].Items, item)
		out[i].Current = out[i].Current || item.Current
	}
	return out
}

// hasGET reports whether a GET route with exactly this pattern exists.
func (s *Server) hasGET(pattern string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.gets[pattern]
	return ok
}

// Render writes a full page: the layout around the named template in ui/templates/pages.
// active is the navigation path to highlight.
func (s *Server) Render(w http.ResponseWriter, r *http.Request, status int, page, title, active string, data any) {
	s.render(w, r, status, page, title, active, data)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title, active string, data any) {
	p := ui.Page{Title: title, Active: active, Version: s.opts.Version, Data: data}
	if u, ok := CurrentUser(r); ok {
		p.Viewer = &ui.Viewer{Username: u.Username, Admin: u.IsAdmin()}
		p.Nav = s.nav(u.IsAdmin(), active)
	}
	p.Flash = s.popFlash(r)
	var buf strings.Builder
	if err := s.ui.Render(&buf, page, p); err != nil {
		s.log.Error("render page", "page", page, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, buf.String())
}

type errorPage struct {
	Heading string
	Message string
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	s.render(w, r, status, "error", heading, "", errorPage{Heading: heading, Message: message})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext returns next if it is a path on this site, else "/". It refuses
// scheme-relative ("//host") and backslash tricks that browsers treat as hosts.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" {
		return "/"
	}
	if u.Path == "/login" {
		return "/"
	}
	return next
}
