// Package web is the controller's HTTP layer: one table of routes, each with
// a declared access policy, serving the server-rendered UI, the JSON API under
// /api/v1, the live event stream, and health checks. Browser sessions live in
// the database; API calls carry bearer tokens.
package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ui"
)

// Options are the dependencies of the web layer.
type Options struct {
	Log     hclog.Logger
	DB      *store.DB
	Box     *secrets.Box
	Config  config.Config
	Events  *events.Broker
	Users   *auth.Users
	Audit   *audit.Recorder
	Tokens  *auth.Tokens // optional; built from DB and Audit when nil
	Version string

	// Tiles, when set, returns the latest values of the dashboard's servers.
	Tiles func(ctx context.Context, serverIDs []int) map[int]TileValues
	// Attention, when set, lists what needs a look, for the dashboard's
	// summary: firing incidents, domains down, certificates running out.
	Attention func(ctx context.Context) []Attention

	// Now is the clock for page rendering; nil means time.Now.
	Now func() time.Time
	// SessionCleanup is how often expired sessions are deleted; 0 means 10
	// minutes, and a negative value leaves it to the caller (the controller's
	// scheduler runs it as a job).
	SessionCleanup time.Duration
	// Keepalive is the comment interval on event streams; 0 means 25 seconds.
	Keepalive time.Duration
	// AdminTopics are prefixes of event topics only admins may follow, such
	// as "provision." for provisioning logs. A stream that names no topic
	// follows every topic, so only admins may open one.
	AdminTopics []string
}

// Server is the HTTP layer. Create it with New, add routes with Register,
// serve Handler, and Close it when done.
type Server struct {
	opts     Options
	log      hclog.Logger
	db       *store.DB
	users    *auth.Users
	tokens   *auth.Tokens
	audit    *audit.Recorder
	events   *events.Broker
	streams  http.Handler
	sessions *scs.SessionManager
	store    *auth.SessionStore
	ui       *ui.Renderer
	now      func() time.Time

	mu      sync.RWMutex
	mux     *http.ServeMux
	routes  []Route
	gets    map[string]Policy // GET patterns, for building navigation
	secret  map[string]bool   // "METHOD pattern" of routes whose paths carry a secret
	cop     *http.CrossOriginProtection
	handler http.Handler

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Session cookie names; the __Host- prefix makes browsers insist on Secure,
// Path=/ and no Domain, so no other host can set or overwrite it.
const (
	cookieName       = "gatehouse_session"
	secureCookieName = "__Host-gatehouse_session"
)

// New builds the web layer with its built-in routes.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Log == nil:
		return nil, errors.New("web: Log is required")
	case opts.DB == nil:
		return nil, errors.New("web: DB is required")
	case opts.Users == nil:
		return nil, errors.New("web: Users is required")
	case opts.Audit == nil:
		return nil, errors.New("web: Audit is required")
	case opts.Events == nil:
		return nil, errors.New("web: Events is required")
	}
	log := opts.Log.Named("web")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionCleanup == 0 {
		opts.SessionCleanup = 10 * time.Minute
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = 25 * time.Second
	}
	if opts.Tokens == nil {
		opts.Tokens = auth.NewTokens(opts.DB.Client, opts.Audit, opts.Log, nil)
	}
	renderer, err := ui.New(opts.Now)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{
		opts: opts, log: log, db: opts.DB, users: opts.Users, tokens: opts.Tokens, audit: opts.Audit,
		events: opts.Events, ui: renderer, now: opts.Now,
		mux: http.NewServeMux(), gets: map[string]Policy{}, secret: map[string]bool{},
	}
	s.streams = opts.Events.Handler(opts.Keepalive)
	s.store = auth.NewSessionStore(opts.DB.Client, opts.Log)
	s.sessions = s.newSessionManager(opts.Config)

	cop := http.NewCrossOriginProtection()
	s.cop = cop
	if opts.Config.PublicURL != "" {
		u, err := url.Parse(opts.Config.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("web: public url %q is not an absolute URL", opts.Config.PublicURL)
		}
		if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web: trust public url origin: %w", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))
	s.handler = s.recoverPanics(s.securityHeaders(cop.Handler(http.HandlerFunc(s.serveMux))))

	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, r := range s.builtinRoutes() {
		if err := s.Register(r); err != nil {
			s.cancel()
			return nil, err
		}
	}

	if opts.SessionCleanup > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.store.RunCleanup(s.ctx, opts.SessionCleanup)
		}()
	}
	return s, nil
}

func (s *Server) newSessionManager(cfg config.Config) *scs.SessionManager {
	m := scs.New()
	m.Store = s.store
	m.HashTokenInStore = true
	m.Lifetime = cfg.SessionLifetime
	if m.Lifetime <= 0 {
		m.Lifetime = 12 * time.Hour
	}
	m.IdleTimeout = cfg.SessionIdle
	if m.IdleTimeout <= 0 {
		m.IdleTimeout = 2 * time.Hour
	}
	m.Cookie.Name = cookieName
	m.Cookie.HttpOnly = true
	m.Cookie.SameSite = http.SameSiteLaxMode
	m.Cookie.Path = "/"
	if cfg.Secure() {
		m.Cookie.Name = secureCookieName
		m.Cookie.Secure = true
	}
	m.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.log.Error("session", "error", err, "path", s.logPath(r))
		s.fail(w, r, KindOf(r), http.StatusInternalServerError, "internal", "the session could not be loaded; try again")
	}
	return m
}

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops background work and ends open event streams, so an
// http.Server's Shutdown is not held up by them. It does not close the
// database or the broker it was given.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) serveMux(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	mux := s.mux
	s.mu.RUnlock()
	mux.ServeHTTP(w, r)
}

// Routes returns every registered route, in registration order.
func (s *Server) Routes() []Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Route(nil), s.routes...)
}

// eventStream serves the broker's stream until the client leaves or the
// server closes. Non-admins must name their topics, and none of them may be
// an admin topic.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) {
	if u, _ := CurrentUser(r); !u.IsAdmin() {
		topics := r.URL.Query()["topic"]
		if len(topics) == 0 {
			writeError(w, http.StatusForbidden, "forbidden", "name the topics to follow with ?topic=; following every topic needs the admin role", nil)
			return
		}
		for _, t := range topics {
			for _, p := range s.opts.AdminTopics {
				if strings.HasPrefix(t, p) {
					writeError(w, http.StatusForbidden, "forbidden", "following "+p+"* topics needs the admin role", nil)
					return
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	s.streams.ServeHTTP(w, r.WithContext(ctx))
}
