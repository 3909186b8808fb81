package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
)

// Trusted-browser cookie names, set like the session cookie: the __Host-
// prefix over TLS. The cookie holds the raw token; the database its hash.
const (
	deviceCookieName       = "gatehouse_device"
	secureDeviceCookieName = "__Host-gatehouse_device"
)

func (s *Server) deviceCookie() string {
	if s.opts.Config.Secure() {
		return secureDeviceCookieName
	}
	return deviceCookieName
}

// deviceToken is the trusted-browser token r carries, or "".
func (s *Server) deviceToken(r *http.Request) string {
	c, err := r.Cookie(s.deviceCookie())
	if err != nil {
		return ""
	}
	return c.Value
}

// setDeviceCookie gives the browser its trusted-browser token for as long
// as the server honours it; an empty token deletes the cookie.
func (s *Server) setDeviceCookie(w http.ResponseWriter, token string) {
	maxAge := int(auth.TrustedDeviceLifetime / time.Second)
	if token == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.deviceCookie(), Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.opts.Config.Secure(),
	})
}

// rememberDevice trusts the browser of r for user id after a sign-in with
// the second factor. A failure leaves the sign-in done and says so.
func (s *Server) rememberDevice(w http.ResponseWriter, r *http.Request, id int) {
	token, _, err := s.users.TrustDevice(r.Context(), id, r.UserAgent(), s.ClientAddr(r))
	if err != nil {
		s.log.Error("remember a browser", "error", err)
		s.Flash(r, "error", "You are signed in, but this browser could not be remembered: the next sign-in asks for a code again.")
		return
	}
	s.setDeviceCookie(w, token)
}

// isCurrentDevice reports whether r's own browser is user id's trusted
// device deviceID (0: any of theirs), so forgetting it also clears its cookie.
func (s *Server) isCurrentDevice(r *http.Request, id, deviceID int) bool {
	token := s.deviceToken(r)
	if token == "" {
		return false
	}
	list, err := s.users.TrustedDevices(r.Context(), id, token)
	if err != nil {
		s.log.Error("list trusted browsers", "error", err)
		return false
	}
	for _, d := range list {
		if d.Current && (deviceID == 0 || d.ID == deviceID) {
			return true
		}
	}
	return false
}

// accountDeviceForget forgets one of the signed-in user's own trusted
// browsers; another user's is "no longer exists".
func (s *Server) accountDeviceForget(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	me, _ := CurrentUser(r)
	current := s.isCurrentDevice(r, me.ID, id)
	if err := s.users.ForgetDevice(r.Context(), s.Actor(r), me.ID, id); err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	if current {
		s.setDeviceCookie(w, "")
	}
	s.Flash(r, "success", "Browser forgotten: signing in from it asks for a code again.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// accountDevicesForget forgets all of the signed-in user's trusted browsers.
func (s *Server) accountDevicesForget(w http.ResponseWriter, r *http.Request) {
	me, _ := CurrentUser(r)
	current := s.isCurrentDevice(r, me.ID, 0)
	if _, err := s.users.ForgetDevices(r.Context(), s.Actor(r), me.ID); err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	if current {
		s.setDeviceCookie(w, "")
	}
	s.Flash(r, "success", "All your browsers are forgotten: every sign-in asks for a code again.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

type deviceJSON struct {
	ID         int       `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	// Current says it is the browser that made this request.
	Current bool `json:"current"`
}

// apiMeDevices lists the caller's own trusted browsers.
func (s *Server) apiMeDevices(w http.ResponseWriter, r *http.Request) {
	me, _ := CurrentUser(r)
	list, err := s.users.TrustedDevices(r.Context(), me.ID, s.deviceToken(r))
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	out := make([]deviceJSON, 0, len(list))
	for _, d := range list {
		out = append(out, deviceJSON{ID: d.ID, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt, LastUsedAt: d.LastUsedAt,
			UserAgent: d.UserAgent, IP: d.Address, Current: d.Current})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// apiMeDeviceDelete forgets one of the caller's own trusted browsers;
// another user's answers 404 like an unknown id.
func (s *Server) apiMeDeviceDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := apiPathID(w, r)
	if !ok {
		return
	}
	me, _ := CurrentUser(r)
	current := CurrentIdentity(r).Token == nil && s.isCurrentDevice(r, me.ID, id)
	err := s.users.ForgetDevice(r.Context(), s.Actor(r), me.ID, id)
	if errors.Is(err, auth.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such trusted browser of yours", nil)
		return
	}
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	if current {
		s.setDeviceCookie(w, "")
	}
	w.WriteHeader(http.StatusNoContent)
}
