package controller

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCleanLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain line\n", "plain line"},
		{"crlf\r\n", "crlf"},
		{"tab\there", "tab here"},
		{"escape \x1b[31mred\x1b[0m", "escape \uFFFD[31mred\uFFFD[0m"},
		{"nul \x00 and bell \x07", "nul \uFFFD and bell \uFFFD"},
		{"bad utf-8 \xff\xfe", "bad utf-8 \uFFFD"},
		{"bidi \u202e stays visible text", "bidi \u202e stays visible text"},
		{"ünïcödé", "ünïcödé"},
	} {
		if got := cleanLine(tc.in); got != tc.want {
			t.Errorf("cleanLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogParams(t *testing.T) {
	for _, tc := range []struct {
		query     string
		wantBytes int
		wantQ     string
		bad       string
	}{
		{"", defaultLogBytes, "", ""},
		{"bytes=1000&q=+GET+/x+", 1000, "GET /x", ""},
		{"bytes=0", 0, "", "bytes"},
		{"bytes=999999999", 0, "", "bytes"},
		{"bytes=12abc", 0, "", "bytes"},
		{"q=" + strings.Repeat("a", maxLogFilter+1), 0, "", "q"},
		{"q=%00", 0, "", "q"},
		{"q=%ff", 0, "", "q"},
	} {
		r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
		n, q, fields := logParams(r)
		if tc.bad != "" {
			if fields[tc.bad] == "" {
				t.Errorf("%q: no message for %s (%v)", tc.query, tc.bad, fields)
			}
			continue
		}
		if len(fields) != 0 || n != tc.wantBytes || q != tc.wantQ {
			t.Errorf("%q = %d %q %v, want %d %q", tc.query, n, q, fields, tc.wantBytes, tc.wantQ)
		}
	}
}
