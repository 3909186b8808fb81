package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
)

// Session keys.
const (
	sessUserID = "uid"
	sessEpoch  = "epoch"
	sessFlash  = "flash"
	sessFlashK = "flash_kind"
	// A sign-in waiting for its second factor: the user, since when, and
	// where to go after.
	sessPending     = "pending_uid"
	sessPendingAt   = "pending_at"
	sessPendingNext = "pending_next"
)

// Identity is who is making a request.
type Identity struct {
	User  auth.User
	Token *auth.Token // set when the request authenticated with an API token
}

type identityKey struct{}
type routeKey struct{}

// CurrentUser returns the signed-in user (or token owner) of r.
func CurrentUser(r *http.Request) (auth.User, bool) {
	id, ok := r.Context().Value(identityKey{}).(*Identity)
	if !ok || id == nil {
		return auth.User{}, false
	}
	return id.User, true
}

// CurrentIdentity returns how r authenticated, or nil.
func CurrentIdentity(r *http.Request) *Identity {
	id, _ := r.Context().Value(identityKey{}).(*Identity)
	return id
}

// Actor returns the audit actor for changes made by r.
func (s *Server) Actor(r *http.Request) audit.Actor {
	if u, ok := CurrentUser(r); ok {
		return u.Actor(s.ClientAddr(r))
	}
	return audit.Actor{Name: "anonymous", RemoteAddr: s.ClientAddr(r)}
}

// KindOf is whether the request is for a page or the API, by its route.
func KindOf(r *http.Request) Kind {
	if rt, ok := r.Context().Value(routeKey{}).(*Route); ok {
		return rt.Kind
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/events" {
		return KindAPI
	}
	return KindPage
}

// MaxBody bounds every request body, whatever its handler reads it with: the
// standard library's form parsing alone would take 10 MiB of form, or any
// amount of multipart file data, spilled to disk.
const MaxBody = 1 << 20

// guard wraps a route's handler with its body limit, session loading,
// authentication and policy check.
func (s *Server) guard(rt Route) http.Handler {
	route := rt
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		ctx := context.WithValue(r.Context(), routeKey{}, &route)
		r = r.WithContext(ctx)
		id, err := s.identify(w, r, route)
		if err != nil {
			if errors.Is(err, auth.ErrInvalidToken) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				s.fail(w, r, KindAPI, http.StatusUnauthorized, "unauthenticated", "the API token is invalid, expired or revoked, or its owner is disabled")
				return
			}
			s.log.Error("identify request", "error", err, "path", s.logPath(r))
			s.fail(w, r, route.Kind, http.StatusInternalServerError, "internal", "something went wrong on our side; try again")
			return
		}
		if id != nil {
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		if route.Policy != PolicyPublic {
			w.Header().Set("Cache-Control", "no-store")
			if id == nil {
				s.unauthenticated(w, r, route.Kind)
				return
			}
			if route.Policy == PolicyAdmin && !id.User.IsAdmin() {
				s.forbidden(w, r, route.Kind)
				return
			}
			if id.Token != nil && id.Token.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.fail(w, r, route.Kind, http.StatusForbidden, "read_only_token", "this API token may only read (GET); create one without read-only to make changes")
				return
			}
			if id.Token == nil && s.twoFactorMissing(id.User) && !twoFactorSetupRoutes[route.Method+" "+route.Pattern] {
				s.twoFactorRequired(w, r, route.Kind)
				return
			}
		}
		route.Handler(w, r)
	})
	if !route.NoSession {
		h = s.sessions.LoadAndSave(h)
	}
	return h
}

// identify finds who is calling: a bearer token on API routes, otherwise the
// session. A session whose user is gone, disabled, or whose password changed
// since sign-in (another session epoch) is destroyed.
func (s *Server) identify(w http.ResponseWriter, r *http.Request, rt Route) (*Identity, error) {
	if rt.Kind == KindAPI {
		if h := r.Header.Get("Authorization"); h != "" {
			raw, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return nil, auth.ErrInvalidToken
			}
			u, tok, err := s.tokens.Authenticate(r.Context(), strings.TrimSpace(raw))
			if err != nil {
				return nil, err
			}
			return &Identity{User: u, Token: &tok}, nil
		}
	}
	if rt.NoSession {
		return nil, nil
	}
	uid := s.sessions.GetInt(r.Context(), sessUserID)
	if uid == 0 {
		return nil, nil
	}
	u, err := s.users.Get(r.Context(), uid)
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		return nil, err
	}
	if err != nil || u.Disabled || u.SessionEpoch != s.sessions.GetInt(r.Context(), sessEpoch) {
		if err := s.sessions.Destroy(r.Context()); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return &Identity{User: u}, nil
}

func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, k Kind) {
	if k == KindAPI {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		s.fail(w, r, k, http.StatusUnauthorized, "unauthenticated", "sign in or send an API token as 'Authorization: Bearer gh_...'")
		return
	}
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + urlQueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, k Kind) {
	if k == KindAPI {
		s.fail(w, r, k, http.StatusForbidden, "forbidden", "this needs the admin role")
		return
	}
	s.render(w, r, http.StatusForbidden, "forbidden", "Forbidden", "", nil)
}

func (s *Server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("cross-origin request refused", "method", r.Method, "path", s.logPath(r),
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "client", s.ClientAddr(r))
	if KindOf(r) == KindAPI {
		writeError(w, http.StatusForbidden, "cross_origin", "cross-origin requests that change state are refused", nil)
		return
	}
	s.renderError(w, r, http.StatusForbidden, "Request refused",
		"This form was sent from another site, so Gatehouse refused it. Open Gatehouse directly and try again.")
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	secure := s.opts.Config.Secure()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "path", s.logPath(r), "panic", p, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal", "something went wrong on our side; try again", nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// ClientAddr is the address of the client behind r: the connection's peer,
// or, when the peer is a trusted proxy, the nearest untrusted address in
// X-Forwarded-For.
func (s *Server) ClientAddr(r *http.Request) string {
	return clientAddr(r, s.opts.Config.TrustedProxies)
}

func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	// Walk right to left: each hop was appended by the proxy before it.
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last address we could trust
		}
		client = a.Unmap()
		if !isTrusted(client) {
			break
		}
	}
	return client.String()
}

// twoFactorSetupRoutes are what a browser session may still reach while its
// user must set up two-factor sign-in first: the account page, the set-up
// steps, signing out and who am I.
var twoFactorSetupRoutes = map[string]bool{
	"GET /account": true, "POST /account/2fa/setup": true, "POST /account/2fa/confirm": true,
	"POST /logout": true, "GET /api/v1/me": true,
}

// twoFactorMissing reports whether u must use two-factor sign-in under the
// require_two_factor setting and has not set it up.
func (s *Server) twoFactorMissing(u auth.User) bool {
	return !u.TOTP && s.twoFactorRequiredFor(u)
}

// twoFactorRequired sends a browser session that must set up two-factor
// sign-in to its account page; the API answers 403. API tokens are not
// affected.
func (s *Server) twoFactorRequired(w http.ResponseWriter, r *http.Request, k Kind) {
	if k == KindAPI {
		s.fail(w, r, k, http.StatusForbidden, "two_factor_required", "two-factor sign-in is required for your account; set it up on your account page")
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}
