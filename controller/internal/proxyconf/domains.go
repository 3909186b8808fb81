package proxyconf

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/basicauthuser"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/route"
	"github.com/gatehousehq/gatehouse/ent/schema"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/upstream"
)

// RouteInput is one route of a domain. Which fields matter depends on Kind: proxy routes
// use Upstream (by name), WebSocket, PreserveHost, RewritePrefix and CacheTTL; redirects use
// RedirectCode and RedirectTarget; fixed responses use RespondStatus, RespondBody and
// ContentType.
type RouteInput struct {
	Match         string `json:"match"` // prefix (default) or exact
	Path          string `json:"path"`
	Kind          string `json:"kind"` // proxy, redirect or respond
	Upstream      string `json:"upstream"`
	WebSocket     bool   `json:"websocket"`
	PreserveHost  bool   `json:"preserve_host"`
	RewritePrefix string `json:"rewrite_prefix"`
	// CacheTTL keeps the upstream's answers in the node's cache for this
	// many seconds; 0 caches nothing.
	CacheTTL       int    `json:"cache_ttl"`
	RedirectCode   int    `json:"redirect_code"`
	RedirectTarget string `json:"redirect_target"`
	RespondStatus  int    `json:"respond_status"`
	RespondBody    string `json:"respond_body"`
	ContentType    string `json:"content_type"`
}

// HeaderInput is one response header.
type HeaderInput struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DomainInput is a domain as a form or API request gives it. Routes are kept in the given
// order; Servers are the ids of the servers that serve the domain.
type DomainInput struct {
	Name              string        `json:"name"`
	Aliases           []string      `json:"aliases"`
	ForceHTTPS        bool          `json:"force_https"`
	HSTS              bool          `json:"hsts"`
	HTTP2             bool          `json:"http2"`
	ClientMaxBodySize string        `json:"client_max_body_size"`
	Compress          bool          `json:"compress"`
	ResponseHeaders   []HeaderInput `json:"response_headers"`
	Allow             []string      `json:"allow"`
	Deny              []string      `json:"deny"`
	Maintenance       bool          `json:"maintenance"`
	// MaintenanceMessage is the text of the 503 during maintenance; empty
	// means a standard sentence.
	MaintenanceMessage string `json:"maintenance_message"`
	// RateLimit is requests per client address per RateUnit ("s", the
	// default, or "m"); 0 means no limit. RateBurst more may come at once.
	RateLimit int    `json:"rate_limit"`
	RateUnit  string `json:"rate_unit"`
	RateBurst int    `json:"rate_burst"`
	// RedirectAliases answers the aliases with a 301 to the primary name.
	RedirectAliases bool         `json:"redirect_aliases"`
	Snippet         string       `json:"snippet"`
	Servers         []int        `json:"servers"`
	Routes          []RouteInput `json:"routes"`
}

func (in DomainInput) conf() nginxconf.Domain {
	d := nginxconf.Domain{
		Name: in.Name, Aliases: in.Aliases, ForceHTTPS: in.ForceHTTPS, HSTS: in.HSTS, HTTP2: in.HTTP2,
		ClientMaxBodySize: in.ClientMaxBodySize, Compress: in.Compress, Allow: in.Allow, Deny: in.Deny, Maintenance: in.Maintenance,
		RedirectAliases: in.RedirectAliases, Snippet: in.Snippet, MaintenanceMessage: in.MaintenanceMessage,
	}
	if in.RateLimit != 0 || in.RateBurst != 0 {
		d.RateLimit = &nginxconf.RateLimit{Rate: in.RateLimit, Unit: nginxconf.RateUnit(in.RateUnit), Burst: in.RateBurst}
	}
	for _, h := range in.ResponseHeaders {
		d.ResponseHeaders = append(d.ResponseHeaders, nginxconf.Header{Name: h.Name, Value: h.Value})
	}
	for _, r := range in.Routes {
		d.Routes = append(d.Routes, nginxconf.Route{
			Match: nginxconf.MatchKind(r.Match), Path: r.Path, Kind: nginxconf.RouteKind(r.Kind),
			Upstream: r.Upstream, WebSocket: r.WebSocket, PreserveHost: r.PreserveHost, RewritePrefix: r.RewritePrefix, CacheTTL: r.CacheTTL,
			Code: r.RedirectCode, Target: r.RedirectTarget,
			Status: r.RespondStatus, Body: r.RespondBody, ContentType: r.ContentType,
		})
	}
	return d
}

// DomainConf converts a stored domain, loaded with its routes (each with its upstream) and
// basic-auth users, to nginxconf's form, without a certificate.
func DomainConf(d *ent.Domain) nginxconf.Domain {
	out := nginxconf.Domain{
		Name: d.Name, Aliases: d.Aliases, ForceHTTPS: d.ForceHTTPS, HSTS: d.Hsts, HTTP2: d.Http2,
		ClientMaxBodySize: d.ClientMaxBodySize, Compress: d.Compress, CacheGeneration: d.CacheGeneration, Allow: d.Allow, Deny: d.Deny, Maintenance: d.Maintenance,
		RedirectAliases: d.RedirectAliases, Snippet: d.Snippet, MaintenanceMessage: d.MaintenanceMessage,
	}
	if d.RateLimit > 0 {
		out.RateLimit = &nginxconf.RateLimit{Rate: d.RateLimit, Unit: nginxconf.RateUnit(d.RateUnit), Burst: d.RateBurst}
	}
	for _, h := range d.ResponseHeaders {
		out.ResponseHeaders = append(out.ResponseHeaders, nginxconf.Header{Name: h.Name, Value: h.Value})
	}
	for _, r := range d.Edges.Routes {
		nr := nginxconf.Route{
			Match: nginxconf.MatchKind(r.Match), Path: r.Path, Kind: nginxconf.RouteKind(r.Kind),
			WebSocket: r.Websocket, PreserveHost: r.PreserveHost, RewritePrefix: r.RewritePrefix, CacheTTL: r.CacheTTL,
			Code: r.RedirectCode, Target: r.RedirectTarget,
			Status: r.RespondStatus, Body: r.RespondBody, ContentType: r.ContentType,
		}
		if r.Edges.Upstream != nil {
			nr.Upstream = r.Edges.Upstream.Name
		}
		out.Routes = append(out.Routes, nr)
	}
	for _, u := range d.Edges.BasicAuthUsers {
		out.BasicAuthUsers = append(out.BasicAuthUsers, nginxconf.BasicAuthUser{User: u.Username, PasswordHash: u.PasswordHash})
	}
	return out
}

// WithRoutes loads a domain's routes in order, each with its upstream.
func WithRoutes(q *ent.RouteQuery) {
	q.Order(ent.Asc(route.FieldPosition), ent.Asc(route.FieldID)).WithUpstream()
}

// WithUsers loads a domain's basic-auth users by name.
func WithUsers(q *ent.BasicAuthUserQuery) {
	q.Order(ent.Asc(basicauthuser.FieldUsername))
}

// Domains lists every domain with its routes, users and servers, by name.
func (s *Service) Domains(ctx context.Context) ([]*ent.Domain, error) {
	return s.db.Client.Domain.Query().WithRoutes(WithRoutes).WithBasicAuthUsers(WithUsers).
		WithServers(func(q *ent.ServerQuery) { q.Order(ent.Asc(server.FieldName)) }).
		Order(ent.Asc(domain.FieldName)).All(ctx)
}

// Domain returns one domain with its routes, users and servers.
func (s *Service) Domain(ctx context.Context, id int) (*ent.Domain, error) {
	d, err := s.db.Client.Domain.Query().Where(domain.ID(id)).WithRoutes(WithRoutes).WithBasicAuthUsers(WithUsers).
		WithServers(func(q *ent.ServerQuery) { q.Order(ent.Asc(server.FieldName)) }).Only(ctx)
	if err != nil {
		return nil, notFound("domain", id, err)
	}
	return d, nil
}

// validatedDomain is a domain input after validation.
type validatedDomain struct {
	d         nginxconf.Domain
	servers   []int
	upstreams map[string]int // name -> id
}

func (s *Service) validateDomain(ctx context.Context, c *ent.Client, a Actor, id int, old *ent.Domain, in DomainInput) (*validatedDomain, error) {
	fe := nginxconf.FieldErrors{}
	d := in.conf()

	if !a.Admin {
		oldSnippet := ""
		if old != nil {
			oldSnippet = old.Snippet
		}
		if in.Snippet != oldSnippet {
			fe["snippet"] = "only an admin can set or change the snippet"
		}
	}

	var names []string
	for _, r := range in.Routes {
		if r.Kind == string(nginxconf.RouteProxy) && r.Upstream != "" && !slices.Contains(names, r.Upstream) {
			names = append(names, r.Upstream)
		}
	}
	ups, err := c.Upstream.Query().Where(upstream.NameIn(names...)).WithTargets(withTargets).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load upstreams: %w", err)
	}
	cfg := nginxconf.NodeConfig{Webroot: validationWebroot}
	upIDs := make(map[string]int, len(ups))
	for _, u := range ups {
		cfg.Upstreams = append(cfg.Upstreams, UpstreamConf(u))
		upIDs[u.Name] = u.ID
	}

	if s.cfg.Certificate != nil {
		if name, err := nginxconf.NormalizeDomainName(in.Name); err == nil {
			cert, err := s.cfg.Certificate(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("look up certificate for %s: %w", name, err)
			}
			d.Certificate = cert
		}
	}
	cfg.Domains = []nginxconf.Domain{d}
	norm, nfe := nginxconf.Normalize(cfg)
	subErrors(nfe, "domains[0].", fe)

	servers, err := checkServers(ctx, c, in.Servers, fe)
	if err != nil {
		return nil, err
	}
	if nfe == nil {
		d = norm.Domains[0]
		if err := checkNamesFree(ctx, c, id, d, fe); err != nil {
			return nil, err
		}
	}
	if err := result(fe); err != nil {
		return nil, err
	}
	d.Certificate = nil
	return &validatedDomain{d: d, servers: servers, upstreams: upIDs}, nil
}

// checkNamesFree reports names and aliases of d that another domain already uses: nginx
// picks one server block per name, so a second claim would be silently ignored.
func checkNamesFree(ctx context.Context, c *ent.Client, id int, d nginxconf.Domain, fe nginxconf.FieldErrors) error {
	others, err := c.Domain.Query().Where(domain.IDNEQ(id)).Select(domain.FieldName, domain.FieldAliases).All(ctx)
	if err != nil {
		return fmt.Errorf("check domain names: %w", err)
	}
	owner := make(map[string]string, len(others))
	for _, o := range others {
		owner[o.Name] = o.Name
		for _, al := range o.Aliases {
			owner[al] = o.Name
		}
	}
	if o, ok := owner[d.Name]; ok {
		fe["name"] = fmt.Sprintf("%q is already served by domain %s", d.Name, o)
	}
	for i, al := range d.Aliases {
		if o, ok := owner[al]; ok {
			fe[fmt.Sprintf("aliases[%d]", i)] = fmt.Sprintf("%q is already served by domain %s", al, o)
		}
	}
	return nil
}

func (s *Service) saveDomainChildren(ctx context.Context, tx *ent.Tx, id int, v *validatedDomain) error {
	if _, err := tx.Route.Delete().Where(route.DomainID(id)).Exec(ctx); err != nil {
		return fmt.Errorf("replace routes: %w", err)
	}
	builders := make([]*ent.RouteCreate, len(v.d.Routes))
	for i, r := range v.d.Routes {
		b := tx.Route.Create().SetDomainID(id).SetPosition(i).SetMatch(route.Match(r.Match)).SetPath(r.Path).
			SetKind(route.Kind(r.Kind)).SetWebsocket(r.WebSocket).SetPreserveHost(r.PreserveHost).
			SetRewritePrefix(r.RewritePrefix).SetCacheTTL(r.CacheTTL).SetRedirectCode(r.Code).SetRedirectTarget(r.Target).
			SetRespondStatus(r.Status).SetRespondBody(r.Body).SetContentType(r.ContentType)
		if r.Kind == nginxconf.RouteProxy {
			b.SetUpstreamID(v.upstreams[r.Upstream])
		}
		builders[i] = b
	}
	if err := tx.Route.CreateBulk(builders...).Exec(ctx); err != nil {
		return fmt.Errorf("store routes: %w", err)
	}
	return nil
}

func headers(in []nginxconf.Header) []schema.ResponseHeader {
	out := make([]schema.ResponseHeader, len(in))
	for i, h := range in {
		out[i] = schema.ResponseHeader{Name: h.Name, Value: h.Value}
	}
	return out
}

func domainDetail(v *validatedDomain) string {
	var b strings.Builder
	fmt.Fprintf(&b, "aliases=%s routes=%d servers=%v", strings.Join(v.d.Aliases, ","), len(v.d.Routes), v.servers)
	for _, f := range []struct {
		on   bool
		name string
	}{{v.d.ForceHTTPS, "force_https"}, {v.d.HSTS, "hsts"}, {v.d.HTTP2, "http2"}, {v.d.Compress, "compress"}, {v.d.Maintenance, "maintenance"}, {v.d.RedirectAliases, "redirect_aliases"}, {v.d.Snippet != "", "snippet"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if rl := v.d.RateLimit; rl != nil {
		fmt.Fprintf(&b, " rate_limit=%dr/%s burst=%d", rl.Rate, rl.Unit, rl.Burst)
	}
	if n := cachedRoutes(v.d.Routes); n > 0 {
		fmt.Fprintf(&b, " cached_routes=%d", n)
	}
	return b.String()
}

// cachedRoutes counts the routes that keep answers in the cache.
func cachedRoutes(routes []nginxconf.Route) int {
	n := 0
	for _, r := range routes {
		if r.CacheTTL > 0 {
			n++
		}
	}
	return n
}

// rateOf is a validated domain's rate limit as stored: zeros and "s" when
// it has none.
func rateOf(d nginxconf.Domain) nginxconf.RateLimit {
	if d.RateLimit == nil {
		return nginxconf.RateLimit{Unit: nginxconf.PerSecond}
	}
	return *d.RateLimit
}

// CreateDomain validates and stores a new domain with its routes and servers.
func (s *Service) CreateDomain(ctx context.Context, a Actor, in DomainInput) (*ent.Domain, error) {
	var id int
	var servers []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		v, err := s.validateDomain(ctx, tx.Client(), a, 0, nil, in)
		if err != nil {
			return audit.Entry{}, err
		}
		d, rl := v.d, rateOf(v.d)
		row, err := tx.Domain.Create().SetName(d.Name).SetAliases(d.Aliases).SetForceHTTPS(d.ForceHTTPS).
			SetHsts(d.HSTS).SetHttp2(d.HTTP2).SetClientMaxBodySize(d.ClientMaxBodySize).SetCompress(d.Compress).
			SetResponseHeaders(headers(d.ResponseHeaders)).SetAllow(d.Allow).SetDeny(d.Deny).
			SetMaintenance(d.Maintenance).SetMaintenanceMessage(d.MaintenanceMessage).SetRedirectAliases(d.RedirectAliases).SetSnippet(d.Snippet).
			SetRateLimit(rl.Rate).SetRateUnit(domain.RateUnit(rl.Unit)).SetRateBurst(rl.Burst).
			AddServerIDs(v.servers...).Save(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("%q is already served by another domain", d.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("store domain: %w", err)
		}
		id, servers = row.ID, v.servers
		if err := s.saveDomainChildren(ctx, tx, id, v); err != nil {
			return audit.Entry{}, err
		}
		return audit.For(a.Actor, "domain.create", "domain:"+d.Name, domainDetail(v)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(servers)
	return s.Domain(ctx, id)
}

// UpdateDomain validates in and replaces the domain's settings, routes and servers. Its
// basic-auth users are kept.
func (s *Service) UpdateDomain(ctx context.Context, a Actor, id int, in DomainInput) (*ent.Domain, error) {
	var affected []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		old, err := tx.Domain.Query().Where(domain.ID(id)).WithServers().WithBasicAuthUsers(WithUsers).Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("domain", id, err)
		}
		v, err := s.validateDomain(ctx, tx.Client(), a, id, old, in)
		if err != nil {
			return audit.Entry{}, err
		}
		d, rl := v.d, rateOf(v.d)
		err = tx.Domain.UpdateOneID(id).SetName(d.Name).SetAliases(d.Aliases).SetForceHTTPS(d.ForceHTTPS).
			SetHsts(d.HSTS).SetHttp2(d.HTTP2).SetClientMaxBodySize(d.ClientMaxBodySize).SetCompress(d.Compress).
			SetResponseHeaders(headers(d.ResponseHeaders)).SetAllow(d.Allow).SetDeny(d.Deny).
			SetMaintenance(d.Maintenance).SetMaintenanceMessage(d.MaintenanceMessage).SetRedirectAliases(d.RedirectAliases).SetSnippet(d.Snippet).
			SetRateLimit(rl.Rate).SetRateUnit(domain.RateUnit(rl.Unit)).SetRateBurst(rl.Burst).
			ClearServers().AddServerIDs(v.servers...).Exec(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("%q is already served by another domain", d.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("update domain: %w", err)
		}
		if err := s.saveDomainChildren(ctx, tx, id, v); err != nil {
			return audit.Entry{}, err
		}
		oldServers := make([]int, len(old.Edges.Servers))
		for i, sv := range old.Edges.Servers {
			oldServers[i] = sv.ID
		}
		affected = union(oldServers, v.servers)
		return audit.For(a.Actor, "domain.update", "domain:"+d.Name, domainDetail(v)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(affected)
	return s.Domain(ctx, id)
}

// PurgeDomainCache makes the nodes that serve the domain forget every answer
// its routes cached: the domain's cache generation, part of each cache key,
// counts up, and the next revision carries the new keys. The old entries are
// never served again and age out of the node's cache. A domain none of whose
// routes caches is refused with ErrNothingCached.
func (s *Service) PurgeDomainCache(ctx context.Context, a Actor, id int) (*ent.Domain, error) {
	var affected []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		d, err := tx.Domain.Query().Where(domain.ID(id)).WithServers().WithRoutes().Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("domain", id, err)
		}
		if !slices.ContainsFunc(d.Edges.Routes, func(r *ent.Route) bool { return r.CacheTTL > 0 }) {
			return audit.Entry{}, fmt.Errorf("domain %s: %w: none of its routes caches its answers", d.Name, ErrNothingCached)
		}
		gen := d.CacheGeneration + 1
		if err := tx.Domain.UpdateOneID(id).SetCacheGeneration(gen).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("purge cache: %w", err)
		}
		for _, sv := range d.Edges.Servers {
			affected = append(affected, sv.ID)
		}
		return audit.For(a.Actor, "domain.cache_purge", "domain:"+d.Name, fmt.Sprintf("generation=%d servers=%v", gen, affected)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(affected)
	return s.Domain(ctx, id)
}

// DeleteDomain removes a domain with its routes and users.
func (s *Service) DeleteDomain(ctx context.Context, a Actor, id int) error {
	var affected []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		d, err := tx.Domain.Query().Where(domain.ID(id)).WithServers().Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("domain", id, err)
		}
		for _, sv := range d.Edges.Servers {
			affected = append(affected, sv.ID)
		}
		if err := tx.Domain.DeleteOneID(id).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("delete domain: %w", err)
		}
		return audit.For(a.Actor, "domain.delete", "domain:"+d.Name, ""), nil
	})
	if err != nil {
		return err
	}
	s.notify(affected)
	return nil
}
