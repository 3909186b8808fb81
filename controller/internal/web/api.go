package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
)

// Response shapes. They are built field by field so a hash can never leak
// through a new entity field.

type userJSON struct {
	ID          int        `json:"id"`
	Username    string     `json:"username"`
	Role        string     `json:"role"`
	Disabled    bool       `json:"disabled"`
	LastLoginAt *time.Time `json:"last_login_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

func toUserJSON(u auth.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Role: u.Role, Disabled: u.Disabled, LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt}
}

type tokenJSON struct {
	ID         int        `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Active     bool       `json:"active"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// ReadOnly tokens may only read (GET and HEAD).
	ReadOnly bool `json:"read_only"`
}

func (s *Server) toTokenJSON(t auth.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Active: t.Active(s.now()), CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, ReadOnly: t.ReadOnly}
}

// apiFailed maps a service error to a JSON error.
func (s *Server) apiFailed(w http.ResponseWriter, r *http.Request, err error) {
	if fe, ok := auth.IsFieldErrors(err); ok {
		writeError(w, http.StatusUnprocessableEntity, "validation_failed", "some fields are invalid", fe)
		return
	}
	switch {
	case errors.Is(err, auth.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such item", nil)
	case errors.Is(err, auth.ErrLastAdmin):
		writeError(w, http.StatusConflict, "last_admin", err.Error(), nil)
	default:
		s.log.Error("api request failed", "method", r.Method, "path", s.logPath(r), "error", err)
		writeError(w, http.StatusInternalServerError, "internal", "something went wrong on our side; try again", nil)
	}
}

func apiPathID(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, ok := pathID(r)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such item", nil)
	}
	return id, ok
}

type meJSON struct {
	User  userJSON   `json:"user"`
	Token *tokenJSON `json:"token,omitempty"` // the token this request used, if any
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	id := CurrentIdentity(r)
	out := meJSON{User: toUserJSON(id.User)}
	if id.Token != nil {
		t := s.toTokenJSON(*id.Token)
		out.Token = &t
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) apiUsersList(w http.ResponseWriter, r *http.Request) {
	users, err := s.users.List(r.Context())
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		out = append(out, toUserJSON(u))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (s *Server) apiUsersCreate(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if !DecodeJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = auth.RoleUser
	}
	u, err := s.users.Create(r.Context(), s.Actor(r), req.Username, req.Password, req.Role)
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]any{"user": toUserJSON(u)})
}

type patchUserRequest struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
	Password *string `json:"password"`
}

func (s *Server) apiUsersPatch(w http.ResponseWriter, r *http.Request) {
	id, ok := apiPathID(w, r)
	if !ok {
		return
	}
	var req patchUserRequest
	if !DecodeJSON(w, r, &req) {
		return
	}
	if req.Role == nil && req.Disabled == nil && req.Password == nil {
		writeError(w, http.StatusBadRequest, "bad_request", "set at least one of role, disabled, password", nil)
		return
	}
	if _, err := s.users.Get(r.Context(), id); err != nil {
		s.apiFailed(w, r, err)
		return
	}
	actor := s.Actor(r)
	if req.Password != nil {
		if err := s.users.SetPassword(r.Context(), actor, id, *req.Password); err != nil {
			s.apiFailed(w, r, err)
			return
		}
	}
	if req.Role != nil {
		if err := s.users.SetRole(r.Context(), actor, id, *req.Role); err != nil {
			s.apiFailed(w, r, err)
			return
		}
	}
	if req.Disabled != nil {
		if err := s.users.SetDisabled(r.Context(), actor, id, *req.Disabled); err != nil {
			s.apiFailed(w, r, err)
			return
		}
	}
	u, err := s.users.Get(r.Context(), id)
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"user": toUserJSON(u)})
}

func (s *Server) apiTokensList(w http.ResponseWriter, r *http.Request) {
	me, _ := CurrentUser(r)
	toks, err := s.tokens.List(r.Context(), me.ID)
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(toks))
	for _, t := range toks {
		out = append(out, s.toTokenJSON(t))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

type createTokenRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
	// ReadOnly limits the token to reading (GET and HEAD).
	ReadOnly bool `json:"read_only"`
}

type createdTokenJSON struct {
	Token tokenJSON `json:"token"`
	// Secret is the token itself, returned only in this response.
	Secret string `json:"secret"`
}

func (s *Server) apiTokensCreate(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if !DecodeJSON(w, r, &req) {
		return
	}
	me, _ := CurrentUser(r)
	tok, secret, err := s.tokens.CreateWith(r.Context(), s.Actor(r), me.ID, auth.TokenSpec{Name: req.Name, ExpiresAt: req.ExpiresAt, ReadOnly: req.ReadOnly})
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusCreated, createdTokenJSON{Token: s.toTokenJSON(tok), Secret: secret})
}

func (s *Server) apiTokensRevoke(w http.ResponseWriter, r *http.Request) {
	id, ok := apiPathID(w, r)
	if !ok {
		return
	}
	me, _ := CurrentUser(r)
	if err := s.tokens.Revoke(r.Context(), s.Actor(r), me.ID, id); err != nil {
		s.apiFailed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	q, fe := auditQuery(r)
	if len(fe) > 0 {
		writeError(w, http.StatusBadRequest, "validation_failed", "some query parameters are invalid", fe)
		return
	}
	page, err := s.audit.List(r.Context(), q)
	if err != nil {
		s.apiFailed(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, page)
}
