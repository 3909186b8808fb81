// Package proxyweb serves the reverse-proxy configuration in the web UI and the JSON API:
// upstreams, domains with their routes and basic-auth users, TCP/UDP streams, and each
// server's nginx revisions with their apply outcomes, diffs and drift.
//
// Every page works without JavaScript: editors are plain forms with a fixed number of
// empty rows, and "add row", "move up" and "remove" buttons post the form back to be
// rendered again without saving. Validation problems from proxyconf are shown beside the
// matching field and the form keeps what the person typed. Anyone signed in may read;
// only admins may change anything, so every POST, PUT and DELETE route is PolicyAdmin.
package proxyweb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// Deps are what the pages and API need.
type Deps struct {
	Proxy  *proxyconf.Service
	Deploy *deploy.Deployer
	DB     *store.DB
	Log    hclog.Logger
	// Status, optional, gives the DNS and certificate state the domain list shows.
	Status func(ctx context.Context, domainIDs []int) map[int]DomainStatus
	// TargetHealth, optional, says what the nodes found when they last
	// dialled upstream servers, by address ("host:port", "[v6]:port").
	TargetHealth func(addresses []string) map[string][]TargetState
}

// TargetState is what one node found when it dialled an upstream server.
type TargetState struct {
	ServerID  int       `json:"server_id"`
	Server    string    `json:"server"`
	OK        bool      `json:"ok"`
	LatencyMS int       `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}

// DomainStatus is a domain's DNS, certificate and health state, in words,
// with a class for the badge: "ok", "warn" or "bad".
type DomainStatus struct {
	DNS, DNSClass       string
	Cert, CertClass     string
	Health, HealthClass string
	// HealthState is the health summary the list filters by: "up", "down"
	// (on any of the domain's servers) or "maintenance"; "" while unchecked.
	HealthState string
	// Uptime is the share of health probes up over the last 7 days ("" without probes).
	Uptime string
}

// handler holds the dependencies of every route.
type handler struct {
	w     *web.Server
	proxy *proxyconf.Service
	dep   *deploy.Deployer
	db    *store.DB
	audit *audit.Recorder
	log   hclog.Logger

	status       func(ctx context.Context, domainIDs []int) map[int]DomainStatus
	targetHealth func(addresses []string) map[string][]TargetState
}

// Register adds the proxy configuration pages and API to w.
func Register(w *web.Server, d Deps) error {
	switch {
	case w == nil:
		return errors.New("proxyweb: web server is required")
	case d.Proxy == nil:
		return errors.New("proxyweb: Proxy is required")
	case d.Deploy == nil:
		return errors.New("proxyweb: Deploy is required")
	case d.DB == nil:
		return errors.New("proxyweb: DB is required")
	case d.Log == nil:
		return errors.New("proxyweb: Log is required")
	}
	log := d.Log.Named("proxyweb")
	h := &handler{w: w, proxy: d.Proxy, dep: d.Deploy, db: d.DB, audit: audit.New(d.DB.Client, log), log: log, status: d.Status, targetHealth: d.TargetHealth}
	for _, rt := range h.routes() {
		if err := w.Register(rt); err != nil {
			return fmt.Errorf("proxyweb: %w", err)
		}
	}
	return nil
}

// routes is this package's part of the route table. Reading is open to every signed-in
// user (PolicyUser); every change, and every action that talks to an agent, needs an
// admin (PolicyAdmin).
func (h *handler) routes() []web.Route {
	page := func(method, pattern string, p web.Policy, fn http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindPage, Handler: fn}
	}
	api := func(method, pattern string, p web.Policy, fn http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: web.KindAPI, Handler: fn}
	}
	nav := func(r web.Route, label string, order int) web.Route { r.Nav, r.NavOrder = label, order; return r }
	const user, admin = web.PolicyUser, web.PolicyAdmin
	routes := []web.Route{
		// Domains.
		nav(page("GET", "/domains", user, h.domainsPage), "Domains", 22),
		page("GET", "/domains/new", admin, h.domainNewPage),
		page("POST", "/domains", admin, h.domainCreate),
		page("GET", "/domains/{id}", user, h.domainPage),
		page("GET", "/domains/lookup", user, h.domainLookup),
		page("POST", "/domains/{id}", admin, h.domainUpdate),
		page("POST", "/domains/{id}/delete", admin, h.domainDelete),
		page("POST", "/domains/{id}/cache/purge", admin, h.domainCachePurge),
		page("POST", "/domains/{id}/users", admin, h.authUserCreate),
		page("POST", "/domains/{id}/users/{uid}/password", admin, h.authUserPassword),
		page("POST", "/domains/{id}/users/{uid}/delete", admin, h.authUserDelete),

		// Upstreams.
		nav(page("GET", "/upstreams", user, h.upstreamsPage), "Upstreams", 24),
		page("GET", "/upstreams/new", admin, h.upstreamNewPage),
		page("GET", "/upstreams/lookup", user, h.upstreamLookup),
		page("POST", "/upstreams", admin, h.upstreamCreate),
		page("GET", "/upstreams/{id}", user, h.upstreamPage),
		page("POST", "/upstreams/{id}", admin, h.upstreamUpdate),
		page("POST", "/upstreams/{id}/delete", admin, h.upstreamDelete),
		api("GET", "/api/v1/upstreams/{id}/health", user, h.apiUpstreamHealth),

		// Streams.
		nav(page("GET", "/streams", user, h.streamsPage), "Streams", 26),
		page("GET", "/streams/new", admin, h.streamNewPage),
		page("POST", "/streams", admin, h.streamCreate),
		page("GET", "/streams/{id}", user, h.streamPage),
		page("POST", "/streams/{id}", admin, h.streamUpdate),
		page("POST", "/streams/{id}/delete", admin, h.streamDelete),

		// Revisions of one server.
		page("GET", "/servers/{id}/revisions", user, h.revisionsPage),
		page("GET", "/servers/{id}/revisions/{n}", user, h.revisionPage),
		page("POST", "/servers/{id}/deploy", admin, h.deployPage),
		page("POST", "/servers/{id}/drift", admin, h.driftPage),

		// JSON API.

		api("POST", "/api/v1/domains/{id}/cache/purge", admin, h.apiDomainCachePurge),
		api("POST", "/api/v1/domains/{id}/users", admin, h.apiAuthUserCreate),
		api("PUT", "/api/v1/domains/{id}/users/{uid}", admin, h.apiAuthUserPassword),
		api("DELETE", "/api/v1/domains/{id}/users/{uid}", admin, h.apiAuthUserDelete),

		api("GET", "/api/v1/servers/{id}/revisions", user, h.apiRevisions),
		api("GET", "/api/v1/servers/{id}/revisions/{n}", user, h.apiRevision),
		api("GET", "/api/v1/servers/{id}/revisions/{n}/diff", user, h.apiRevisionDiff),
		api("POST", "/api/v1/servers/{id}/deploy", admin, h.apiDeploy),
		api("POST", "/api/v1/servers/{id}/drift", admin, h.apiDrift),
	}
	routes = append(routes, resource[proxyconf.UpstreamInput, *ent.Upstream, upstreamJSON]{
		list: h.proxy.Upstreams, get: h.proxy.Upstream, create: h.proxy.CreateUpstream, update: h.proxy.UpdateUpstream,
		remove: h.proxy.DeleteUpstream, view: toUpstreamJSON, plural: "upstreams", singular: "upstream",
	}.routes(h)...)
	routes = append(routes, resource[proxyconf.DomainInput, *ent.Domain, domainJSON]{
		listAPI: h.apiDomains, get: h.proxy.Domain, create: h.proxy.CreateDomain, update: h.proxy.UpdateDomain,
		remove: h.proxy.DeleteDomain, view: toDomainJSON, plural: "domains", singular: "domain",
	}.routes(h)...)
	routes = append(routes, resource[proxyconf.StreamInput, *ent.StreamProxy, streamJSON]{
		list: h.proxy.Streams, get: h.proxy.Stream, create: h.proxy.CreateStream, update: h.proxy.UpdateStream,
		remove: h.proxy.DeleteStream, view: toStreamJSON, plural: "streams", singular: "stream",
	}.routes(h)...)
	return routes
}

// actor is who makes a change through r, for proxyconf.
func (h *handler) actor(r *http.Request) proxyconf.Actor {
	u, _ := web.CurrentUser(r)
	return proxyconf.Actor{Actor: h.w.Actor(r), Admin: u.IsAdmin()}
}

func isAdmin(r *http.Request) bool {
	u, ok := web.CurrentUser(r)
	return ok && u.IsAdmin()
}

// record writes an audit entry for an action proxyconf does not record itself.
func (h *handler) record(r *http.Request, action, target, detail string) {
	if err := h.audit.Record(r.Context(), audit.For(h.w.Actor(r), action, target, detail)); err != nil {
		h.log.Error("audit", "action", action, "error", err)
	}
}

// pathInt reads a positive integer path value.
func pathInt(r *http.Request, name string) (int, bool) {
	s := r.PathValue(name)
	if len(s) > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && strconv.Itoa(n) == s
}

// errNoServer means the {id} of a server route names no server.
var errNoServer = errors.New("no such server")

// server loads the server named by the {id} path value.
func (h *handler) server(r *http.Request) (*ent.Server, error) {
	id, ok := pathInt(r, "id")
	if !ok {
		return nil, errNoServer
	}
	s, err := h.db.Client.Server.Get(r.Context(), id)
	if ent.IsNotFound(err) || (err == nil && s.Status == server.StatusRemoved) {
		return nil, errNoServer
	}
	return s, err
}

// servers lists the servers a domain or stream can be placed on, by name.
func (h *handler) servers(r *http.Request) ([]*ent.Server, error) {
	return h.db.Client.Server.Query().Where(server.StatusNEQ(server.StatusRemoved)).Order(ent.Asc(server.FieldName)).All(r.Context())
}

// --- JSON errors ---

// apiFail maps a service error to the API's error shape.
func (h *handler) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	var fe nginxconf.FieldErrors
	switch {
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", "some fields are invalid; see fields", fe)
	case errors.Is(err, proxyconf.ErrNotFound), errors.Is(err, errNoServer), ent.IsNotFound(err):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such item", nil)
	case errors.Is(err, proxyconf.ErrInUse):
		web.WriteError(w, http.StatusConflict, "in_use", err.Error(), nil)
	case errors.Is(err, proxyconf.ErrNothingCached):
		web.WriteError(w, http.StatusConflict, "nothing_cached", err.Error(), nil)
	case errors.Is(err, deploy.ErrOffline):
		web.WriteError(w, http.StatusConflict, "offline", "the server's agent is not connected; the revision is applied when it reconnects", nil)
	default:
		h.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "something went wrong on our side; try again", nil)
	}
}

// apiID reads the {id} path value or answers 404.
func apiID(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	id, ok := pathInt(r, name)
	if !ok {
		web.WriteError(w, http.StatusNotFound, "not_found", "no such item", nil)
	}
	return id, ok
}

// --- page errors ---

type errorData struct{ Heading, Message string }

func (h *handler) notFound(w http.ResponseWriter, r *http.Request, active string) {
	h.w.Render(w, r, http.StatusNotFound, "error", "Not found", active, errorData{"Not found", "There is nothing here. It may have been removed."})
}

func (h *handler) failed(w http.ResponseWriter, r *http.Request, active, what string, err error) {
	if errors.Is(err, proxyconf.ErrNotFound) || errors.Is(err, errNoServer) || ent.IsNotFound(err) {
		h.notFound(w, r, active)
		return
	}
	h.log.Error(what, "path", r.URL.Path, "error", err)
	h.w.Render(w, r, http.StatusInternalServerError, "error", "Something went wrong", active,
		errorData{"Something went wrong", "The " + what + " failed because of a problem on our side. Try again in a moment."})
}

// maxFormBody bounds form posts: a domain with many routes is the largest.
const maxFormBody = 256 << 10

func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	return r.ParseForm() == nil
}

func (h *handler) badForm(w http.ResponseWriter, r *http.Request, active string) {
	h.w.Render(w, r, http.StatusBadRequest, "error", "Bad request", active,
		errorData{"Bad request", "The form could not be read. Reload the page and try again."})
}

// dialogParam reads ?dialog=, which opens a dialog without JavaScript; templates only
// compare it with their dialog ids.
func dialogParam(r *http.Request) string {
	d := r.URL.Query().Get("dialog")
	if len(d) > 40 {
		return ""
	}
	return d
}
