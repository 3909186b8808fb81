package nginx

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseUpstreamConf(t *testing.T) {
	t.Parallel()
	type block = upstreamBlock
	tests := []struct {
		name     string
		src      string
		want     []block
		proxies  []streamProxy
		problems []string // substrings, one per problem, in order
	}{
		{
			name: "rendered http upstream",
			src: `# Managed by Gatehouse; changes are overwritten by the next release.
upstream app {
    least_conn;
    server 127.0.0.1:8001 weight=5 max_fails=3 fail_timeout=30s;
    server [::1]:8003;
    server backend.internal:8002 backup;
    server 127.0.0.2:8001 down;
    keepalive 32;
}
`,
			want: []block{{"app", []string{"127.0.0.1:8001", "[::1]:8003", "backend.internal:8002"}}},
		},
		{
			name: "hash method with a quoted key",
			src: `upstream hashed {
    hash "$host$request_uri" consistent;
    server 127.0.0.1:8006;
}`,
			want: []block{{"hashed", []string{"127.0.0.1:8006"}}},
		},
		{
			name: "quoted name as the renderer's q writes it",
			src:  "upstream \"we\\\"ird\\\\name\" {\n    server 127.0.0.1:1;\n}\nupstream 'single q' { server 127.0.0.1:2; }\n",
			want: []block{{`we"ird\name`, []string{"127.0.0.1:1"}}, {"single q", []string{"127.0.0.1:2"}}},
		},
		{
			name: "rendered stream file",
			src: `# Managed by Gatehouse; changes are overwritten by the next release.
upstream gatehouse_stream_postgres {
    hash $remote_addr consistent;
    server 127.0.0.1:5432;
    server 127.0.0.1:5433;
}

server {
    listen 15432;
    listen [::]:15432;
    proxy_pass gatehouse_stream_postgres;
    proxy_connect_timeout 3s;
    proxy_timeout 600s;
}
`,
			want:    []block{{"gatehouse_stream_postgres", []string{"127.0.0.1:5432", "127.0.0.1:5433"}}},
			proxies: []streamProxy{{upstream: "gatehouse_stream_postgres"}},
		},
		{
			name: "udp stream server",
			src: `upstream gatehouse_stream_dns {
    server 127.0.0.1:5353;
}
server {
    listen 53 udp;
    listen [::]:53 udp;
    proxy_pass gatehouse_stream_dns;
}`,
			want:    []block{{"gatehouse_stream_dns", []string{"127.0.0.1:5353"}}},
			proxies: []streamProxy{{upstream: "gatehouse_stream_dns", udpOnly: true}},
		},
		{
			name: "domain file has no upstreams",
			src: `server {
    listen 80;
    server_name a.example;
    location / { proxy_pass http://app; }
}`,
		},
		{
			name: "only top-level blocks count",
			src: `http {
    upstream inner { server 127.0.0.1:9; }
}
upstream outer {
    server 127.0.0.1:10;
    zone { server 127.0.0.1:11; }
    server 127.0.0.1:12;
}`,
			want: []block{{"outer", []string{"127.0.0.1:10", "127.0.0.1:12"}}},
		},
		{
			name: "comments, escapes and variables",
			src: `upstream c { # server 127.0.0.1:1;
    # server 127.0.0.1:2;
    server 127.0.0.1:3#x;
    server "127.0.0.1:4";
    hash ${host}x;
    server 127.0.0.1:5 ; }`,
			want:     []block{{"c", []string{"127.0.0.1:4", "127.0.0.1:5"}}},
			problems: []string{`server "127.0.0.1:3#x": not host:port`},
		},
		{
			name: "hostile addresses",
			src: `upstream h {
    server unix:/tmp/x.sock;
    server backend;
    server 127.0.0.1;
    server 127.0.0.1:0;
    server 127.0.0.1:65536;
    server 127.0.0.1:+80;
    server 127.0.0.1:080;
    server http://127.0.0.1:80;
    server ::1:80;
    server [fe80::1%eth0]:80;
    server [127.0.0.1]:80;
    server ba_d.example:80;
    server -x..y:80;
    server 300.1.1.1:80;
    server 10.1:80;
    server "a b:80";
    server "$(reboot):80";
    server ok.example.:443;
    server 127.0.0.1:9 slow_start=1s;
}`,
			want: []block{{"h", []string{"ok.example.:443", "127.0.0.1:9"}}},
			problems: []string{"unix:/tmp/x.sock", `"backend"`, `"127.0.0.1"`, "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:080",
				"http://127.0.0.1:80", "::1:80", "fe80::1%eth0", "[127.0.0.1]:80", "ba_d.example:80", "-x..y:80", "300.1.1.1:80", "10.1:80", "a b:80", "$(reboot):80"},
		},
		{
			name:     "control characters in a name",
			src:      "upstream \"a\\nb\" { server 127.0.0.1:1; }\nupstream ok { server 127.0.0.1:2; }",
			want:     []block{{"ok", []string{"127.0.0.1:2"}}},
			problems: []string{"control or unprintable"},
		},
		{
			name:     "overlong name",
			src:      "upstream " + strings.Repeat("n", 256) + " { server 127.0.0.1:1; }",
			problems: []string{"longer than 255"},
		},
		{
			name:     "unterminated quote keeps earlier blocks",
			src:      "upstream a { server 127.0.0.1:1; }\nupstream b { server \"127.0.0.1:2; }\n",
			want:     []block{{"a", []string{"127.0.0.1:1"}}},
			problems: []string{"line 2: unterminated quoted string"},
		},
		{
			name:     "unclosed block is dropped",
			src:      "upstream a { server 127.0.0.1:1;\n",
			problems: []string{"unexpected end of file"},
		},
		{
			name:     "stray close brace",
			src:      "}\nupstream a { server 127.0.0.1:1; }",
			problems: []string{`line 1: unexpected "}"`},
		},
		{
			name:     "text after a quoted string",
			src:      `upstream "a"b { server 127.0.0.1:1; }`,
			problems: []string{`unexpected 'b' after a quoted string`},
		},
		{
			name: "upstream directive without a block or with two names",
			src:  "upstream a;\nupstream b c { server 127.0.0.1:1; }\nupstream { server 127.0.0.1:2; }",
		},
		{
			name: "deep nesting and binary noise",
			src:  strings.Repeat("a {", 5000) + strings.Repeat("}", 5000) + "\x00\xff\xfe;\nupstream z { server 127.0.0.1:1; }",
			want: []block{{"z", []string{"127.0.0.1:1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseUpstreamConf([]byte(tt.src))
			if !reflect.DeepEqual(got.upstreams, tt.want) {
				t.Errorf("upstreams = %#v, want %#v", got.upstreams, tt.want)
			}
			if !reflect.DeepEqual(got.proxies, tt.proxies) {
				t.Errorf("proxies = %#v, want %#v", got.proxies, tt.proxies)
			}
			if len(got.problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d matching %q", got.problems, len(tt.problems), tt.problems)
			}
			for i, p := range tt.problems {
				if !strings.Contains(got.problems[i], p) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got.problems[i], p)
				}
			}
		})
	}
}

// managedDir lays out a managed directory as the applier does: the files
// under releases/<rev>/ and `current` pointing there.
func managedDir(t *testing.T, rev int, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gatehouse")
	rel := filepath.Join(dir, "releases", fmt.Sprint(rev))
	for p, content := range files {
		full := filepath.Join(rel, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("releases/"+fmt.Sprint(rev), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadUpstreams(t *testing.T) {
	t.Parallel()
	dir := managedDir(t, 7, map[string]string{
		"http/00-gatehouse.conf":  "map $http_upgrade $x {\n    default upgrade;\n    \"\" \"\";\n}\n",
		"http/upstream-b.conf":    "upstream b {\n    server 127.0.0.1:2;\n    server 127.0.0.1:1;\n}\n",
		"http/upstream-a.conf":    "upstream a {\n    server 127.0.0.1:1;\n    server 127.0.0.1:1;\n    server 127.0.0.9:9 down;\n}\n",
		"http/domain-x.conf":      "server {\n    listen 80;\n    location / { proxy_pass http://a; }\n}\n",
		"http/notes.txt":          "upstream txt { server 127.0.0.1:3; }",
		"http/.hidden.conf":       "upstream hidden { server 127.0.0.1:4; }",
		"http/sub/nested.conf":    "upstream nested { server 127.0.0.1:5; }",
		"stream/stream-tcp.conf":  "upstream gatehouse_stream_tcp {\n    server localhost:6;\n}\n\nserver {\n    listen 8443;\n    proxy_pass gatehouse_stream_tcp;\n}\n",
		"stream/stream-dns.conf":  "upstream gatehouse_stream_dns {\n    server 127.0.0.1:53;\n}\n\nserver {\n    listen 53 udp;\n    proxy_pass gatehouse_stream_dns;\n}\n",
		"stream/stream-both.conf": "upstream gatehouse_stream_both { server 127.0.0.1:7; }\nserver { listen 70 udp; proxy_pass gatehouse_stream_both; }\nserver { listen 70; proxy_pass gatehouse_stream_both; }\n",
		"stream/stream-bad.conf":  "upstream gatehouse_stream_bad { server nope; }\n",
	})
	got, err := ReadUpstreams(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []UpstreamServer{
		{"a", "127.0.0.1:1"},
		{"b", "127.0.0.1:2"},
		{"b", "127.0.0.1:1"},
		{"gatehouse_stream_both", "127.0.0.1:7"},
		{"gatehouse_stream_tcp", "localhost:6"},
	}
	if got.Revision != 7 || !reflect.DeepEqual(got.Servers, want) {
		t.Fatalf("ReadUpstreams = rev %d %v, want rev 7 %v", got.Revision, got.Servers, want)
	}
	if a := got.Addresses(); !reflect.DeepEqual(a, []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:7", "localhost:6"}) {
		t.Fatalf("Addresses = %v", a)
	}
	if len(got.Ignored) != 1 || !strings.Contains(got.Ignored[0], `stream/stream-bad.conf: line 1: upstream "gatehouse_stream_bad": server "nope"`) {
		t.Fatalf("Ignored = %q", got.Ignored)
	}

	// Past MaxUpstreamServers (upstream, address) pairs, the rest are left out.
	var blocks strings.Builder
	for i := range MaxUpstreamServers + 5 {
		fmt.Fprintf(&blocks, "upstream b%d { server 127.0.0.1:1; }\n", i)
	}
	got, err = ReadUpstreams(managedDir(t, 1, map[string]string{"http/blocks.conf": blocks.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != MaxUpstreamServers || len(got.Ignored) != 5 || !strings.Contains(got.Ignored[0], `upstream "b2048": server 127.0.0.1:1: past 2048 servers`) {
		t.Fatalf("%d servers, Ignored = %q", len(got.Servers), got.Ignored)
	}
}

func TestReadUpstreamsWithoutRelease(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent")
	empty := t.TempDir()
	for _, dir := range []string{missing, empty} {
		got, err := ReadUpstreams(dir)
		if err != nil || got.Revision != 0 || len(got.Servers) != 0 || len(got.Ignored) != 0 {
			t.Fatalf("ReadUpstreams(%s) = %+v, %v; want nothing", dir, got, err)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("managed dir created: %v", err)
	}
	// An empty release (no http/ or stream/) has no servers.
	got, err := ReadUpstreams(managedDir(t, 3, nil))
	if err != nil || got.Revision != 3 || len(got.Servers) != 0 {
		t.Fatalf("empty release: %+v, %v", got, err)
	}
}

// Nothing outside the managed directory is read through a symlink, and a
// current link that does not name a managed release is an error.
func TestReadUpstreamsFollowsNoSymlink(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	evil := "upstream evil { server 127.0.0.1:666; }\n"
	if err := os.WriteFile(filepath.Join(outside, "upstream-evil.conf"), []byte(evil), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("file", func(t *testing.T) {
		t.Parallel()
		dir := managedDir(t, 2, map[string]string{"http/upstream-a.conf": "upstream a { server 127.0.0.1:1; }"})
		if err := os.Symlink(filepath.Join(outside, "upstream-evil.conf"), filepath.Join(dir, "releases/2/http/upstream-evil.conf")); err != nil {
			t.Fatal(err)
		}
		got, err := ReadUpstreams(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Servers, []UpstreamServer{{"a", "127.0.0.1:1"}}) {
			t.Fatalf("servers = %v", got.Servers)
		}
		if len(got.Ignored) != 1 || !strings.Contains(got.Ignored[0], "http/upstream-evil.conf: a symlink, not followed") {
			t.Fatalf("Ignored = %q", got.Ignored)
		}
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		dir := managedDir(t, 2, nil)
		if err := os.Symlink(outside, filepath.Join(dir, "releases/2/stream")); err != nil {
			t.Fatal(err)
		}
		got, err := ReadUpstreams(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Servers) != 0 || len(got.Ignored) != 1 || !strings.Contains(got.Ignored[0], "stream/: not a directory") {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		dir := managedDir(t, 2, nil)
		if err := os.MkdirAll(filepath.Join(outside, "9", "http"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "9"), filepath.Join(dir, "releases/9")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("releases/9", filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadUpstreams(dir); err == nil || !strings.Contains(err.Error(), "open current release 9") {
			t.Fatalf("got %+v, %v; want an error opening release 9", got, err)
		}
	})
	t.Run("current", func(t *testing.T) {
		t.Parallel()
		dir := managedDir(t, 2, nil)
		if err := os.Remove(filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadUpstreams(dir); err == nil || !strings.Contains(err.Error(), "not to a managed release") {
			t.Fatalf("got %+v, %v; want an error about current", got, err)
		}
	})
}

func TestReadUpstreamsBounds(t *testing.T) {
	t.Parallel()
	var many strings.Builder
	many.WriteString("upstream many {\n")
	// 37 addresses past the bound, plus two files noted, make 39 notes:
	// 31 kept and one saying 8 more.
	for i := range MaxUpstreamAddresses + 37 {
		fmt.Fprintf(&many, "    server 127.0.%d.%d:80;\n", i/250, i%250+1)
	}
	many.WriteString("}\nupstream again { server 127.0.0.1:80; }\n")
	files := map[string]string{
		"http/upstream-many.conf": many.String(),
		"http/upstream-huge.conf": "upstream huge { server 127.0.0.1:1; }\n" + strings.Repeat("#", MaxUpstreamFileSize),
	}
	dir := managedDir(t, 1, files)
	if err := unix.Mkfifo(filepath.Join(dir, "releases/1/http/fifo.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadUpstreams(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != MaxUpstreamAddresses+1 || len(got.Addresses()) != MaxUpstreamAddresses {
		t.Fatalf("%d servers, %d addresses; want %d and %d", len(got.Servers), len(got.Addresses()), MaxUpstreamAddresses+1, MaxUpstreamAddresses)
	}
	// A known address is still listed for another upstream past the bound.
	if last := got.Servers[len(got.Servers)-1]; last != (UpstreamServer{"again", "127.0.0.1:80"}) {
		t.Fatalf("last server = %v", last)
	}
	notes := strings.Join(got.Ignored, "\n")
	for _, want := range []string{"fifo.conf: not a regular file", "upstream-huge.conf: ", "larger than the 1048576 read", "past 512 distinct addresses", "and 8 more"} {
		if !strings.Contains(notes, want) {
			t.Errorf("Ignored lacks %q:\n%s", want, notes)
		}
	}
	if len(got.Ignored) != maxIgnored {
		t.Errorf("%d notes, want %d", len(got.Ignored), maxIgnored)
	}

	// Past MaxUpstreamFiles files, the rest are not read.
	files = map[string]string{}
	for i := range MaxUpstreamFiles + 1 {
		files[fmt.Sprintf("http/u%04d.conf", i)] = fmt.Sprintf("upstream u%d { server 127.0.0.1:1; }", i)
	}
	files["stream/s.conf"] = "upstream s { server 127.0.0.1:1; }"
	got, err = ReadUpstreams(managedDir(t, 1, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != MaxUpstreamFiles || got.Servers[len(got.Servers)-1].Upstream != "u1999" {
		t.Fatalf("%d servers, last %v", len(got.Servers), got.Servers[len(got.Servers)-1])
	}
	notes = strings.Join(got.Ignored, "\n")
	if !strings.Contains(notes, "http/: 1 .conf files past the first 2000") || !strings.Contains(notes, "stream/: 1 .conf files past the first 2000") {
		t.Fatalf("Ignored = %q", got.Ignored)
	}

	// Past MaxUpstreamServers (upstream, address) pairs, the rest are left out.
	var blocks strings.Builder
	for i := range MaxUpstreamServers + 5 {
		fmt.Fprintf(&blocks, "upstream b%d { server 127.0.0.1:1; }\n", i)
	}
	got, err = ReadUpstreams(managedDir(t, 1, map[string]string{"http/blocks.conf": blocks.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != MaxUpstreamServers || len(got.Ignored) != 5 || !strings.Contains(got.Ignored[0], `upstream "b2048": server 127.0.0.1:1: past 2048 servers`) {
		t.Fatalf("%d servers, Ignored = %q", len(got.Servers), got.Ignored)
	}
}

// The controller's renderer golden files are the contract: every upstream
// block they hold parses without a problem, with every server not marked
// down. The files are read, not imported: the agent links no controller code.
func TestParseUpstreamConfReadsRenderedReleases(t *testing.T) {
	t.Parallel()
	goldens, err := filepath.Glob("../../../controller/internal/nginxconf/testdata/*.golden")
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no renderer golden files found (%v)", err)
	}
	blocks := 0
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		// A golden file is the release's files, each after a "#### path" line.
		for _, part := range strings.Split(string(data), "\n#### ")[1:] {
			path, src, _ := strings.Cut(part, "\n")
			if !strings.HasSuffix(path, ".conf") || !strings.HasPrefix(path, "http/") && !strings.HasPrefix(path, "stream/") {
				continue
			}
			// What the renderer wrote, line by line: the names of the
			// upstream blocks and the addresses of servers not marked down.
			var want []upstreamBlock
			in := false
			for _, line := range strings.Split(src, "\n") {
				switch {
				case strings.HasPrefix(line, "upstream "):
					name := strings.TrimSuffix(strings.TrimPrefix(line, "upstream "), " {")
					want = append(want, upstreamBlock{name: strings.Trim(name, `"`)})
					in = true
				case line == "}":
					in = false
				case in && strings.HasPrefix(line, "    server "):
					f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(line, "    server "), ";"))
					if !slices.Contains(f[1:], "down") {
						want[len(want)-1].servers = append(want[len(want)-1].servers, f[0])
					}
				}
			}
			got := parseUpstreamConf([]byte(src))
			if len(got.problems) > 0 || !reflect.DeepEqual(got.upstreams, want) {
				t.Errorf("%s %s: parsed %v (problems %q), rendered %v", filepath.Base(g), path, got.upstreams, got.problems, want)
			}
			blocks += len(want)
		}
	}
	if blocks < 10 {
		t.Fatalf("only %d upstream blocks in the golden files", blocks)
	}
}
