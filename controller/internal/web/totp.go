package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
)

// pendingWindow is how long a right password waits for its second factor.
const pendingWindow = 5 * time.Minute

// codeData is the second sign-in step's page.
type codeData struct {
	Error string
	// Remember keeps "Remember this browser" ticked after a wrong code.
	Remember bool
}

// pendingUser returns the user whose password was right in this session,
// if that was recently.
func (s *Server) pendingUser(r *http.Request) (int, bool) {
	id := s.sessions.GetInt(r.Context(), sessPending)
	at := s.sessions.GetInt64(r.Context(), sessPendingAt)
	if id == 0 || time.Since(time.Unix(at, 0)) > pendingWindow {
		return 0, false
	}
	return id, true
}

func (s *Server) clearPending(r *http.Request) {
	for _, k := range []string{sessPending, sessPendingAt, sessPendingNext} {
		s.sessions.Remove(r.Context(), k)
	}
}

func (s *Server) codePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, ok := s.pendingUser(r); !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login_code", "Sign in", "", codeData{})
}

// codeSubmit completes a sign-in with the authenticator's code.
func (s *Server) codeSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	id, ok := s.pendingUser(r)
	if !ok {
		s.clearPending(r)
		s.Flash(r, "error", "That took too long; sign in again.")
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	remember := r.PostForm.Get("remember") == "1"
	u, err := s.users.CheckTOTP(r.Context(), id, r.PostForm.Get("code"), s.ClientAddr(r))
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		setRetryAfter(w, te.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, "login_code", "Sign in", "", codeData{Error: "Too many wrong codes. Try again in " + retryText(te.RetryAfter) + ".", Remember: remember})
		return
	case errors.Is(err, auth.ErrInvalidCode):
		s.render(w, r, http.StatusUnauthorized, "login_code", "Sign in", "", codeData{Error: "That code is wrong or was used already. Type the code your app shows now.", Remember: remember})
		return
	case errors.Is(err, auth.ErrInvalidCredentials):
		s.clearPending(r)
		s.Flash(r, "error", "Sign in again.")
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	case err != nil:
		s.log.Error("second sign-in step", "error", err)
		s.render(w, r, http.StatusInternalServerError, "login_code", "Sign in", "", codeData{Error: "Signing in failed on our side. Try again in a moment."})
		return
	}
	next := safeNext(s.sessions.GetString(r.Context(), sessPendingNext))
	s.clearPending(r)
	if err := s.signIn(r, u); err != nil {
		s.signInFailed(w, r, err)
		return
	}
	if remember {
		s.rememberDevice(w, r, u.ID)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// totpSetupData is the page that shows a new secret to scan.
type totpSetupData struct {
	Secret string // grouped by four for typing
	QR     template.HTML
	Error  string
}

// accountTOTPSetup starts setting up a second factor and shows its QR code.
func (s *Server) accountTOTPSetup(w http.ResponseWriter, r *http.Request) {
	me, _ := CurrentUser(r)
	setup, err := s.users.BeginTOTP(r.Context(), me.ID, totpIssuer)
	if fe, ok := auth.IsFieldErrors(err); ok {
		s.Flash(r, "error", "Two-factor sign-in "+strings.TrimPrefix(fe["code"], "two-factor sign-in ")+".")
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	s.renderSetup(w, r, http.StatusOK, setup, err, "")
}

// totpIssuer names the controller in authenticator apps.
const totpIssuer = "Gatehouse"

func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, status int, setup auth.TOTPSetup, err error, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	qr, err := qrSVG(setup.URI)
	if err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	s.render(w, r, status, "account_totp", "Set up two-factor sign-in", "/account", totpSetupData{Secret: groupBy4(setup.Secret), QR: qr, Error: msg})
}

// accountTOTPConfirm turns the second factor on with its first code.
func (s *Server) accountTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	me, _ := CurrentUser(r)
	codes, err := s.users.ConfirmTOTP(r.Context(), s.Actor(r), me.ID, r.PostForm.Get("code"))
	if fe, ok := auth.IsFieldErrors(err); ok {
		setup, perr := s.users.PendingTOTP(r.Context(), me.ID, totpIssuer)
		s.renderSetup(w, r, http.StatusUnprocessableEntity, setup, perr, "The code "+fe["code"]+".")
		return
	}
	if errors.Is(err, auth.ErrTOTPNotSetUp) {
		s.Flash(r, "error", "Start the set-up again.")
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	s.renderRecovery(w, r, codes, true)
}

// recoveryData shows recovery codes, once.
type recoveryData struct {
	Codes   []string
	Enabled bool // two-factor sign-in was just turned on
}

func (s *Server) renderRecovery(w http.ResponseWriter, r *http.Request, codes []string, enabled bool) {
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "account_recovery", "Recovery codes", "/account", recoveryData{Codes: codes, Enabled: enabled})
}

// accountRecoveryRenew replaces the recovery codes, after the password.
func (s *Server) accountRecoveryRenew(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	me, _ := CurrentUser(r)
	codes, err := s.users.RenewRecoveryCodes(r.Context(), s.Actor(r), me.ID, r.PostForm.Get("current_password"), s.ClientAddr(r))
	var te *auth.ThrottledError
	switch fe, isFE := auth.IsFieldErrors(err); {
	case isFE:
		s.renderAccount(w, r, http.StatusUnprocessableEntity, accountData{User: me, Errors: fe, Open: "recovery"})
		return
	case errors.As(err, &te):
		s.renderAccount(w, r, http.StatusTooManyRequests, accountData{User: me,
			Errors: auth.FieldErrors{"current_password": "too many wrong tries; try again in " + retryText(te.RetryAfter)}, Open: "recovery"})
		return
	case err != nil:
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	s.renderRecovery(w, r, codes, false)
}

// accountTOTPDisable turns the second factor off with the password and a code.
func (s *Server) accountTOTPDisable(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	me, _ := CurrentUser(r)
	if s.twoFactorRequiredFor(me) {
		s.renderAccount(w, r, http.StatusForbidden, accountData{User: me,
			Errors: auth.FieldErrors{"code": "two-factor sign-in is required for your account; it cannot be turned off"}, Open: "disable-2fa"})
		return
	}
	err := s.users.DisableTOTP(r.Context(), s.Actor(r), me.ID, r.PostForm.Get("current_password"), r.PostForm.Get("code"), s.ClientAddr(r))
	var te *auth.ThrottledError
	switch fe, isFE := auth.IsFieldErrors(err); {
	case isFE:
		s.renderAccount(w, r, http.StatusUnprocessableEntity, accountData{User: me, Errors: fe, Open: "disable-2fa"})
		return
	case errors.As(err, &te):
		s.renderAccount(w, r, http.StatusTooManyRequests,
			accountData{User: me, Errors: auth.FieldErrors{"code": "too many wrong tries; try again in " + retryText(te.RetryAfter)}, Open: "disable-2fa"})
		return
	case err != nil:
		s.pageActionFailed(w, r, "/account", err)
		return
	}
	s.Flash(r, "success", "Two-factor sign-in is off.")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// usersTOTPReset turns another user's second factor off (they lost their phone).
func (s *Server) usersTOTPReset(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(ctx context.Context, id int) error { return s.users.ResetTOTP(ctx, s.Actor(r), id) },
		func(u auth.User) string {
			return fmt.Sprintf("Two-factor sign-in of %s is off; they sign in with their password and can set it up again.", u.Username)
		})
}

// qrSVG draws text as a QR code in SVG: one path of unit squares, numbers
// only, so nothing of text reaches the markup but its modules.
func qrSVG(text string) (template.HTML, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	bits := q.Bitmap() // includes the quiet zone
	n := len(bits)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="220" height="220" role="img" aria-label="QR code to scan with an authenticator app" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n, n, n)
	for y, row := range bits {
		for x, on := range row {
			if on {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil
}

// groupBy4 spaces a secret into groups of four characters for typing.
func groupBy4(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
