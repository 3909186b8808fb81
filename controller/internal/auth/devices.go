package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/trusteddevice"
)

// A trusted device is a browser a user chose to remember when they signed
// in with their second factor: for TrustedDeviceLifetime the password alone
// signs them in from it. The browser keeps a random token in a cookie; the
// database keeps its SHA-256. Changing the password, turning the second
// factor off (or having it reset) and being disabled forget every one of a
// user's devices; renewing recovery codes does not.
const (
	TrustedDeviceLifetime = 30 * 24 * time.Hour
	// MaxTrustedDevices is how many devices a user can have remembered;
	// remembering one more forgets the oldest.
	MaxTrustedDevices = 20
	// maxDeviceToken bounds a cookie value before it is hashed.
	maxDeviceToken = 128
	maxUserAgent   = 200
	maxDeviceAddr  = 64
)

// TrustedDevice is a remembered browser as its owner sees it.
type TrustedDevice struct {
	ID         int
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	// Address is the client address it was remembered or last used from.
	Address string
	// Current says it is the browser that asked.
	Current bool
}

func deviceFromEnt(d *ent.TrustedDevice, current []byte) TrustedDevice {
	return TrustedDevice{
		ID: d.ID, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt, LastUsedAt: d.LastUsedAt,
		UserAgent: d.UserAgent, Address: d.IP, Current: current != nil && string(current) == string(d.TokenHash),
	}
}

// deviceHash is how a device token is stored: its SHA-256. Tokens carry
// 256 random bits, so a fast hash is enough. It returns nil for a value
// that cannot be a token.
func deviceHash(token string) []byte {
	if token == "" || len(token) > maxDeviceToken {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CleanUserAgent makes a User-Agent header fit to store and show: valid
// text without control characters, spaces trimmed, at most 200 bytes.
func CleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, ua)
	return truncate(strings.TrimSpace(ua), maxUserAgent)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func deviceTarget(username string, id int) string {
	return target(username) + " browser:" + strconv.Itoa(id)
}

// TrustDevice remembers the browser user id has just signed in from with
// their second factor, and returns the token for its cookie (shown this
// once, stored only as a hash) and the row. Beyond MaxTrustedDevices the
// oldest are forgotten.
func (s *Users) TrustDevice(ctx context.Context, id int, userAgent, clientAddr string) (string, TrustedDevice, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return "", TrustedDevice{}, err
	}
	if u.Disabled || !u.TotpEnabled {
		return "", TrustedDevice{}, FieldErrors{"remember": "only a sign-in with a second factor can remember a browser"}
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now().UTC()
	var d *ent.TrustedDevice
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.TrustedDevice.Delete().Where(trusteddevice.UserID(id), trusteddevice.ExpiresAtLTE(now)).Exec(ctx); err != nil {
			return fmt.Errorf("drop expired browsers: %w", err)
		}
		d, err = tx.TrustedDevice.Create().
			SetUserID(id).
			SetTokenHash(deviceHash(token)).
			SetCreatedAt(now).
			SetExpiresAt(now.Add(TrustedDeviceLifetime)).
			SetLastUsedAt(now).
			SetUserAgent(CleanUserAgent(userAgent)).
			SetIP(truncate(clientAddr, maxDeviceAddr)).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("remember the browser: %w", err)
		}
		old, err := tx.TrustedDevice.Query().Where(trusteddevice.UserID(id)).
			Order(ent.Desc(trusteddevice.FieldCreatedAt), ent.Desc(trusteddevice.FieldID)).
			Offset(MaxTrustedDevices).IDs(ctx)
		if err != nil {
			return fmt.Errorf("find the oldest browsers: %w", err)
		}
		if len(old) > 0 {
			if _, err := tx.TrustedDevice.Delete().Where(trusteddevice.IDIn(old...)).Exec(ctx); err != nil {
				return fmt.Errorf("forget the oldest browsers: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", TrustedDevice{}, err
	}
	if err := s.audit.Record(ctx, audit.For(fromEnt(u).Actor(clientAddr), "user.device.trust", deviceTarget(u.Username, d.ID),
		"second factor skipped at sign-in until "+d.ExpiresAt.Format(time.RFC3339))); err != nil {
		return "", TrustedDevice{}, err
	}
	return token, deviceFromEnt(d, nil), nil
}

// trustedDevice finds user id's unexpired device with token and records
// its use from clientAddr. Another user's token, an unknown one and an
// expired one (which is deleted) all answer nil.
func (s *Users) trustedDevice(ctx context.Context, id int, token, clientAddr string) (*ent.TrustedDevice, error) {
	hash := deviceHash(token)
	if hash == nil {
		return nil, nil
	}
	d, err := s.client.TrustedDevice.Query().Where(trusteddevice.TokenHash(hash), trusteddevice.UserID(id)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up a trusted browser: %w", err)
	}
	now := s.now().UTC()
	if !now.Before(d.ExpiresAt) {
		if _, err := s.client.TrustedDevice.Delete().Where(trusteddevice.ID(d.ID)).Exec(ctx); err != nil {
			return nil, fmt.Errorf("delete an expired trusted browser: %w", err)
		}
		return nil, nil
	}
	// The update names the user and expiry again, so a browser forgotten
	// meanwhile is not used.
	n, err := s.client.TrustedDevice.Update().
		Where(trusteddevice.ID(d.ID), trusteddevice.UserID(id), trusteddevice.ExpiresAtGT(now)).
		SetLastUsedAt(now).SetIP(truncate(clientAddr, maxDeviceAddr)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record a trusted browser's use: %w", err)
	}
	if n != 1 {
		return nil, nil
	}
	return d, nil
}

// TrustedDevices lists user id's unexpired remembered browsers, most
// recently used first; current, a device cookie's value, marks the one
// asking.
func (s *Users) TrustedDevices(ctx context.Context, id int, current string) ([]TrustedDevice, error) {
	rows, err := s.client.TrustedDevice.Query().
		Where(trusteddevice.UserID(id), trusteddevice.ExpiresAtGT(s.now().UTC())).
		Order(ent.Desc(trusteddevice.FieldLastUsedAt), ent.Desc(trusteddevice.FieldID)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list trusted browsers: %w", err)
	}
	hash := deviceHash(current)
	out := make([]TrustedDevice, 0, len(rows))
	for _, d := range rows {
		out = append(out, deviceFromEnt(d, hash))
	}
	return out, nil
}

// ForgetDevice forgets user id's remembered browser deviceID, so the next
// sign-in from it asks for a code again. Another user's device is
// ErrNotFound.
func (s *Users) ForgetDevice(ctx context.Context, actor audit.Actor, id, deviceID int) error {
	u, err := s.row(ctx, id)
	if err != nil {
		return err
	}
	n, err := s.client.TrustedDevice.Delete().Where(trusteddevice.ID(deviceID), trusteddevice.UserID(id)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("forget a trusted browser: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return s.audit.Record(ctx, audit.For(actor, "user.device.forget", deviceTarget(u.Username, deviceID), ""))
}

// ForgetDevices forgets all of user id's remembered browsers and returns
// how many there were.
func (s *Users) ForgetDevices(ctx context.Context, actor audit.Actor, id int) (int, error) {
	u, err := s.row(ctx, id)
	if err != nil {
		return 0, err
	}
	n, err := s.client.TrustedDevice.Delete().Where(trusteddevice.UserID(id)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("forget trusted browsers: %w", err)
	}
	return n, s.audit.Record(ctx, audit.For(actor, "user.device.forget_all", target(u.Username), fmt.Sprintf("%d browsers", n)))
}

// PruneTrustedDevices deletes every expired remembered browser and returns
// how many.
func (s *Users) PruneTrustedDevices(ctx context.Context) (int, error) {
	n, err := s.client.TrustedDevice.Delete().Where(trusteddevice.ExpiresAtLTE(s.now().UTC())).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete expired trusted browsers: %w", err)
	}
	return n, nil
}

// forgetDevicesTx deletes all of user id's remembered browsers inside tx,
// as part of a change that must end them.
func forgetDevicesTx(ctx context.Context, tx *ent.Tx, id int) error {
	if _, err := tx.TrustedDevice.Delete().Where(trusteddevice.UserID(id)).Exec(ctx); err != nil {
		return fmt.Errorf("forget trusted browsers: %w", err)
	}
	return nil
}
