// Package auth holds the controller's identities: users with bcrypt
// passwords and throttled sign-in, API bearer tokens stored as hashes, and
// the database-backed store for browser sessions. Every change is written to
// the audit log.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/user"
)

// Roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Password limits. bcrypt reads at most 72 bytes.
const (
	MinPasswordLen   = 10
	MaxPasswordBytes = 72
)

// DefaultBcryptCost is the production work factor.
const DefaultBcryptCost = 12

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// User is a user as the rest of the controller sees it: never with its hash.
type User struct {
	ID           int
	Username     string
	Role         string
	Disabled     bool
	SessionEpoch int
	LastLoginAt  *time.Time
	CreatedAt    time.Time
	// TOTP says a second factor is needed to sign in.
	TOTP bool
}

// IsAdmin reports whether u has the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Actor returns u as the actor of a change made from remoteAddr.
func (u User) Actor(remoteAddr string) audit.Actor {
	id := u.ID
	return audit.Actor{ID: &id, Name: u.Username, RemoteAddr: remoteAddr}
}

func fromEnt(u *ent.User) User {
	return User{
		ID: u.ID, Username: u.Username, Role: string(u.Role), Disabled: u.Disabled,
		SessionEpoch: u.SessionEpoch, LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt, TOTP: u.TotpEnabled,
	}
}

// UsersOptions tunes a Users service. Zero values take the production defaults.
type UsersOptions struct {
	BcryptCost int              // DefaultBcryptCost; tests use bcrypt.MinCost
	Throttle   ThrottleConfig   // DefaultThrottle()
	Now        func() time.Time // time.Now; tests move the clock to end lockouts
	// Secrets seals second-factor secrets; without it two-factor sign-in
	// cannot be set up (admin commands that only reset it do not need it).
	Secrets Sealer
}

// Users manages accounts and checks passwords.
type Users struct {
	client    *ent.Client
	audit     *audit.Recorder
	log       hclog.Logger
	cost      int
	now       func() time.Time
	throttle  *throttle
	dummyHash []byte
	sealer    Sealer
}

// NewUsers returns the user service.
func NewUsers(client *ent.Client, rec *audit.Recorder, log hclog.Logger, opts UsersOptions) (*Users, error) {
	if opts.BcryptCost == 0 {
		opts.BcryptCost = DefaultBcryptCost
	}
	if opts.BcryptCost < bcrypt.MinCost || opts.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d is outside %d-%d", opts.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if opts.Throttle == (ThrottleConfig{}) {
		opts.Throttle = DefaultThrottle()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Unknown usernames are checked against this hash so that they cost the
	// same time as a wrong password for a real account.
	dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), opts.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("prepare dummy password hash: %w", err)
	}
	return &Users{
		client: client, audit: rec, log: log.Named("users"), cost: opts.BcryptCost,
		now: opts.Now, throttle: newThrottle(opts.Throttle), dummyHash: dummy, sealer: opts.Secrets,
	}, nil
}

// ValidateUsername returns a message for the person who typed name, or "".
func ValidateUsername(name string) string {
	if !usernamePattern.MatchString(name) {
		return "use 2-32 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	return ""
}

// ValidatePassword returns a message for the person who typed password, or "".
func ValidatePassword(username, password string) string {
	switch {
	case !utf8.ValidString(password):
		return "must be valid text"
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordBytes:
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	case username != "" && strings.EqualFold(password, username):
		return "must not be the username"
	}
	return ""
}

func validateRole(role string) string {
	if role != RoleAdmin && role != RoleUser {
		return "must be admin or user"
	}
	return ""
}

// Create adds a user.
func (s *Users) Create(ctx context.Context, actor audit.Actor, username, password, role string) (User, error) {
	fe := FieldErrors{}
	if m := ValidateUsername(username); m != "" {
		fe["username"] = m
	}
	if m := ValidatePassword(username, password); m != "" {
		fe["password"] = m
	}
	if m := validateRole(role); m != "" {
		fe["role"] = m
	}
	if err := fe.orNil(); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u, err := s.client.User.Create().
		SetUsername(username).
		SetPasswordHash(string(hash)).
		SetRole(user.Role(role)).
		Save(ctx)
	if ent.IsConstraintError(err) {
		return User{}, FieldErrors{"username": "is already taken"}
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if err := s.audit.Record(ctx, audit.For(actor, "user.create", target(username), "role "+role)); err != nil {
		return User{}, err
	}
	s.log.Info("user created", "username", username, "role", role, "by", actor.Name)
	return fromEnt(u), nil
}

func target(username string) string { return "user:" + username }

// List returns every user, by username.
func (s *Users) List(ctx context.Context) ([]User, error) {
	rows, err := s.client.User.Query().Order(ent.Asc(user.FieldUsername)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, 0, len(rows))
	for _, u := range rows {
		out = append(out, fromEnt(u))
	}
	return out, nil
}

// Count returns how many users exist.
func (s *Users) Count(ctx context.Context) (int, error) {
	return s.client.User.Query().Count(ctx)
}

// Get returns the user with id, or ErrNotFound.
func (s *Users) Get(ctx context.Context, id int) (User, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return User{}, err
	}
	return fromEnt(u), nil
}

// row reads the stored user with id, or ErrNotFound.
func (s *Users) row(ctx context.Context, id int) (*ent.User, error) {
	u, err := s.client.User.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// gate is the sign-in throttle in front of a check of something only the
// user knows: a *ThrottledError while the account or the address is locked
// out, else the keys to report the check's outcome under.
func (s *Users) gate(username, clientAddr string) (account, address string, err error) {
	account, address = accountKey(username), addressKey(clientAddr)
	if wait := s.throttle.wait(s.now(), account, address); wait > 0 {
		return "", "", &ThrottledError{RetryAfter: wait}
	}
	return account, address, nil
}

// Lookup returns the user named username, or ErrNotFound.
func (s *Users) Lookup(ctx context.Context, username string) (User, error) {
	u, err := s.client.User.Query().Where(user.UsernameEQ(username)).Only(ctx)
	if ent.IsNotFound(err) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user: %w", err)
	}
	return fromEnt(u), nil
}

// SetPassword replaces a user's password, ends all of their sessions and
// forgets their trusted browsers.
func (s *Users) SetPassword(ctx context.Context, actor audit.Actor, id int, password string) error {
	u, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if m := ValidatePassword(u.Username, password); m != "" {
		return FieldErrors{"password": m}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		if err := tx.User.UpdateOneID(id).SetPasswordHash(string(hash)).AddSessionEpoch(1).Exec(ctx); err != nil {
			return err
		}
		return forgetDevicesTx(ctx, tx, id)
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	s.log.Info("password changed", "username", u.Username, "by", actor.Name)
	return s.audit.Record(ctx, audit.For(actor, "user.password", target(u.Username), "password changed; sessions ended and trusted browsers forgotten"))
}

// ChangeOwnPassword replaces the password of user id, who proves they hold
// the current one. A wrong current password counts against the sign-in
// throttle of the account and of clientAddr, so a stolen session cannot guess
// it faster than a sign-in form could. All of the user's sessions end.
func (s *Users) ChangeOwnPassword(ctx context.Context, actor audit.Actor, id int, current, next, clientAddr string) error {
	u, err := s.row(ctx, id)
	if err != nil {
		return err
	}
	akey, ckey, err := s.gate(u.Username, clientAddr)
	if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(current)) != nil {
		s.throttle.fail(s.now(), akey, ckey)
		if err := s.audit.Record(ctx, audit.For(actor, "user.password.failed", target(u.Username), "wrong current password")); err != nil {
			s.log.Error("audit of a failed password change", "error", err)
		}
		return FieldErrors{"current_password": "is not your current password"}
	}
	s.throttle.succeed(akey)
	if m := ValidatePassword(u.Username, next); m != "" {
		return FieldErrors{"password": m}
	}
	if next == current {
		return FieldErrors{"password": "must differ from the current password"}
	}
	return s.SetPassword(ctx, actor, id, next)
}

// SetDisabled disables or enables a user. Disabling ends all of the user's
// sessions, forgets their trusted browsers and stops their API tokens; the
// last enabled admin cannot be disabled.
func (s *Users) SetDisabled(ctx context.Context, actor audit.Actor, id int, disabled bool) error {
	var name string
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u, err := tx.User.Get(ctx, id)
		if err != nil {
			return err
		}
		name = u.Username
		if disabled && u.Role == user.RoleAdmin && !u.Disabled {
			if err := lastAdminCheck(ctx, tx, id); err != nil {
				return err
			}
		}
		upd := tx.User.UpdateOneID(id).SetDisabled(disabled)
		if disabled {
			upd.AddSessionEpoch(1)
		}
		if err := upd.Exec(ctx); err != nil || !disabled {
			return err
		}
		return forgetDevicesTx(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	s.log.Info("user "+strings.TrimPrefix(action, "user.")+"d", "username", name, "by", actor.Name)
	return s.audit.Record(ctx, audit.For(actor, action, target(name), ""))
}

// EndSessions ends every browser session of a user (their API tokens and
// trusted browsers stay) and returns the new session epoch, so the caller
// can keep its own session by carrying it.
func (s *Users) EndSessions(ctx context.Context, actor audit.Actor, id int) (int, error) {
	u, err := s.client.User.UpdateOneID(id).AddSessionEpoch(1).Save(ctx)
	if ent.IsNotFound(err) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	s.log.Info("sessions ended", "username", u.Username, "by", actor.Name)
	return u.SessionEpoch, s.audit.Record(ctx, audit.For(actor, "user.sessions_ended", target(u.Username), ""))
}

// SetRole changes a user's role; the last enabled admin cannot be demoted.
func (s *Users) SetRole(ctx context.Context, actor audit.Actor, id int, role string) error {
	if m := validateRole(role); m != "" {
		return FieldErrors{"role": m}
	}
	var name, old string
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u, err := tx.User.Get(ctx, id)
		if err != nil {
			return err
		}
		name, old = u.Username, string(u.Role)
		if old == role {
			return nil
		}
		if u.Role == user.RoleAdmin && !u.Disabled {
			if err := lastAdminCheck(ctx, tx, id); err != nil {
				return err
			}
		}
		return tx.User.UpdateOneID(id).SetRole(user.Role(role)).Exec(ctx)
	})
	if err != nil || old == role {
		return err
	}
	s.log.Info("role changed", "username", name, "role", role, "by", actor.Name)
	return s.audit.Record(ctx, audit.For(actor, "user.role", target(name), old+" -> "+role))
}

func lastAdminCheck(ctx context.Context, tx *ent.Tx, exceptID int) error {
	n, err := tx.User.Query().Where(user.RoleEQ(user.RoleAdmin), user.DisabledEQ(false), user.IDNEQ(exceptID)).Count(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLastAdmin
	}
	return nil
}

func (s *Users) withTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		if ent.IsNotFound(err) {
			return ErrNotFound
		}
		return err
	}
	return tx.Commit()
}

// Authenticate checks a username and password from clientAddr. It answers
// ErrInvalidCredentials for an unknown user, a disabled user and a wrong
// password alike, spending the same bcrypt work on each, and a
// *ThrottledError while the account or the address is locked out. For a
// user with a second factor the sign-in is half done (User.TOTP):
// CheckTOTP completes it.
func (s *Users) Authenticate(ctx context.Context, username, password, clientAddr string) (User, error) {
	u, _, err := s.AuthenticateDevice(ctx, username, password, "", clientAddr)
	return u, err
}

// AuthenticateDevice is Authenticate from a browser that may carry a
// trusted-device token (the device cookie's value, or ""). needCode says
// the second factor is still to be checked with CheckTOTP. A right password
// with the token of one of the user's unexpired trusted browsers completes
// the sign-in without it; any other token (another user's, expired,
// unknown) changes nothing, so the answer is the same as without one. The
// token is looked at only once the password is right.
func (s *Users) AuthenticateDevice(ctx context.Context, username, password, device, clientAddr string) (_ User, needCode bool, _ error) {
	username = strings.ToLower(strings.TrimSpace(username))
	akey, ckey, err := s.gate(username, clientAddr)
	if err != nil {
		return User{}, false, err
	}
	var u *ent.User
	if usernamePattern.MatchString(username) {
		u, err = s.client.User.Query().Where(user.UsernameEQ(username)).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return User{}, false, fmt.Errorf("look up user: %w", err)
		}
	}
	hash := s.dummyHash
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	if u == nil || u.Disabled || !match {
		s.throttle.fail(s.now(), akey, ckey)
		if u != nil {
			actor := fromEnt(u).Actor(clientAddr)
			if err := s.audit.Record(ctx, audit.For(actor, "login.failed", target(u.Username), "")); err != nil {
				s.log.Error("audit of failed sign-in", "error", err)
			}
		}
		s.log.Info("sign-in failed", "client", clientAddr)
		return User{}, false, ErrInvalidCredentials
	}
	s.throttle.succeed(akey)
	if u.TotpEnabled {
		d, err := s.trustedDevice(ctx, u.ID, device, clientAddr)
		if err != nil {
			return User{}, false, err
		}
		if d != nil {
			out, err := s.signedIn(ctx, u, clientAddr, fmt.Sprintf("trusted browser %d, remembered %s; no second factor asked",
				d.ID, d.CreatedAt.UTC().Format(time.DateOnly)))
			return out, false, err
		}
		// Half a sign-in: CheckTOTP completes it.
		out := fromEnt(u)
		if err := s.audit.Record(ctx, audit.For(out.Actor(clientAddr), "login.password", target(u.Username), "second factor required")); err != nil {
			return User{}, false, err
		}
		return out, true, nil
	}
	out, err := s.signedIn(ctx, u, clientAddr, "")
	return out, false, err
}

// signedIn records a completed sign-in; detail says how, when it matters.
func (s *Users) signedIn(ctx context.Context, u *ent.User, clientAddr, detail string) (User, error) {
	now := s.now()
	if err := s.client.User.UpdateOneID(u.ID).SetLastLoginAt(now).Exec(ctx); err != nil {
		return User{}, fmt.Errorf("record sign-in: %w", err)
	}
	u.LastLoginAt = &now
	out := fromEnt(u)
	if err := s.audit.Record(ctx, audit.For(out.Actor(clientAddr), "login", target(u.Username), detail)); err != nil {
		return User{}, err
	}
	return out, nil
}

// IsFieldErrors reports whether err carries per-field messages, and returns them.
func IsFieldErrors(err error) (FieldErrors, bool) {
	var fe FieldErrors
	ok := errors.As(err, &fe)
	return fe, ok
}
