package nginx

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Challenge token limits: RFC 8555 tokens are base64url with at least 128
// bits of entropy (22 characters); Let's Encrypt sends 43.
const (
	minTokenLen   = 22
	maxTokenLen   = 128
	maxKeyAuthLen = 512
)

// ChallengeRoot is the directory to use as nginx `root` for
// /.well-known/acme-challenge/ locations.
func (a *Applier) ChallengeRoot() string { return filepath.Join(a.cfg.Dir, acmeDir) }

// PlaceChallenge publishes an HTTP-01 key authorization under
// ChallengeRoot()/.well-known/acme-challenge/<token>, atomically.
func (a *Applier) PlaceChallenge(token, keyAuth string) error {
	var p problems
	if msg := checkToken(token); msg != "" {
		p.add(fmt.Sprintf("token %q: %s", token, msg))
	} else if msg := checkKeyAuth(token, keyAuth); msg != "" {
		p.add("key authorization: " + msg)
	}
	if err := p.err(); err != nil {
		return fmt.Errorf("place challenge: %w", err)
	}
	a.challengeMu.Lock()
	defer a.challengeMu.Unlock()
	dir, err := a.openChallengeDir()
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	tmp := ".tmp-" + token
	if err := unix.Unlinkat(dir, tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("place challenge: remove stale temporary file: %w", err)
	}
	if err := writeNew(dir, tmp, []byte(keyAuth), 0o644); err != nil {
		return fmt.Errorf("place challenge: %w", err)
	}
	if err := unix.Renameat(dir, tmp, dir, token); err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
		return fmt.Errorf("place challenge: %w", err)
	}
	return nil
}

// RemoveChallenge deletes a published challenge; removing one that is not
// there is not an error.
func (a *Applier) RemoveChallenge(token string) error {
	if msg := checkToken(token); msg != "" {
		return fmt.Errorf("remove challenge: %w", &InvalidError{Problems: []string{fmt.Sprintf("token %q: %s", token, msg)}})
	}
	a.challengeMu.Lock()
	defer a.challengeMu.Unlock()
	dir, err := a.openChallengeDir()
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := unix.Unlinkat(dir, token, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove challenge: %w", err)
	}
	return nil
}

func (a *Applier) openChallengeDir() (int, error) {
	root, err := a.openRoot()
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	return openDirAt(root, challengeRel)
}

func checkToken(token string) string {
	if len(token) < minTokenLen || len(token) > maxTokenLen {
		return fmt.Sprintf("must be %d to %d characters long", minTokenLen, maxTokenLen)
	}
	if !isBase64URL(token) {
		return "only base64url characters (A-Z a-z 0-9 - _) are allowed"
	}
	return ""
}

// checkKeyAuth requires token "." thumbprint, the thumbprint base64url.
func checkKeyAuth(token, keyAuth string) string {
	if len(keyAuth) > maxKeyAuthLen {
		return fmt.Sprintf("longer than %d characters", maxKeyAuthLen)
	}
	thumb, ok := strings.CutPrefix(keyAuth, token+".")
	if !ok {
		return "must be the token, a dot and the account key thumbprint"
	}
	if thumb == "" || !isBase64URL(thumb) {
		return "the thumbprint after the dot must be base64url characters"
	}
	return ""
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
