package provision

import (
	"strings"
	"testing"
)

const includeLine = "include /etc/nginx/gatehouse/current/http/*.conf;"

func TestAddInclude(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		changed bool
		wantErr bool
	}{
		{
			name:    "debian style",
			in:      "user www-data;\nevents {\n}\nhttp {\n\tsendfile on;\n}\n",
			want:    "user www-data;\nevents {\n}\nhttp {\n    " + includeLine + "\n\tsendfile on;\n}\n",
			changed: true,
		},
		{
			name:    "indented brace and comment",
			in:      "events {}\n  http{ # main\n  }\n",
			want:    "events {}\n  http{ # main\n      " + includeLine + "\n  }\n",
			changed: true,
		},
		{
			name: "already present",
			in:   "http {\n    " + includeLine + "\n}\n",
			want: "http {\n    " + includeLine + "\n}\n",
		},
		{
			name:    "no http block",
			in:      "events {}\nstream {\n}\n",
			wantErr: true,
		},
		{
			name:    "http in a comment line does not count",
			in:      "# http {\nevents {}\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		got, changed, err := AddInclude(tt.in, includeLine)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		if err != nil {
			continue
		}
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s:\n got (%v) %q\nwant (%v) %q", tt.name, changed, got, tt.changed, tt.want)
		}
		// Adding again never duplicates.
		again, changed2, err := AddInclude(got, includeLine)
		if err != nil || changed2 || again != got {
			t.Errorf("%s: second AddInclude changed the file: %q", tt.name, again)
		}
		removed, changedR := RemoveInclude(got, includeLine)
		if strings.Contains(removed, includeLine) || changedR != true {
			t.Errorf("%s: RemoveInclude left %q", tt.name, removed)
		}
		if tt.changed && removed != tt.in {
			t.Errorf("%s: add then remove = %q, want the original %q", tt.name, removed, tt.in)
		}
	}
}

const streamLine = "include /etc/nginx/gatehouse/current/stream/*.conf;"

func TestAddStreamInclude(t *testing.T) {
	t.Parallel()
	block := "stream { " + streamLine + " }"
	tests := []struct {
		name    string
		in      string
		want    string
		changed bool
		// removed is what RemoveStreamInclude makes of want; "" means in.
		removed string
	}{
		{
			name:    "no stream block appends one line",
			in:      "events {\n}\nhttp {\n}\n",
			want:    "events {\n}\nhttp {\n}\n" + block + "\n",
			changed: true,
		},
		{
			name:    "no trailing newline",
			in:      "events {}\nhttp {\n}",
			want:    "events {}\nhttp {\n}\n" + block + "\n",
			changed: true,
			removed: "events {}\nhttp {\n}\n",
		},
		{
			name:    "empty file",
			in:      "",
			want:    block + "\n",
			changed: true,
		},
		{
			name:    "crlf appends with crlf",
			in:      "events {\r\n}\r\nhttp {\r\n}\r\n",
			want:    "events {\r\n}\r\nhttp {\r\n}\r\n" + block + "\r\n",
			changed: true,
		},
		{
			name:    "crlf without trailing newline",
			in:      "events {\r\n}\r\nhttp {\r\n}",
			want:    "events {\r\n}\r\nhttp {\r\n}\r\n" + block + "\r\n",
			changed: true,
			removed: "events {\r\n}\r\nhttp {\r\n}\r\n",
		},
		{
			name:    "existing stream block gets the first statement",
			in:      "load_module m.so;\nstream {\n\tserver { listen 53 udp; }\n}\nhttp {\n}\n",
			want:    "load_module m.so;\nstream {\n    " + streamLine + "\n\tserver { listen 53 udp; }\n}\nhttp {\n}\n",
			changed: true,
		},
		{
			name:    "indented stream with comment",
			in:      "  stream{ # tcp proxies\n  }\n",
			want:    "  stream{ # tcp proxies\n      " + streamLine + "\n  }\n",
			changed: true,
		},
		{
			name:    "crlf stream block",
			in:      "stream {\r\n}\r\n",
			want:    "stream {\r\n    " + streamLine + "\r\n}\r\n",
			changed: true,
		},
		{
			name:    "stream block opening on the last line without newline",
			in:      "events {}\nstream {",
			want:    "events {}\nstream {\n    " + streamLine + "\n",
			changed: true,
			removed: "events {}\nstream {\n",
		},
		{
			name:    "stream in a comment does not count",
			in:      "# stream {\n#   " + streamLine + "\nhttp {\n}\n",
			want:    "# stream {\n#   " + streamLine + "\nhttp {\n}\n" + block + "\n",
			changed: true,
		},
		{
			name:    "stream with arguments is not a block opener",
			in:      "stream_thing {\n}\n",
			want:    "stream_thing {\n}\n" + block + "\n",
			changed: true,
		},
		{
			name: "already in a stream block",
			in:   "stream {\n    " + streamLine + "\n}\n",
			want: "stream {\n    " + streamLine + "\n}\n",
			// The bare line is removed wherever it is; the block stays.
			removed: "stream {\n}\n",
		},
		{
			name: "already appended",
			in:   "http {\n}\n" + block + "\n",
			want: "http {\n}\n" + block + "\n",
			// The appended form is ours, so uninstall takes it out.
			removed: "http {\n}\n",
		},
		{
			name: "already present in a user's one-line block",
			in:   "stream {" + streamLine + "} # by hand\n",
			want: "stream {" + streamLine + "} # by hand\n",
			// Not our form: uninstall leaves the user's line alone.
		},
	}
	for _, tt := range tests {
		got, changed, err := AddStreamInclude(tt.in, streamLine)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s:\n got (%v) %q\nwant (%v) %q", tt.name, changed, got, tt.changed, tt.want)
			continue
		}
		again, changed2, err := AddStreamInclude(got, streamLine)
		if err != nil || changed2 || again != got {
			t.Errorf("%s: second AddStreamInclude changed the file: %q", tt.name, again)
		}
		if n := activeLines(got, streamLine); n != 1 {
			t.Errorf("%s: %d include lines outside comments in %q, want 1", tt.name, n, got)
		}
		wantRemoved := tt.removed
		if wantRemoved == "" {
			wantRemoved = tt.in
		}
		removed, _ := RemoveStreamInclude(got, streamLine)
		if removed != wantRemoved {
			t.Errorf("%s: add then remove = %q, want %q", tt.name, removed, wantRemoved)
		}
	}
}

func TestRemoveStreamInclude(t *testing.T) {
	t.Parallel()
	block := "stream { " + streamLine + " }"
	tests := []struct {
		name    string
		in      string
		want    string
		changed bool
	}{
		{
			name:    "appended block",
			in:      "http {\n}\n" + block + "\n",
			want:    "http {\n}\n",
			changed: true,
		},
		{
			name:    "appended block with crlf and indentation",
			in:      "http {\r\n}\r\n  " + block + "\r\n",
			want:    "http {\r\n}\r\n",
			changed: true,
		},
		{
			name:    "appended block without trailing newline",
			in:      "http {\n}\n" + block,
			want:    "http {\n}\n",
			changed: true,
		},
		{
			name:    "bare line in the user's stream block; the block stays",
			in:      "stream {\n    " + streamLine + "\n    server { listen 22; proxy_pass b; }\n}\n",
			want:    "stream {\n    server { listen 22; proxy_pass b; }\n}\n",
			changed: true,
		},
		{
			name: "other stream lines and includes stay",
			in: "stream { include /etc/nginx/other/*.conf; }\n" +
				"stream { " + streamLine + " server { listen 1; } }\n" +
				"# " + block + "\n" +
				"include /etc/nginx/gatehouse/current/http/*.conf;\n",
			want: "stream { include /etc/nginx/other/*.conf; }\n" +
				"stream { " + streamLine + " server { listen 1; } }\n" +
				"# " + block + "\n" +
				"include /etc/nginx/gatehouse/current/http/*.conf;\n",
		},
		{
			name: "nothing of ours",
			in:   "events {}\nhttp {\n}\n",
			want: "events {}\nhttp {\n}\n",
		},
	}
	for _, tt := range tests {
		got, changed := RemoveStreamInclude(tt.in, streamLine)
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s:\n got (%v) %q\nwant (%v) %q", tt.name, changed, got, tt.changed, tt.want)
		}
	}
}

// activeLines counts the lines of conf holding line outside a comment.
func activeLines(conf, line string) int {
	n := 0
	for _, l := range strings.Split(conf, "\n") {
		if code, _, _ := strings.Cut(l, "#"); strings.Contains(code, line) {
			n++
		}
	}
	return n
}
