package nginxconf

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"strconv"
	"strings"
)

const (
	cryptAlphabet      = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sha512DefaultRound = 5000
	maxPasswordLen     = 1024
)

// HashPassword returns a salted SHA-512 crypt hash ("$6$<salt>$<hash>", 5000 rounds) of pw,
// the format glibc's and libxcrypt's crypt(3) verify, and so nginx's auth_basic_user_file on
// Debian. Each call draws a fresh 16-character salt.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("password must not be empty")
	}
	if len(pw) > maxPasswordLen {
		return "", errors.New("password must be at most 1024 bytes long")
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	for i, b := range raw {
		salt[i] = cryptAlphabet[b&0x3f]
	}
	return sha512Crypt([]byte(pw), string(salt), sha512DefaultRound, false), nil
}

// sha512Crypt implements Ulrich Drepper's SHA-512 crypt ("$6$"). When explicit is set the
// round count is written into the result, as crypt(3) does for a "rounds=" salt.
func sha512Crypt(pw []byte, salt string, rounds int, explicit bool) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	s := []byte(salt)

	alt := sha512.New()
	alt.Write(pw)
	alt.Write(s)
	alt.Write(pw)
	b := alt.Sum(nil)

	a := sha512.New()
	a.Write(pw)
	a.Write(s)
	n := len(pw)
	for ; n > 64; n -= 64 {
		a.Write(b)
	}
	a.Write(b[:n])
	for n = len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b)
		} else {
			a.Write(pw)
		}
	}
	c := a.Sum(nil)

	dp := sha512.New()
	for range len(pw) {
		dp.Write(pw)
	}
	pBytes := repeatTo(dp.Sum(nil), len(pw))

	ds := sha512.New()
	for range 16 + int(c[0]) {
		ds.Write(s)
	}
	sBytes := repeatTo(ds.Sum(nil), len(s))

	h := sha512.New()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pBytes)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(pBytes)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pBytes)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString("$6$")
	if explicit {
		out.WriteString("rounds=")
		out.WriteString(strconv.Itoa(rounds))
		out.WriteByte('$')
	}
	out.WriteString(salt)
	out.WriteByte('$')
	order := [...][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13},
		{56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41},
	}
	for _, o := range order {
		encode24(&out, c[o[0]], c[o[1]], c[o[2]], 4)
	}
	encode24(&out, 0, 0, c[63], 2)
	return out.String()
}

func repeatTo(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out)+len(digest) <= n {
		out = append(out, digest...)
	}
	return append(out, digest[:n-len(out)]...)
}

func encode24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}
