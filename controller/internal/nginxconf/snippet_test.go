package nginxconf

import (
	"slices"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want []string // words as "text" or "q:text" when quoted; punctuation as is
	}{
		{`add_header X "a b" always;`, []string{"add_header", "X", "q:a b", "always", ";"}},
		{`a 'it''s';`, nil},
		{`a "x\"y" 'p\'q' z\;w;`, []string{"a", `q:x"y`, "q:p'q", `z\;w`, ";"}},
		{"a b; # comment ; {\nc;", []string{"a", "b", ";", "c", ";"}},
		{"a#b;", []string{"a#b", ";"}},
		{`a "\t\n\\\x";`, []string{"a", "q:\t\n\\\\x", ";"}},
		{"server { listen 80; }", []string{"server", "{", "listen", "80", ";", "}"}},
		{`a "unterminated;`, nil},
	}
	for _, tt := range tests {
		toks, err := tokenize(tt.src)
		if tt.want == nil {
			if err == nil {
				t.Errorf("tokenize(%q) succeeded, want a syntax error", tt.src)
			}
			continue
		}
		if err != nil {
			t.Errorf("tokenize(%q): %v", tt.src, err)
			continue
		}
		var got []string
		for _, tk := range toks {
			s := tk.text
			if tk.quoted {
				s = "q:" + s
			}
			got = append(got, s)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("tokenize(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestCheckSnippet(t *testing.T) {
	t.Parallel()
	src := `gzip on;
proxy_buffering off;
add_header X-Test "a b";
proxy_set_header X-Tenant acme;
include /etc/nginx/evil.conf;
location /x { return 200; }
content_by_lua_block 'x';
root /srv;
js_content x;
perl_require x.pm;
server_name other;
proxy_set_header host evil;`
	snip, msgs := checkSnippet(src)
	wantMsgs := []string{
		`line 5: "include" would read files`,
		`line 6: "location" opens a block`,
		`line 7: "content_by_lua_block" runs Lua`,
		`line 8: "root" would serve files outside the managed tree`,
		`line 9: "js_content" runs JavaScript`,
		`line 10: "perl_require" runs Perl`,
		`line 11: directive "server_name" is not allowed in snippets`,
		`line 12: header "host" is set by Gatehouse`,
	}
	if len(msgs) != len(wantMsgs) {
		t.Fatalf("got %d messages, want %d: %q", len(msgs), len(wantMsgs), msgs)
	}
	for i, want := range wantMsgs {
		if !strings.HasPrefix(msgs[i], want) {
			t.Errorf("message %d = %q, want prefix %q", i, msgs[i], want)
		}
	}
	var server, proxy []string
	for _, d := range snip.server {
		server = append(server, d.String())
	}
	for _, d := range snip.proxy {
		proxy = append(proxy, d.String())
	}
	if want := []string{"gzip on;", `add_header X-Test "a b";`}; !slices.Equal(server, want) {
		t.Errorf("server directives = %q, want %q", server, want)
	}
	if want := []string{"proxy_buffering off;", "proxy_set_header X-Tenant acme;"}; !slices.Equal(proxy, want) {
		t.Errorf("proxy directives = %q, want %q", proxy, want)
	}
}

func TestQuoteArgRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "", "a b", `a"b`, `a\b`, "a;b", "{", "#x", "'", `\"`, "$host", "end\\"} {
		checkQuoteRoundTrip(t, s)
	}
}

func checkQuoteRoundTrip(t *testing.T, s string) {
	t.Helper()
	src := "d " + quoteArg(s) + ";"
	ds, err := parseConfig(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	if len(ds) != 1 || len(ds[0].args) != 1 || ds[0].args[0].text != s {
		t.Fatalf("quoteArg(%q) = %s does not read back as one argument", s, quoteArg(s))
	}
}

func FuzzQuoteArg(f *testing.F) {
	for _, s := range []string{"a", `"`, `\`, `\n`, "a b;c{d}#e", "'x'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// nginx translates \t \r \n escapes inside quotes, so a value carrying those escape
		// sequences after a lone backslash is still exact: quoteArg doubles the backslash.
		checkQuoteRoundTrip(t, s)
	})
}
