package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/recoverycode"
	"github.com/gatehousehq/gatehouse/ent/user"
)

// Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps,
// six digits, as every authenticator app reads from an otpauth:// URI.
const (
	totpPeriod = 30
	totpDigits = 6
	// totpSkew is how many steps before or after now a code is accepted,
	// for phones whose clocks drift.
	totpSkew = 1
)

// Sealer seals secrets at rest; the controller's secrets box.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Errors of the second factor.
var (
	ErrInvalidCode   = errors.New("the code is wrong or was used already")
	ErrTOTPNotSetUp  = errors.New("two-factor sign-in is not being set up; start again")
	ErrTOTPNoSecrets = errors.New("two-factor sign-in needs the master key")
)

// totpCode is the code for secret at time step.
func totpCode(secret []byte, step int64) string {
	mac := hmac.New(sha1.New, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, bin%1_000_000)
}

// totpStep is the time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// normalizeCode strips the spaces people type into codes; it returns "" for
// anything that is not six digits.
func normalizeCode(code string) string {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if len(code) != totpDigits {
		return ""
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return code
}

// matchStep returns the step within the skew whose code equals code and is
// newer than last, comparing in constant time.
func matchStep(secret []byte, code string, now time.Time, last int64) (int64, bool) {
	code = normalizeCode(code)
	if code == "" {
		return 0, false
	}
	found := int64(0)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := totpStep(now) + d
		if hmac.Equal([]byte(totpCode(secret, step)), []byte(code)) && step > last && step > found {
			found = step
		}
	}
	return found, found != 0
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPSetup is a new second factor waiting for its first code.
type TOTPSetup struct {
	Secret string // base32, for typing into an app
	URI    string // otpauth:// URI, for a QR code
}

func totpAAD(id int) []byte { return []byte("user_totp:" + strconv.Itoa(id)) }

// BeginTOTP gives user id a new, not yet active, second-factor secret
// (sealed at rest) and returns it for their authenticator app. An active
// second factor stays in force until ConfirmTOTP replaces it.
func (s *Users) BeginTOTP(ctx context.Context, id int, issuer string) (TOTPSetup, error) {
	if s.sealer == nil {
		return TOTPSetup{}, ErrTOTPNoSecrets
	}
	u, err := s.row(ctx, id)
	if err != nil {
		return TOTPSetup{}, err
	}
	if u.TotpEnabled {
		return TOTPSetup{}, FieldErrors{"code": "two-factor sign-in is on already; turn it off first to set up another device"}
	}
	secret := make([]byte, 20)
	rand.Read(secret)
	sealed, err := s.sealer.Seal(secret, totpAAD(id))
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("seal the second factor: %w", err)
	}
	if err := s.client.User.UpdateOneID(id).SetTotpSecret(sealed).Exec(ctx); err != nil {
		return TOTPSetup{}, fmt.Errorf("store the second factor: %w", err)
	}
	return newSetup(issuer, u.Username, secret), nil
}

func newSetup(issuer, username string, secret []byte) TOTPSetup {
	enc := b32.EncodeToString(secret)
	label := url.PathEscape(issuer + ":" + username)
	q := url.Values{"secret": {enc}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {strconv.Itoa(totpDigits)}, "period": {strconv.Itoa(totpPeriod)}}
	return TOTPSetup{Secret: enc, URI: "otpauth://totp/" + label + "?" + q.Encode()}
}

// PendingTOTP returns the second factor user id is setting up, to show it
// again after a mistyped first code.
func (s *Users) PendingTOTP(ctx context.Context, id int, issuer string) (TOTPSetup, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return TOTPSetup{}, err
	}
	if u.TotpEnabled {
		return TOTPSetup{}, ErrTOTPNotSetUp
	}
	secret, err := s.secret(u)
	if err != nil {
		return TOTPSetup{}, err
	}
	return newSetup(issuer, u.Username, secret), nil
}

// secret opens user u's second-factor secret.
func (s *Users) secret(u *ent.User) ([]byte, error) {
	if s.sealer == nil {
		return nil, ErrTOTPNoSecrets
	}
	if len(u.TotpSecret) == 0 {
		return nil, ErrTOTPNotSetUp
	}
	return s.sealer.Open(u.TotpSecret, totpAAD(u.ID))
}

// ConfirmTOTP turns the second factor on once its first code checks out,
// and returns the user's recovery codes, to be shown this once.
func (s *Users) ConfirmTOTP(ctx context.Context, actor audit.Actor, id int, code string) ([]string, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.TotpEnabled {
		return nil, FieldErrors{"code": "two-factor sign-in is on already"}
	}
	secret, err := s.secret(u)
	if err != nil {
		return nil, err
	}
	step, ok := matchStep(secret, code, s.now(), 0)
	if !ok {
		return nil, FieldErrors{"code": "does not match; check the time on your phone and type the code it shows now"}
	}
	var codes []string
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		if err := tx.User.UpdateOneID(id).SetTotpEnabled(true).SetTotpLastStep(step).Exec(ctx); err != nil {
			return fmt.Errorf("turn the second factor on: %w", err)
		}
		codes, err = newRecoveryCodes(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("two-factor sign-in turned on", "username", u.Username, "by", actor.Name)
	return codes, s.audit.Record(ctx, audit.For(actor, "user.2fa.enable", target(u.Username), ""))
}

// recoveryCodes is how many recovery codes a user gets.
const recoveryCodes = 10

// newRecoveryCodes replaces user id's recovery codes with fresh ones:
// ten characters of base32 each (50 bits), stored as SHA-256 only.
func newRecoveryCodes(ctx context.Context, tx *ent.Tx, id int) ([]string, error) {
	if _, err := tx.RecoveryCode.Delete().Where(recoverycode.UserID(id)).Exec(ctx); err != nil {
		return nil, fmt.Errorf("drop old recovery codes: %w", err)
	}
	codes := make([]string, recoveryCodes)
	bulk := make([]*ent.RecoveryCodeCreate, recoveryCodes)
	for i := range codes {
		raw := make([]byte, 10)
		rand.Read(raw)
		c := strings.ToLower(b32.EncodeToString(raw))[:10]
		codes[i] = c[:5] + "-" + c[5:]
		bulk[i] = tx.RecoveryCode.Create().SetUserID(id).SetCodeHash(recoveryHash(c))
	}
	if err := tx.RecoveryCode.CreateBulk(bulk...).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store recovery codes: %w", err)
	}
	return codes, nil
}

// normalizeRecovery returns a typed recovery code without spaces, dashes or
// capitals, or "" when it cannot be one.
func normalizeRecovery(code string) string {
	code = strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code))
	if len(code) != 10 {
		return ""
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return ""
		}
	}
	return code
}

func recoveryHash(normalized string) []byte {
	h := sha256.Sum256([]byte("gatehouse recovery code:" + normalized))
	return h[:]
}

// useRecoveryCode spends one of user id's unused recovery codes; false when
// the code is not one of them or was used. Two sign-ins cannot spend the
// same code: the update names it unused.
func (s *Users) useRecoveryCode(ctx context.Context, id int, code string) (bool, error) {
	n := normalizeRecovery(code)
	if n == "" {
		return false, nil
	}
	used, err := s.client.RecoveryCode.Update().
		Where(recoverycode.UserID(id), recoverycode.CodeHash(recoveryHash(n)), recoverycode.UsedAtIsNil()).
		SetUsedAt(s.now()).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("spend a recovery code: %w", err)
	}
	return used == 1, nil
}

// RecoveryCodesLeft counts user id's unused recovery codes.
func (s *Users) RecoveryCodesLeft(ctx context.Context, id int) (int, error) {
	return s.client.RecoveryCode.Query().Where(recoverycode.UserID(id), recoverycode.UsedAtIsNil()).Count(ctx)
}

// RenewRecoveryCodes replaces user id's recovery codes after they prove it
// is them with their password; the new ones are shown this once.
func (s *Users) RenewRecoveryCodes(ctx context.Context, actor audit.Actor, id int, password, clientAddr string) ([]string, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return nil, err
	}
	if !u.TotpEnabled {
		return nil, FieldErrors{"current_password": "two-factor sign-in is off; there are no recovery codes to renew"}
	}
	akey, ckey, err := s.gate(u.Username, clientAddr)
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		s.throttle.fail(s.now(), akey, ckey)
		return nil, FieldErrors{"current_password": "is not your current password"}
	}
	var codes []string
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		codes, err = newRecoveryCodes(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return codes, s.audit.Record(ctx, audit.For(actor, "user.2fa.recovery_codes", target(u.Username), "renewed"))
}

// CheckTOTP is the second step of signing in: the code of user id's
// authenticator. Failures count against the sign-in throttle of the account
// and clientAddr, and a code is accepted once only.
func (s *Users) CheckTOTP(ctx context.Context, id int, code, clientAddr string) (User, error) {
	u, err := s.client.User.Get(ctx, id)
	if err != nil {
		return User{}, ErrInvalidCredentials
	}
	akey, ckey, err := s.gate(u.Username, clientAddr)
	if err != nil {
		return User{}, err
	}
	if u.Disabled || !u.TotpEnabled {
		return User{}, ErrInvalidCredentials
	}
	secret, err := s.secret(u)
	if err != nil {
		return User{}, err
	}
	step, ok := matchStep(secret, code, s.now(), u.TotpLastStep)
	recovery := false
	if ok {
		// Only one sign-in can take a step: the update names the old one.
		n, err := s.client.User.Update().Where(user.ID(id), user.TotpLastStepLT(step)).SetTotpLastStep(step).Save(ctx)
		if err != nil {
			return User{}, fmt.Errorf("record the code: %w", err)
		}
		ok = n == 1
	} else if ok, err = s.useRecoveryCode(ctx, id, code); err != nil {
		return User{}, err
	} else {
		recovery = ok
	}
	if recovery {
		left, _ := s.RecoveryCodesLeft(ctx, id)
		if err := s.audit.Record(ctx, audit.For(fromEnt(u).Actor(clientAddr), "login.recovery_code", target(u.Username),
			fmt.Sprintf("%d recovery codes left", left))); err != nil {
			s.log.Error("audit of a recovery code", "error", err)
		}
	}
	if !ok {
		s.throttle.fail(s.now(), akey, ckey)
		if err := s.audit.Record(ctx, audit.For(fromEnt(u).Actor(clientAddr), "login.2fa.failed", target(u.Username), "")); err != nil {
			s.log.Error("audit of a failed code", "error", err)
		}
		return User{}, ErrInvalidCode
	}
	s.throttle.succeed(akey)
	return s.signedIn(ctx, u, clientAddr, "")
}

// DisableTOTP turns user id's own second factor off; they prove it is them
// with their password and a current code.
func (s *Users) DisableTOTP(ctx context.Context, actor audit.Actor, id int, password, code, clientAddr string) error {
	u, err := s.row(ctx, id)
	if err != nil {
		return err
	}
	if !u.TotpEnabled {
		return nil
	}
	akey, ckey, err := s.gate(u.Username, clientAddr)
	if err != nil {
		return err
	}
	secret, err := s.secret(u)
	if err != nil {
		return err
	}
	fe := FieldErrors{}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		fe["current_password"] = "is not your current password"
	}
	if _, ok := matchStep(secret, code, s.now(), u.TotpLastStep); !ok {
		fe["code"] = "is wrong or was used already"
	}
	if len(fe) > 0 {
		s.throttle.fail(s.now(), akey, ckey)
		return fe
	}
	return s.clearTOTP(ctx, actor, u, "user.2fa.disable")
}

// ResetTOTP turns a user's second factor off for them, when they lost their
// phone: an admin's action, or the command line's.
func (s *Users) ResetTOTP(ctx context.Context, actor audit.Actor, id int) error {
	u, err := s.row(ctx, id)
	if err != nil {
		return err
	}
	return s.clearTOTP(ctx, actor, u, "user.2fa.reset")
}

func (s *Users) clearTOTP(ctx context.Context, actor audit.Actor, u *ent.User, action string) error {
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if err := tx.User.UpdateOneID(u.ID).ClearTotpSecret().SetTotpEnabled(false).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.RecoveryCode.Delete().Where(recoverycode.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		return forgetDevicesTx(ctx, tx, u.ID)
	})
	if err != nil {
		return fmt.Errorf("turn the second factor off: %w", err)
	}
	s.log.Info("two-factor sign-in turned off", "username", u.Username, "by", actor.Name)
	return s.audit.Record(ctx, audit.For(actor, action, target(u.Username), ""))
}
