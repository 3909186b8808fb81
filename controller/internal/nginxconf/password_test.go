package nginxconf

import (
	"strings"
	"testing"
)

// The first, second and fourth vectors come from Drepper's "Unix crypt using SHA-256 and
// SHA-512" specification; the others were computed with Debian's crypt(3) (libxcrypt).
func TestSHA512CryptVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		salt     string
		rounds   int
		explicit bool
		pw       string
		want     string
	}{
		{"saltstring", 5000, false, "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"saltstringsaltstring", 10000, true, "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"jojo", 5000, true, "Just a test", "$6$rounds=5000$jojo$SwJJol/rukduyoAvgsjg/VfrCgSXPpWGr/5JezQaxepQCaXYCnbKWqxv0G.U7HTN.7vyqmn8zgVRITg/ZtGu30"},
		{"0123456789abcdef", 5000, false, "a very much longer password that is certainly more than sixty-four bytes long, with ünïcode", "$6$0123456789abcdef$veO2qzQLNkj26k8L1uDTDlETDzLRd/nmtEBnSC0MZKYGFb1DIvSQFp6HxiV1GKxwcHxUUSiRMFlqxUN4mcljn."},
		{"roundstoolow", 1000, true, "the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	}
	for _, tt := range tests {
		if got := sha512Crypt([]byte(tt.pw), tt.salt, tt.rounds, tt.explicit); got != tt.want {
			t.Errorf("sha512Crypt(%q, %q, %d) = %s, want %s", tt.pw, tt.salt, tt.rounds, got, tt.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	h1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("two hashes of one password are equal (%s): salt is not random", h1)
	}
	if !reCryptHash.MatchString(h1) || !strings.HasPrefix(h1, "$6$") {
		t.Errorf("hash %q is not a $6$ crypt hash the validator accepts", h1)
	}
	parts := strings.Split(h1, "$")
	if got := sha512Crypt([]byte("correct horse"), parts[2], 5000, false); got != h1 {
		t.Errorf("recomputing with the salt gives %s, want %s", got, h1)
	}
	for _, bad := range []string{"", strings.Repeat("x", 1025)} {
		if _, err := HashPassword(bad); err == nil {
			t.Errorf("HashPassword(len %d) succeeded, want an error", len(bad))
		}
	}
}
