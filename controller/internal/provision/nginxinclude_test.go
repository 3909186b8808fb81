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
