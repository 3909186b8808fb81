package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
)

// accountData is the signed-in user's own page: who they are and the form
// to change their password, with a message per field.
type accountData struct {
	User   auth.User
	Errors auth.FieldErrors
	Open   string // the form a message belongs to
	// RecoveryLeft counts the unused recovery codes of a user with two-factor sign-in.
	RecoveryLeft int
	// Devices are the user's trusted browsers, this one marked Current.
	Devices []auth.TrustedDevice
	// TwoFactorRequired says the user must use two-factor sign-in: it
	// cannot be turned off, and until it is set up nothing else opens.
	TwoFactorRequired bool
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	s.renderAccount(w, r, http.StatusOK, accountData{User: u})
}

// renderAccount shows the account page with d's messages.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, d accountData) {
	w.Header().Set("Cache-Control", "no-store")
	if d.Errors == nil {
		d.Errors = auth.FieldErrors{}
	}
	d.TwoFactorRequired = s.twoFactorRequiredFor(d.User)
	if d.User.TOTP {
		n, err := s.users.RecoveryCodesLeft(r.Context(), d.User.ID)
		if err != nil {
			s.log.Error("count recovery codes", "error", err)
		}
		d.RecoveryLeft = n
		devices, err := s.users.TrustedDevices(r.Context(), d.User.ID, s.deviceToken(r))
		if err != nil {
			s.log.Error("list trusted browsers", "error", err)
		}
		d.Devices = devices
	}
	s.render(w, r, status, "account", "Your account", "/account", d)
}

// accountPassword changes the signed-in user's own password. The user's
// other sessions end; this one carries on under a new session token.
func (s *Server) accountPassword(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	me, _ := CurrentUser(r)
	fail := func(status int, fe auth.FieldErrors) {
		s.renderAccount(w, r, status, accountData{User: me, Errors: fe, Open: "password"})
	}
	next := r.PostForm.Get("password")
	if next != r.PostForm.Get("confirm") {
		fail(http.StatusUnprocessableEntity, auth.FieldErrors{"confirm": "does not match the new password"})
		return
	}
	err := s.users.ChangeOwnPassword(r.Context(), s.Actor(r), me.ID, r.PostForm.Get("current_password"), next, s.ClientAddr(r))
	var te *auth.ThrottledError
	switch fe, isFE := auth.IsFieldErrors(err); {
	case isFE:
		fail(http.StatusUnprocessableEntity, fe)
		return
	case errors.As(err, &te):
		setRetryAfter(w, te.RetryAfter)
		fail(http.StatusTooManyRequests, auth.FieldErrors{"current_password": "too many wrong passwords; try again in " + retryText(te.RetryAfter)})
		return
	case err != nil:
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	if !s.keepSession(w, r, me.ID, "/account") {
		return
	}
	s.Flash(r, "success", "Password changed. Your other sessions have ended.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// keepSession carries the current session over a change that ended all of
// user id's sessions: a new token, and the user's new session epoch.
func (s *Server) keepSession(w http.ResponseWriter, r *http.Request, id int, back string) bool {
	if err := s.renewSession(r, id); err != nil {
		s.pageActionFailed(w, r, back, err)
		return false
	}
	return true
}

func (s *Server) renewSession(r *http.Request, id int) error {
	u, err := s.users.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return s.signIn(r, u)
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// apiMePassword changes the caller's own password; the current one is
// required even with an API token. The caller's browser sessions end; API
// tokens keep working.
func (s *Server) apiMePassword(w http.ResponseWriter, r *http.Request) {
	var req changePasswordRequest
	if !DecodeJSON(w, r, &req) {
		return
	}
	me, _ := CurrentUser(r)
	err := s.users.ChangeOwnPassword(r.Context(), s.Actor(r), me.ID, req.CurrentPassword, req.NewPassword, s.ClientAddr(r))
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		setRetryAfter(w, te.RetryAfter)
		writeError(w, http.StatusTooManyRequests, "throttled", "too many wrong passwords; try again later", nil)
		return
	}
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	if CurrentIdentity(r).Token == nil {
		// A browser session calling the API stays signed in.
		if err := s.renewSession(r, me.ID); err != nil {
			s.log.Error("renew session after a password change", "error", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// accountSessionsEnd signs the user out of every other browser session and
// keeps this one, which carries the new session epoch under a new token.
func (s *Server) accountSessionsEnd(w http.ResponseWriter, r *http.Request) {
	me, _ := CurrentUser(r)
	epoch, err := s.users.EndSessions(r.Context(), s.Actor(r), me.ID)
	if err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	me.SessionEpoch = epoch
	if err := s.signIn(r, me); err != nil {
		s.signInFailed(w, r, err)
		return
	}
	s.Flash(r, "success", "You are signed out of every other browser; this one stays signed in.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// usersSessionsEnd signs a user out of every browser session (an admin's
// own included, when they choose themselves).
func (s *Server) usersSessionsEnd(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(ctx context.Context, id int) error {
		_, err := s.users.EndSessions(ctx, s.Actor(r), id)
		return err
	}, func(u auth.User) string {
		return fmt.Sprintf("%s is signed out of every browser; their API tokens still work.", u.Username)
	})
}

// twoFactorRequiredFor reports whether require_two_factor covers u.
func (s *Server) twoFactorRequiredFor(u auth.User) bool {
	switch s.opts.Config.RequireTwoFactor {
	case "all":
		return true
	case "admins":
		return u.IsAdmin()
	}
	return false
}
