// Package secrets seals values for storage at rest with AES-256-GCM.
//
// A sealed value carries the id of the key that sealed it, so keys can be
// rotated: a Box holds one active key for sealing and any number of older
// keys for opening. The format is
//
//	"gh1" | key id length (1 byte) | key id | 12-byte nonce | ciphertext+tag
//
// and the associated data (for example the table and column the value
// belongs to) is bound into the tag, so a sealed value copied into another
// field does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

const magic = "gh1"

// KeySize is the length of a master key in bytes.
const KeySize = 32

// ErrNoKey means a sealed value names a key the Box does not hold.
var ErrNoKey = errors.New("secrets: the key that sealed this value is not loaded")

// ErrCorrupt means a sealed value was altered, truncated or bound to other associated data.
var ErrCorrupt = errors.New("secrets: sealed value is corrupt or belongs elsewhere")

// Key is a master key with its id.
type Key struct {
	ID     string
	Secret []byte
}

// Box seals and opens values.
type Box struct {
	active string
	aeads  map[string]cipher.AEAD
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// NewBox returns a Box that seals with active and opens with active and older.
func NewBox(active Key, older ...Key) (*Box, error) {
	b := &Box{active: active.ID, aeads: map[string]cipher.AEAD{}}
	for _, k := range append([]Key{active}, older...) {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("secrets: key id %q must be 1-32 letters, digits, '-' or '_'", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("secrets: key %q must be %d bytes, got %d", k.ID, KeySize, len(k.Secret))
		}
		blk, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		a, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, err
		}
		b.aeads[k.ID] = a
	}
	return b, nil
}

// ActiveKeyID returns the id of the key used for sealing.
func (b *Box) ActiveKeyID() string { return b.active }

// Seal encrypts plaintext bound to aad.
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	a := b.aeads[b.active]
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(magic)+1+len(b.active)+len(nonce)+len(plaintext)+a.Overhead())
	out = append(out, magic...)
	out = append(out, byte(len(b.active)))
	out = append(out, b.active...)
	out = append(out, nonce...)
	return a.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value produced by Seal with the same aad.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	id, rest, err := KeyIDOf(sealed)
	if err != nil {
		return nil, err
	}
	a, ok := b.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrNoKey, id)
	}
	if len(rest) < a.NonceSize()+a.Overhead() {
		return nil, ErrCorrupt
	}
	pt, err := a.Open(nil, rest[:a.NonceSize()], rest[a.NonceSize():], aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// SealString seals s and returns it as base64 text, for text columns.
func (b *Box) SealString(s, aad string) (string, error) {
	out, err := b.Seal([]byte(s), []byte(aad))
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(out), nil
}

// OpenString reverses SealString.
func (b *Box) OpenString(s, aad string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return "", ErrCorrupt
	}
	pt, err := b.Open(raw, []byte(aad))
	return string(pt), err
}

// KeyIDOf returns the key id a sealed value names and the bytes after it.
func KeyIDOf(sealed []byte) (string, []byte, error) {
	if len(sealed) < len(magic)+1 || string(sealed[:len(magic)]) != magic {
		return "", nil, ErrCorrupt
	}
	n := int(sealed[len(magic)])
	rest := sealed[len(magic)+1:]
	if n == 0 || len(rest) < n {
		return "", nil, ErrCorrupt
	}
	return string(rest[:n]), rest[n:], nil
}

// NewKey returns a fresh random key whose id is derived from its content.
func NewKey() (Key, error) {
	s := make([]byte, KeySize)
	if _, err := rand.Read(s); err != nil {
		return Key{}, err
	}
	return Key{ID: deriveID(s), Secret: s}, nil
}

func deriveID(secret []byte) string {
	h := sha256.Sum256(append([]byte("gatehouse key id:"), secret...))
	return hex.EncodeToString(h[:4])
}

// ParseKey reads a key from its text form: 64 hex digits or base64 of 32
// bytes, optionally prefixed by "ID:" to name it.
func ParseKey(text string) (Key, error) {
	text = strings.TrimSpace(text)
	id := ""
	if i := strings.IndexByte(text, ':'); i > 0 {
		id, text = text[:i], text[i+1:]
	}
	var secret []byte
	if b, err := hex.DecodeString(text); err == nil && len(b) == KeySize {
		secret = b
	} else if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == KeySize {
		secret = b
	} else {
		return Key{}, fmt.Errorf("secrets: a master key is %d bytes written as 64 hex digits or base64", KeySize)
	}
	if id == "" {
		id = deriveID(secret)
	}
	if !keyIDPattern.MatchString(id) {
		return Key{}, fmt.Errorf("secrets: key id %q must be 1-32 letters, digits, '-' or '_'", id)
	}
	return Key{ID: id, Secret: secret}, nil
}

// Format writes a key in the form ParseKey reads.
func (k Key) Format() string { return k.ID + ":" + hex.EncodeToString(k.Secret) }

// LoadOrCreateKeyFile reads the key file at path, or creates it (0600, in a
// 0700 directory) with a new key when it does not exist and create is true.
// It refuses a key file that others can read.
func LoadOrCreateKeyFile(path string, create bool) (k Key, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return Key{}, false, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return Key{}, false, fmt.Errorf("master key file %s is readable by others (mode %o); run chmod 600 %s", path, st.Mode().Perm(), path)
		}
		k, err := ParseKey(string(b))
		if err != nil {
			return Key{}, false, fmt.Errorf("master key file %s: %w", path, err)
		}
		return k, false, nil
	case errors.Is(err, fs.ErrNotExist) && create:
		k, err := NewKey()
		if err != nil {
			return Key{}, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return Key{}, false, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return Key{}, false, fmt.Errorf("create master key file: %w", err)
		}
		if _, err := f.WriteString(k.Format() + "\n"); err != nil {
			f.Close()
			return Key{}, false, err
		}
		if err := f.Close(); err != nil {
			return Key{}, false, err
		}
		return k, true, nil
	default:
		return Key{}, false, err
	}
}
