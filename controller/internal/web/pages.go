package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// maxFormBody bounds form posts.
const maxFormBody = 64 << 10

func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The form could not be read. Reload the page and try again.")
		return false
	}
	return true
}

// --- sign-in ---

type loginData struct {
	Next     string
	Username string
	Error    string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := CurrentUser(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "login", "Sign in", "", loginData{Next: next})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	username := r.PostForm.Get("username")
	next := safeNext(r.PostForm.Get("next"))
	// A trusted browser's cookie stands in for the code only once the
	// password is right; any other cookie changes nothing.
	u, needCode, err := s.users.AuthenticateDevice(r.Context(), username, r.PostForm.Get("password"), s.deviceToken(r), s.ClientAddr(r))
	if err != nil {
		status, msg := http.StatusUnauthorized, "Wrong username or password."
		var te *auth.ThrottledError
		switch {
		case errors.As(err, &te):
			status, msg = http.StatusTooManyRequests, "Too many failed sign-in attempts. Try again in "+retryText(te.RetryAfter)+"."
			setRetryAfter(w, te.RetryAfter)
		case !errors.Is(err, auth.ErrInvalidCredentials):
			s.log.Error("sign-in", "error", err)
			status, msg = http.StatusInternalServerError, "Signing in failed on our side. Try again in a moment."
		}
		// Echo the username only if it is a valid one, so nothing a person
		// typed by mistake into the wrong field is reflected back.
		shown := ""
		if auth.ValidateUsername(username) == "" {
			shown = username
		}
		s.render(w, r, status, "login", "Sign in", "", loginData{Next: next, Username: shown, Error: msg})
		return
	}
	if needCode {
		// The password was right; the session is not signed in until the
		// second factor is, but it gets a new token now all the same.
		if err := s.sessions.RenewToken(r.Context()); err != nil {
			s.signInFailed(w, r, err)
			return
		}
		s.sessions.Put(r.Context(), sessPending, u.ID)
		s.sessions.Put(r.Context(), sessPendingAt, time.Now().Unix())
		s.sessions.Put(r.Context(), sessPendingNext, next)
		http.Redirect(w, r, "/login/code", http.StatusSeeOther)
		return
	}
	if err := s.signIn(r, u); err != nil {
		s.signInFailed(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signIn signs the request's session in as u under a new token, so a
// session id planted before sign-in is useless. It also carries a session
// over a change that ended all of u's sessions (u's new epoch).
func (s *Server) signIn(r *http.Request, u auth.User) error {
	if err := s.sessions.RenewToken(r.Context()); err != nil {
		return err
	}
	s.sessions.Put(r.Context(), sessUserID, u.ID)
	s.sessions.Put(r.Context(), sessEpoch, u.SessionEpoch)
	return nil
}

func (s *Server) signInFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("renew session", "error", err)
	s.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "The session could not be created. Try again.")
}

// setRetryAfter tells a throttled client when to try again, in whole seconds.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
}

func retryText(d time.Duration) string {
	if d <= time.Minute {
		return "a minute"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " minutes"
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	if err := s.sessions.Destroy(r.Context()); err != nil {
		s.log.Error("end session", "error", err)
		s.renderError(w, r, http.StatusInternalServerError, "Sign-out failed", "The session could not be ended. Try again.")
		return
	}
	if err := s.audit.Record(r.Context(), audit.For(u.Actor(s.ClientAddr(r)), "logout", "user:"+u.Username, "")); err != nil {
		s.log.Error("audit sign-out", "error", err)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// --- dashboard ---

type serverCounts struct{ Total, Online, Offline, Pending int }

type dashboardData struct {
	Servers       []Tile
	Counts        serverCounts
	AddServerPath string
	Attention     []Attention
}

// Attention is one count on the dashboard's summary, linking to where it
// is handled; Class is "ok", "warn" or "bad".
type Attention struct {
	Label string
	Count int
	Href  string
	Class string
}

// Tile is one server on the dashboard with its latest values.
type Tile struct {
	*ent.Server
	Values TileValues
}

// TileValues are a tile's live values, keyed like the tile's data-field
// attributes and already formatted for display.
type TileValues map[string]string

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	servers, err := s.db.Client.Server.Query().
		Where(server.StatusNEQ(server.StatusRemoved)).
		Order(ent.Asc(server.FieldName)).
		All(r.Context())
	if err != nil {
		s.log.Error("list servers", "error", err)
		s.renderError(w, r, http.StatusInternalServerError, "Dashboard unavailable", "The server list could not be loaded. Try again in a moment.")
		return
	}
	d := dashboardData{Servers: make([]Tile, len(servers))}
	var values map[int]TileValues
	if s.opts.Tiles != nil {
		ids := make([]int, len(servers))
		for i, sv := range servers {
			ids[i] = sv.ID
		}
		values = s.opts.Tiles(r.Context(), ids)
	}
	for i, sv := range servers {
		d.Servers[i] = Tile{Server: sv, Values: values[sv.ID]}
		d.Counts.Total++
		switch sv.Status {
		case server.StatusOnline:
			d.Counts.Online++
		case server.StatusOffline:
			d.Counts.Offline++
		case server.StatusPending:
			d.Counts.Pending++
		}
	}
	for _, p := range []string{"/servers/ssh/new", "/servers/new"} {
		if s.hasGET(p) {
			d.AddServerPath = p
			break
		}
	}
	if s.opts.Attention != nil {
		d.Attention = s.opts.Attention(r.Context())
	}
	s.render(w, r, http.StatusOK, "dashboard", "Dashboard", "/", d)
}

// --- users ---

type userForm struct{ Username, Role string }

type usersData struct {
	Users  []auth.User
	MeID   int
	Open   string            // id of the dialog to show open
	Errors map[string]string // field messages for the open dialog
	Form   userForm
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request) {
	s.renderUsers(w, r, http.StatusOK, usersData{Open: dialogParam(r)})
}

// dialogParam reads ?dialog=, which opens a dialog without JavaScript.
// It is matched against dialog ids in the template, never rendered raw.
func dialogParam(r *http.Request) string {
	d := r.URL.Query().Get("dialog")
	if len(d) > 40 {
		return ""
	}
	return d
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, d usersData) {
	users, err := s.users.List(r.Context())
	if err != nil {
		s.log.Error("list users", "error", err)
		s.renderError(w, r, http.StatusInternalServerError, "Users unavailable", "The user list could not be loaded. Try again in a moment.")
		return
	}
	me, _ := CurrentUser(r)
	d.Users, d.MeID = users, me.ID
	s.render(w, r, status, "users", "Users", "/users", d)
}

func (s *Server) usersCreate(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := userForm{Username: r.PostForm.Get("username"), Role: r.PostForm.Get("role")}
	u, err := s.users.Create(r.Context(), s.Actor(r), f.Username, r.PostForm.Get("password"), f.Role)
	if fe, ok := auth.IsFieldErrors(err); ok {
		if auth.ValidateUsername(f.Username) != "" {
			f.Username = "" // do not reflect what cannot be a username
		}
		s.renderUsers(w, r, http.StatusUnprocessableEntity, usersData{Open: "create-user", Errors: fe, Form: f})
		return
	}
	if err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	s.Flash(r, "success", fmt.Sprintf("User %s created as %s.", u.Username, u.Role))
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

func pathID(r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	return id, err == nil && id > 0
}

func (s *Server) usersPassword(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok || !s.parseForm(w, r) {
		s.notFound(w, r)
		return
	}
	err := s.users.SetPassword(r.Context(), s.Actor(r), id, r.PostForm.Get("password"))
	if fe, ok := auth.IsFieldErrors(err); ok {
		s.renderUsers(w, r, http.StatusUnprocessableEntity, usersData{Open: fmt.Sprintf("password-%d", id), Errors: fe})
		return
	}
	if err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	u, err := s.users.Get(r.Context(), id)
	if err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	if me, _ := CurrentUser(r); me.ID == id && !s.keepSession(w, r, id, "/users") {
		return // changing your own password ends your other sessions, not this one
	}
	s.Flash(r, "success", fmt.Sprintf("Password of %s changed; their sessions have ended.", u.Username))
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

func (s *Server) usersRole(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok || !s.parseForm(w, r) {
		s.notFound(w, r)
		return
	}
	role := r.PostForm.Get("role")
	if err := s.users.SetRole(r.Context(), s.Actor(r), id, role); err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	s.Flash(r, "success", "Role saved.")
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

func (s *Server) usersDisable(w http.ResponseWriter, r *http.Request) { s.usersSetDisabled(w, r, true) }
func (s *Server) usersEnable(w http.ResponseWriter, r *http.Request)  { s.usersSetDisabled(w, r, false) }

func (s *Server) usersSetDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	s.userAction(w, r, func(ctx context.Context, id int) error { return s.users.SetDisabled(ctx, s.Actor(r), id, disabled) },
		func(u auth.User) string {
			if disabled {
				return fmt.Sprintf("%s is disabled and signed out everywhere.", u.Username)
			}
			return fmt.Sprintf("%s can sign in again.", u.Username)
		})
}

// userAction runs an admin's action on the user named by the {id} path
// value, then goes back to the users page with done's message about them.
func (s *Server) userAction(w http.ResponseWriter, r *http.Request, act func(ctx context.Context, id int) error, done func(u auth.User) string) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if err := act(r.Context(), id); err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	u, err := s.users.Get(r.Context(), id)
	if err != nil {
		s.pageActionFailed(w, r, "/users", err)
		return
	}
	s.Flash(r, "success", done(u))
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

// pageActionFailed reports a failed form action as a flash on back.
func (s *Server) pageActionFailed(w http.ResponseWriter, r *http.Request, back string, err error) {
	var msg string
	switch {
	case errors.Is(err, auth.ErrNotFound):
		msg = "That item no longer exists."
	case errors.Is(err, auth.ErrLastAdmin):
		msg = "At least one enabled admin must remain. Promote or enable another admin first."
	default:
		if fe, ok := auth.IsFieldErrors(err); ok {
			msg = fe.Error()
			break
		}
		s.log.Error("action failed", "path", s.logPath(r), "error", err)
		msg = "That did not work because of a problem on our side. Try again in a moment."
	}
	s.Flash(r, "error", msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "Not found", "There is nothing here. It may have been removed.")
}

// --- API tokens ---

type expiryChoice struct {
	Value string
	Label string
	Days  int
}

var expiryChoices = []expiryChoice{
	{"30", "In 30 days", 30},
	{"90", "In 90 days", 90},
	{"365", "In a year", 365},
	{"never", "Never", 0},
}

type tokenForm struct {
	Name, Expires string
	ReadOnly      bool
}

type tokensData struct {
	Tokens   []auth.Token
	Now      time.Time
	Open     string
	Errors   map[string]string
	Form     tokenForm
	Expiries []expiryChoice
	Created  *auth.Token
	Secret   string
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) {
	s.renderTokens(w, r, http.StatusOK, tokensData{Open: dialogParam(r)})
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, d tokensData) {
	me, _ := CurrentUser(r)
	toks, err := s.tokens.List(r.Context(), me.ID)
	if err != nil {
		s.log.Error("list tokens", "error", err)
		s.renderError(w, r, http.StatusInternalServerError, "Tokens unavailable", "Your tokens could not be loaded. Try again in a moment.")
		return
	}
	d.Tokens, d.Now, d.Expiries = toks, s.now(), expiryChoices
	if d.Form.Expires == "" {
		d.Form.Expires = "90"
	}
	s.render(w, r, status, "tokens", "API tokens", "/tokens", d)
}

func (s *Server) tokensCreate(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := tokenForm{Name: r.PostForm.Get("name"), Expires: r.PostForm.Get("expires"), ReadOnly: r.PostForm.Get("read_only") != ""}
	var exp *time.Time
	valid := false
	for _, c := range expiryChoices {
		if c.Value == f.Expires {
			valid = true
			if c.Days > 0 {
				t := s.now().Add(time.Duration(c.Days) * 24 * time.Hour)
				exp = &t
			}
		}
	}
	if !valid {
		s.renderTokens(w, r, http.StatusUnprocessableEntity, tokensData{Open: "create-token", Errors: map[string]string{"expires": "choose one of the offered expiries"}, Form: f})
		return
	}
	me, _ := CurrentUser(r)
	tok, secret, err := s.tokens.CreateWith(r.Context(), s.Actor(r), me.ID, auth.TokenSpec{Name: f.Name, ExpiresAt: exp, ReadOnly: f.ReadOnly})
	if fe, ok := auth.IsFieldErrors(err); ok {
		s.renderTokens(w, r, http.StatusUnprocessableEntity, tokensData{Open: "create-token", Errors: fe, Form: f})
		return
	}
	if err != nil {
		s.pageActionFailed(w, r, "/tokens", err)
		return
	}
	// The secret is rendered into this one response and kept nowhere else.
	w.Header().Set("Cache-Control", "no-store")
	s.renderTokens(w, r, http.StatusOK, tokensData{Created: &tok, Secret: secret})
}

func (s *Server) tokensRevoke(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	me, _ := CurrentUser(r)
	if err := s.tokens.Revoke(r.Context(), s.Actor(r), me.ID, id); err != nil {
		s.pageActionFailed(w, r, "/tokens", err)
		return
	}
	s.Flash(r, "success", "Token revoked.")
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

// --- audit ---

type auditData struct {
	Events    []audit.Event
	Actor     string
	Action    string
	Target    string
	NextPage  string
	FirstPage string
}

func auditQuery(r *http.Request) (audit.Query, map[string]string) {
	v := r.URL.Query()
	q := audit.Query{Actor: v.Get("actor"), Action: v.Get("action"), Target: v.Get("target")}
	fe := map[string]string{}
	if len(q.Actor) > 64 {
		fe["actor"] = "must be at most 64 characters"
	}
	if len(q.Action) > 64 {
		fe["action"] = "must be at most 64 characters"
	}
	if len(q.Target) > 255 {
		fe["target"] = "must be at most 255 characters"
	}
	if b := v.Get("before"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 {
			fe["before"] = "must be a positive event id"
		}
		q.BeforeID = n
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > audit.MaxLimit {
			fe["limit"] = fmt.Sprintf("must be between 1 and %d", audit.MaxLimit)
		}
		q.Limit = n
	}
	return q, fe
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	q, fe := auditQuery(r)
	if len(fe) > 0 {
		s.renderError(w, r, http.StatusBadRequest, "Bad filter", auth.FieldErrors(fe).Error())
		return
	}
	page, err := s.audit.List(r.Context(), q)
	if err != nil {
		s.log.Error("list audit", "error", err)
		s.renderError(w, r, http.StatusInternalServerError, "Audit log unavailable", "The audit log could not be loaded. Try again in a moment.")
		return
	}
	d := auditData{Events: page.Events, Actor: q.Actor, Action: q.Action, Target: q.Target}
	link := func(before int) string {
		v := url.Values{}
		if q.Actor != "" {
			v["actor"] = []string{q.Actor}
		}
		if q.Action != "" {
			v["action"] = []string{q.Action}
		}
		if q.Target != "" {
			v["target"] = []string{q.Target}
		}
		if before > 0 {
			v["before"] = []string{strconv.Itoa(before)}
		}
		return "/audit?" + v.Encode()
	}
	if page.NextBefore > 0 {
		d.NextPage = link(page.NextBefore)
	}
	if q.BeforeID > 0 {
		d.FirstPage = link(0)
	}
	s.render(w, r, http.StatusOK, "audit", "Audit log", "/audit", d)
}
