package provision

import (
	"strings"
	"testing"
)

func TestValidateHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		ok   bool
	}{
		{"10.0.0.1", true},
		{"::1", true},
		{"2001:db8::5", true},
		{"node-1.example.com", true},
		{"node1", true},
		{"example.com.", true},
		{"", false},
		{"-oProxyCommand=x", false},
		{"a;b", false},
		{"$(touch /tmp/pwned)", false},
		{"a b", false},
		{"a\nb", false},
		{`a"b`, false},
		{"a'b", false},
		{"fe80::1%eth0", false},
		{"[::1]", false},
		{"host-", false},
		{"a..b", false},
		{"1.2.3", false},
		{"999.1.1.1", false},
		{strings.Repeat("a", 64) + ".com", false},
	}
	for _, tt := range tests {
		err := ValidateHost(tt.host)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateHost(%q) = %v, want ok=%v", tt.host, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "host: ") {
			t.Errorf("ValidateHost(%q) message %q does not name the field", tt.host, err)
		}
	}
}

func TestValidateUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user string
		ok   bool
	}{
		{"root", true},
		{"ghtest", true},
		{"_svc", true},
		{"deploy-01", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"", false},
		{"Root", false},
		{"-oops", false},
		{"1user", false},
		{"a;b", false},
		{"$(id)", false},
		{"a b", false},
		{"a\n", false},
		{"a'b", false},
	}
	for _, tt := range tests {
		if err := ValidateUser(tt.user); (err == nil) != tt.ok {
			t.Errorf("ValidateUser(%q) = %v, want ok=%v", tt.user, err, tt.ok)
		}
	}
}

func TestValidatePort(t *testing.T) {
	t.Parallel()
	for port, ok := range map[int]bool{0: false, 1: true, 22: true, 65535: true, 65536: false, -1: false} {
		if err := ValidatePort(port); (err == nil) != ok {
			t.Errorf("ValidatePort(%d) = %v, want ok=%v", port, err, ok)
		}
	}
}

func TestTargetValidateListsEveryField(t *testing.T) {
	t.Parallel()
	err := Target{Host: "a;b", Port: 0, User: "$(id)"}.Validate()
	if err == nil {
		t.Fatal("invalid target accepted")
	}
	for _, field := range []string{"host:", "port:", "user:", "auth:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not mention %s", err, field)
		}
	}
}

func TestLayoutValidate(t *testing.T) {
	t.Parallel()
	good := DefaultLayout()
	if err := good.Validate(); err != nil {
		t.Fatalf("default layout: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Layout)
		field  string
	}{
		{"relative", func(l *Layout) { l.BinDir = "usr/bin" }, "BinDir"},
		{"dotdot", func(l *Layout) { l.BinDir = "/usr/../bin" }, "BinDir"},
		{"root", func(l *Layout) { l.BinDir = "/" }, "BinDir"},
		{"space", func(l *Layout) { l.UnitDir = "/etc/systemd /x" }, "UnitDir"},
		{"semicolon", func(l *Layout) { l.StateDir = "/var/lib/gatehouse;rm" }, "StateDir"},
		{"substitution", func(l *Layout) { l.ConfigDir = "/etc/$(touch /tmp/pwned)gatehouse" }, "ConfigDir"},
		{"newline", func(l *Layout) { l.NginxDir = "/etc/nginx/gatehouse\n" }, "NginxDir"},
		{"dash", func(l *Layout) { l.BinDir = "/opt/-rf" }, "BinDir"},
		{"shared state dir", func(l *Layout) { l.StateDir = "/var/lib" }, "StateDir"},
		{"shared config dir", func(l *Layout) { l.ConfigDir = "/etc" }, "ConfigDir"},
		{"empty", func(l *Layout) { l.NginxDir = "" }, "NginxDir"},
	}
	for _, tt := range tests {
		l := good
		tt.mutate(&l)
		err := l.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%s: err = %v, want a %s error", tt.name, err, tt.field)
		}
	}
}

func TestInstallCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pm   string
		want string
	}{
		{"apt-get", "env DEBIAN_FRONTEND=noninteractive apt-get update -q | env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx python3-bottle"},
		{"dnf", "dnf install -y nginx python3-bottle"},
		{"yum", "yum install -y nginx python3-bottle"},
		{"apk", "apk add --no-cache nginx py3-bottle"},
	}
	for _, tt := range tests {
		names := packageNames[tt.pm]
		cmds, err := installCommands(tt.pm, []string{names["nginx"], names["bottle"]})
		if err != nil {
			t.Fatalf("%s: %v", tt.pm, err)
		}
		var lines []string
		for _, c := range cmds {
			lines = append(lines, strings.Join(c, " "))
		}
		if got := strings.Join(lines, " | "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.pm, got, tt.want)
		}
	}
	if _, err := installCommands("pacman", []string{"nginx"}); err == nil {
		t.Error("unknown package manager accepted")
	}
}

func TestOSReleaseID(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"NAME=\"Debian\"\nID=debian\n":     "debian",
		"ID=\"rocky\"\nID_LIKE=\"rhel\"\n": "rocky",
		"ID=alpine":                        "alpine",
		"NAME=x\n":                         "",
		"ID=$(touch /tmp/pwned)\n":         "",
		"ID_LIKE=debian\nID=ubuntu\n":      "ubuntu",
	}
	for in, want := range tests {
		if got := osReleaseID([]byte(in)); got != want {
			t.Errorf("osReleaseID(%q) = %q, want %q", in, got, want)
		}
	}
}
