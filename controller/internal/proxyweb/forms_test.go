package proxyweb

import "testing"

func TestCacheLifetimeField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
		show string
	}{
		{"", 0, false, ""},
		{"0", 0, false, ""},
		{"90", 90, false, "90s"},
		{"90s", 90, false, "90s"},
		{"10m", 600, false, "10m"},
		{" 2H ", 7200, false, "2h"},
		{"7d", 7 * 86400, false, "7d"},
		{"120m", 7200, false, "2h"},
		{"1 week", 0, true, ""},
		{"1w", 0, true, ""},
		{"-5m", 0, true, ""},
		{"m", 0, true, ""},
		{"1.5h", 0, true, ""},
		{"10m;", 0, true, ""},
		{"99999999d", 0, true, ""},
	} {
		got, err := parseTTL(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseTTL(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
			continue
		}
		if !tc.bad && formatTTL(got) != tc.show {
			t.Errorf("formatTTL(%d) = %q, want %q", got, formatTTL(got), tc.show)
		}
	}
}
