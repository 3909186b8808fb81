package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpenRoundTripAndRotation(t *testing.T) {
	t.Parallel()
	k1, _ := NewKey()
	k2, _ := NewKey()
	old, err := NewBox(k1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal([]byte("hunter2"), []byte("users.password"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("plaintext visible in sealed value")
	}
	rotated, err := NewBox(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rotated.Open(sealed, []byte("users.password"))
	if err != nil || string(pt) != "hunter2" {
		t.Fatalf("open after rotation: %q %v", pt, err)
	}
	resealed, _ := rotated.Seal(pt, []byte("users.password"))
	if id, _, _ := KeyIDOf(resealed); id != k2.ID {
		t.Fatalf("sealed with %q, want active key %q", id, k2.ID)
	}
	onlyNew, _ := NewBox(k2)
	if _, err := onlyNew.Open(sealed, []byte("users.password")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("want ErrNoKey, got %v", err)
	}
}

func TestOpenRejectsTamperingAndWrongContext(t *testing.T) {
	t.Parallel()
	k, _ := NewKey()
	b, _ := NewBox(k)
	sealed, _ := b.Seal([]byte("token"), []byte("a"))
	if _, err := b.Open(sealed, []byte("b")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other associated data: %v", err)
	}
	for i := range sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		if _, err := b.Open(c, []byte("a")); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for _, bad := range [][]byte{nil, []byte("gh1"), []byte("xx1\x01a"), sealed[:len(sealed)-1]} {
		if _, err := b.Open(bad, []byte("a")); err == nil {
			t.Fatalf("opened %q", bad)
		}
	}
	s, _ := b.SealString("x", "ctx")
	if v, err := b.OpenString(s, "ctx"); err != nil || v != "x" {
		t.Fatalf("string round trip: %q %v", v, err)
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	if _, _, err := LoadOrCreateKeyFile(path, false); err == nil {
		t.Fatal("missing key file without create should fail")
	}
	k, created, err := LoadOrCreateKeyFile(path, true)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", st.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKeyFile(path, true)
	if err != nil || created || k2.ID != k.ID || !bytes.Equal(k2.Secret, k.Secret) {
		t.Fatalf("reload: %v %v", created, err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateKeyFile(path, true); err == nil {
		t.Fatal("world-readable key file accepted")
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	k, _ := NewKey()
	got, err := ParseKey(k.Format())
	if err != nil || got.ID != k.ID || !bytes.Equal(got.Secret, k.Secret) {
		t.Fatalf("parse formatted: %v", err)
	}
	for _, bad := range []string{"", "abc", "id with space:" + k.Format()[len(k.ID)+1:], "00"} {
		if _, err := ParseKey(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}
