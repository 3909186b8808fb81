package ui

import "testing"

func TestUnicodeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"xn--bcher-kva.example", "bücher.example"},
		{"www.xn--bcher-kva.example", "www.bücher.example"},
		{"example.com", ""},
		{"xn--zz-.example", ""}, // not valid punycode: shown as stored only
		{"<b>xn--bcher-kva</b>", ""},
	} {
		if got := unicodeName(tc.in); got != tc.want {
			t.Errorf("unicodeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
