package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/agent"
)

const testPin = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseConfigFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    agent.Config
		wantErr string
	}{
		{
			name: "all forms",
			in:   "# comment\n\ncontroller = gh.example:7443\nca_pin=" + testPin + "\ntoken_file = \"/etc/gatehouse/token\"\n",
			want: agent.Config{ControllerAddr: "gh.example:7443", CAPin: testPin, TokenFile: "/etc/gatehouse/token"},
		},
		{name: "unknown key", in: "controler=x:1\n", wantErr: `line 1: unknown key "controler"`},
		{name: "no equals", in: "\ncontroller\n", wantErr: "line 2: want key=value"},
		{name: "bad quote", in: `state_dir="/x\q"` + "\n", wantErr: "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c agent.Config
			err := agent.ParseConfigFile(strings.NewReader(tc.in), &c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c != tc.want {
				t.Fatalf("got %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	c := agent.Config{ControllerAddr: "file:1", StateDir: "/from/file"}
	agent.ApplyEnv([]string{
		"GATEHOUSE_AGENT_CONTROLLER=env:2",
		"GATEHOUSE_AGENT_UNKNOWN=x",
		"GATEHOUSE_CONTROLLER=not-for-the-agent:3",
		"PATH=/bin",
		"GATEHOUSE_AGENT_CA_PIN=" + testPin,
	}, &c)
	if c.ControllerAddr != "env:2" || c.CAPin != testPin || c.StateDir != "/from/file" {
		t.Fatalf("got %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := agent.Config{ControllerAddr: "127.0.0.1:7443", CAPin: testPin, StateDir: "/var/lib/x",
		GlancesURL: "http://127.0.0.1:61208", BufferBytes: 8 << 20, BackoffMin: time.Second, BackoffMax: time.Minute}
	tests := []struct {
		name string
		mod  func(*agent.Config)
		want string
	}{
		{"good", func(*agent.Config) {}, ""},
		{"no port", func(c *agent.Config) { c.ControllerAddr = "gh.example" }, "controller:"},
		{"bad port", func(c *agent.Config) { c.ControllerAddr = "gh.example:99999" }, "port"},
		{"pin", func(c *agent.Config) { c.CAPin = "abc" }, "ca_pin:"},
		{"both tokens", func(c *agent.Config) { c.Token, c.TokenFile = "t", "/t" }, "both set"},
		{"relative state", func(c *agent.Config) { c.StateDir = "state" }, "state_dir:"},
		{"glances scheme", func(c *agent.Config) { c.GlancesURL = "file:///etc/passwd" }, "glances_url:"},
		{"tiny buffer", func(c *agent.Config) { c.BufferBytes = 10 }, "buffer_bytes:"},
		{"backoff", func(c *agent.Config) { c.BackoffMax = time.Millisecond }, "backoff:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	bad := agent.Config{ControllerAddr: "x", CAPin: "y", StateDir: "rel"}
	err := bad.Validate()
	for _, want := range []string{"controller:", "ca_pin:", "state_dir:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want containing %q", err, want)
		}
	}
}
