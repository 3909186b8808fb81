package shellquote

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"abc", "abc"},
		{"/usr/local/bin/gatehouse-agent", "/usr/local/bin/gatehouse-agent"},
		{"-n", "-n"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$(touch /tmp/x)", "'$(touch /tmp/x)'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"a\nb", "'a\nb'"},
		{"~root", "'~root'"},
		{"*", "'*'"},
		{"a=b", "'a=b'"},
		{"#x", "'#x'"},
		{"if", "'if'"},
		{"!", "'!'"},
		{"{", "'{'"},
		{`\`, `'\'`},
		{"\xff\xfe", "'\xff\xfe'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuotePanicsOnNUL(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("Quote accepted a NUL byte")
		}
	}()
	Quote("a\x00b")
}

func TestJoin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		argv    []string
		want    string
		wantErr error
	}{
		{name: "plain", argv: []string{"sudo", "-n", "--", "id"}, want: "sudo -n -- id"},
		{name: "mixed", argv: []string{"printf", "%s", "a b"}, want: "printf %s 'a b'"},
		{name: "nul", argv: []string{"echo", "a\x00"}, wantErr: ErrNUL},
		{name: "empty", argv: nil},
	}
	for _, tt := range tests {
		got, err := Join(tt.argv...)
		switch {
		case tt.wantErr != nil:
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
		case len(tt.argv) == 0:
			if err == nil {
				t.Errorf("%s: empty argv accepted", tt.name)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case got != tt.want:
			t.Errorf("%s: Join = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// roundTrip runs `printf %s <quoted>` through the real sh and returns what it
// printed.
func roundTrip(t testing.TB, s string) []byte {
	t.Helper()
	line, err := Join("printf", "%s", s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = t.TempDir() // a stray glob or redirect would land here, not in the repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v: %s", line, err, stderr.String())
	}
	return out
}

var hostile = []string{
	"",
	" ",
	"'",
	"''",
	`"`,
	`\`,
	`\'`,
	"$(touch pwned)",
	"`touch pwned`",
	"$HOME",
	"${HOME}",
	"; touch pwned",
	"| touch pwned",
	"&& touch pwned",
	"> pwned",
	"a\nb",
	"\n",
	"\t",
	"*",
	"?",
	"[a]",
	"~",
	"~root",
	"#comment",
	"a=b",
	"if",
	"!",
	"{",
	"-n",
	"%s",
	"\\n",
	"\x01\x7f\x80\xff",
	"héllo wörld",
	strings.Repeat("'", 50),
}

func TestQuoteRoundTripThroughSh(t *testing.T) {
	t.Parallel()
	for _, s := range hostile {
		if got := roundTrip(t, s); string(got) != s {
			t.Errorf("sh printed %q for %q (quoted %s)", got, s, Quote(s))
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Add("a\x00b")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			if _, err := Join(s); !errors.Is(err, ErrNUL) {
				t.Fatalf("Join(%q) err = %v, want ErrNUL", s, err)
			}
			return
		}
		if got := roundTrip(t, s); string(got) != s {
			t.Fatalf("sh printed %q for %q (quoted %s)", got, s, Quote(s))
		}
	})
}
