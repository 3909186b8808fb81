package proxyweb

import (
	"context"
	"net/http"

	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
)

// resource is one JSON CRUD collection of the proxy configuration: its
// service calls, how a row is shown, and the keys of the list and the item.
type resource[In, Row, View any] struct {
	list     func(ctx context.Context) ([]Row, error)
	get      func(ctx context.Context, id int) (Row, error)
	create   func(ctx context.Context, a proxyconf.Actor, in In) (Row, error)
	update   func(ctx context.Context, a proxyconf.Actor, id int, in In) (Row, error)
	remove   func(ctx context.Context, a proxyconf.Actor, id int) error
	view     func(Row) View
	plural   string // "upstreams"
	singular string // "upstream"

	// listAPI, when set, answers GET /api/v1/<plural> in place of list, for a
	// collection whose list takes filters.
	listAPI http.HandlerFunc
}

// routes returns the collection's API routes under /api/v1/<plural>:
// reading for any user, changing for admins.
func (res resource[In, Row, View]) routes(h *handler) []web.Route {
	api := func(method, pattern string, p web.Policy, f http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: f}
	}
	base := "/api/v1/" + res.plural
	list := res.listAPI
	if list == nil {
		list = func(w http.ResponseWriter, r *http.Request) {
			rows, err := res.list(r.Context())
			if err != nil {
				h.apiFail(w, r, err)
				return
			}
			out := make([]View, len(rows))
			for i, row := range rows {
				out[i] = res.view(row)
			}
			web.WriteJSON(w, http.StatusOK, map[string]any{res.plural: out})
		}
	}
	return []web.Route{
		api("GET", base, web.PolicyUser, list),
		api("POST", base, web.PolicyAdmin, func(w http.ResponseWriter, r *http.Request) {
			var in In
			if !web.DecodeJSON(w, r, &in) {
				return
			}
			row, err := res.create(r.Context(), h.actor(r), in)
			res.answer(h, w, r, http.StatusCreated, row, err)
		}),
		api("GET", base+"/{id}", web.PolicyUser, func(w http.ResponseWriter, r *http.Request) {
			id, ok := apiID(w, r, "id")
			if !ok {
				return
			}
			row, err := res.get(r.Context(), id)
			res.answer(h, w, r, http.StatusOK, row, err)
		}),
		api("PUT", base+"/{id}", web.PolicyAdmin, func(w http.ResponseWriter, r *http.Request) {
			id, ok := apiID(w, r, "id")
			if !ok {
				return
			}
			var in In
			if !web.DecodeJSON(w, r, &in) {
				return
			}
			row, err := res.update(r.Context(), h.actor(r), id, in)
			res.answer(h, w, r, http.StatusOK, row, err)
		}),
		api("DELETE", base+"/{id}", web.PolicyAdmin, func(w http.ResponseWriter, r *http.Request) {
			id, ok := apiID(w, r, "id")
			if !ok {
				return
			}
			if err := res.remove(r.Context(), h.actor(r), id); err != nil {
				h.apiFail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}),
	}
}

func (res resource[In, Row, View]) answer(h *handler, w http.ResponseWriter, r *http.Request, status int, row Row, err error) {
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, status, map[string]any{res.singular: res.view(row)})
}
