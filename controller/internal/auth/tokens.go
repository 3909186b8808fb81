package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/apitoken"
	"github.com/gatehousehq/gatehouse/ent/user"
)

// TokenPrefix starts every API token, so leaked tokens are easy to spot in
// logs and by secret scanners.
const TokenPrefix = "gh_"

// A token is TokenPrefix and 32 random bytes in unpadded base64url.
var tokenPattern = regexp.MustCompile(`^gh_[A-Za-z0-9_-]{43}$`)

// shownPrefixLen is how much of a token is stored in clear to tell tokens apart.
const shownPrefixLen = 10

// lastUsedResolution bounds how often a token's last use is written.
const lastUsedResolution = time.Minute

var tokenNamePattern = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._:/@-]{0,63}$`)

// Token describes an API token; the secret itself exists only once, at creation.
type Token struct {
	ID         int
	UserID     int
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	// ReadOnly tokens may only read (GET and HEAD), whatever their owner's role.
	ReadOnly bool
}

// Active reports whether the token can be used at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

func tokenFromEnt(t *ent.APIToken, userID int) Token {
	return Token{
		ID: t.ID, UserID: userID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, ReadOnly: t.ReadOnly,
	}
}

// Tokens manages API bearer tokens.
type Tokens struct {
	client *ent.Client
	audit  *audit.Recorder
	log    hclog.Logger
	now    func() time.Time
}

// NewTokens returns the token service. now may be nil for time.Now.
func NewTokens(client *ent.Client, rec *audit.Recorder, log hclog.Logger, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{client: client, audit: rec, log: log.Named("tokens"), now: now}
}

// HashToken is how a token is stored: its SHA-256. Tokens carry 256 random
// bits, so a fast hash is enough.
func HashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// Create issues a token for userID and returns it with the secret, which is
// not stored and cannot be shown again. expiresAt may be nil for no expiry.
func (s *Tokens) Create(ctx context.Context, actor audit.Actor, userID int, name string, expiresAt *time.Time) (Token, string, error) {
	return s.CreateWith(ctx, actor, userID, TokenSpec{Name: name, ExpiresAt: expiresAt})
}

// TokenSpec is what a new token is: its name, when it expires (nil: never)
// and whether it may only read.
type TokenSpec struct {
	Name      string
	ExpiresAt *time.Time
	ReadOnly  bool
}

// CreateWith is Create with every choice a token has.
func (s *Tokens) CreateWith(ctx context.Context, actor audit.Actor, userID int, spec TokenSpec) (Token, string, error) {
	name, expiresAt := strings.TrimSpace(spec.Name), spec.ExpiresAt
	fe := FieldErrors{}
	if !tokenNamePattern.MatchString(name) {
		fe["name"] = "use 1-64 letters, digits, spaces or . _ : / @ -, starting with a letter or digit"
	}
	if expiresAt != nil && !expiresAt.After(s.now()) {
		fe["expires_at"] = "must be in the future"
	}
	if err := fe.orNil(); err != nil {
		return Token{}, "", err
	}
	owner, err := s.client.User.Get(ctx, userID)
	if ent.IsNotFound(err) {
		return Token{}, "", ErrNotFound
	}
	if err != nil {
		return Token{}, "", fmt.Errorf("get token owner: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	raw := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	c := s.client.APIToken.Create().
		SetName(name).
		SetTokenHash(HashToken(raw)).
		SetPrefix(raw[:shownPrefixLen]).
		SetReadOnly(spec.ReadOnly).
		SetUserID(userID)
	if expiresAt != nil {
		c.SetExpiresAt(expiresAt.UTC())
	}
	t, err := c.Save(ctx)
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	detail := "for " + owner.Username + ", no expiry"
	if expiresAt != nil {
		detail = "for " + owner.Username + ", expires " + expiresAt.UTC().Format(time.RFC3339)
	}
	if spec.ReadOnly {
		detail += ", read-only"
	}
	if err := s.audit.Record(ctx, audit.For(actor, "token.create", tokenTarget(t.ID, name), detail)); err != nil {
		return Token{}, "", err
	}
	return tokenFromEnt(t, userID), raw, nil
}

func tokenTarget(id int, name string) string { return "token:" + strconv.Itoa(id) + " " + name }

// List returns userID's tokens, newest first, revoked ones included.
func (s *Tokens) List(ctx context.Context, userID int) ([]Token, error) {
	rows, err := s.client.APIToken.Query().
		Where(apitoken.HasUserWith(user.IDEQ(userID))).
		Order(ent.Desc(apitoken.FieldID)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]Token, 0, len(rows))
	for _, t := range rows {
		out = append(out, tokenFromEnt(t, userID))
	}
	return out, nil
}

// Revoke revokes userID's token tokenID. Another user's token is ErrNotFound.
// Revoking an already revoked token changes nothing.
func (s *Tokens) Revoke(ctx context.Context, actor audit.Actor, userID, tokenID int) error {
	t, err := s.client.APIToken.Query().
		Where(apitoken.IDEQ(tokenID), apitoken.HasUserWith(user.IDEQ(userID))).
		Only(ctx)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("find token: %w", err)
	}
	if t.RevokedAt != nil {
		return nil
	}
	if err := s.client.APIToken.UpdateOneID(tokenID).SetRevokedAt(s.now().UTC()).Exec(ctx); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return s.audit.Record(ctx, audit.For(actor, "token.revoke", tokenTarget(t.ID, t.Name), ""))
}

// Authenticate resolves a bearer token to its owner. Malformed, unknown,
// revoked and expired tokens, and tokens of disabled users, all give
// ErrInvalidToken.
func (s *Tokens) Authenticate(ctx context.Context, raw string) (User, Token, error) {
	if !tokenPattern.MatchString(raw) {
		return User{}, Token{}, ErrInvalidToken
	}
	hash := HashToken(raw)
	t, err := s.client.APIToken.Query().
		Where(apitoken.TokenHashEQ(hash)).
		WithUser().
		Only(ctx)
	if ent.IsNotFound(err) {
		return User{}, Token{}, ErrInvalidToken
	}
	if err != nil {
		return User{}, Token{}, fmt.Errorf("look up token: %w", err)
	}
	// The lookup is by hash; compare again in constant time for good measure.
	if subtle.ConstantTimeCompare(t.TokenHash, hash) != 1 || t.Edges.User == nil {
		return User{}, Token{}, ErrInvalidToken
	}
	owner := fromEnt(t.Edges.User)
	tok := tokenFromEnt(t, owner.ID)
	now := s.now()
	if !tok.Active(now) || owner.Disabled {
		return User{}, Token{}, ErrInvalidToken
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= lastUsedResolution {
		if err := s.client.APIToken.UpdateOneID(t.ID).SetLastUsedAt(now.UTC()).Exec(ctx); err != nil {
			s.log.Warn("cannot record token use", "token", tok.Prefix, "error", err)
		} else {
			u := now.UTC()
			tok.LastUsedAt = &u
		}
	}
	return owner, tok, nil
}
