package agent_test

import (
	"reflect"
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
			if !reflect.DeepEqual(c, tc.want) {
				t.Fatalf("got %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	c := agent.Config{ControllerAddr: "file:1", StateDir: "/from/file"}
	err := agent.ApplyEnv([]string{
		"GATEHOUSE_AGENT_CONTROLLER=env:2",
		"GATEHOUSE_AGENT_UNKNOWN=x",
		"GATEHOUSE_CONTROLLER=not-for-the-agent:3",
		"PATH=/bin",
		"GATEHOUSE_AGENT_CA_PIN=" + testPin,
		"GATEHOUSE_AGENT_NGINX_ARGS=-p /srv/ngx  -c /srv/ngx/nginx.conf",
		"GATEHOUSE_AGENT_NGINX_HTTP_PORT=8080",
	}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"-p", "/srv/ngx", "-c", "/srv/ngx/nginx.conf"}; !reflect.DeepEqual(c.NginxArgs, want) || c.NginxHTTPPort != 8080 {
		t.Fatalf("nginx args %q port %d, want %q 8080", c.NginxArgs, c.NginxHTTPPort, want)
	}
	if c.ControllerAddr != "env:2" || c.CAPin != testPin || c.StateDir != "/from/file" {
		t.Fatalf("got %+v", c)
	}
}

func TestApplyEnvRefusesBadNumbers(t *testing.T) {
	t.Parallel()
	var c agent.Config
	err := agent.ApplyEnv([]string{"GATEHOUSE_AGENT_NGINX_HTTP_PORT=eighty"}, &c)
	if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_AGENT_NGINX_HTTP_PORT") || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("err = %v, want the variable named and why", err)
	}
	err = agent.ParseConfigFile(strings.NewReader("nginx_https_port = 4x3\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "line 1: nginx_https_port") {
		t.Fatalf("err = %v, want the line and key named", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := agent.Config{ControllerAddr: "127.0.0.1:7443", CAPin: testPin, StateDir: "/var/lib/x",
		GlancesURL: "http://127.0.0.1:61208", BufferBytes: 8 << 20, BackoffMin: time.Second, BackoffMax: time.Minute,
		NginxDir: "/etc/nginx/gatehouse", NginxBinary: "nginx", NginxPIDFile: "/run/nginx.pid", NginxHTTPPort: 80, NginxHTTPSPort: 443}
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
		{"private nginx", func(c *agent.Config) {
			c.NginxArgs = []string{"-p", "/srv/ngx", "-c", "/srv/ngx/nginx.conf"}
			c.NginxBinary, c.NginxErrorLog, c.NginxBindAddress = "/usr/sbin/nginx", "/srv/ngx/error.log", "127.0.0.1"
			c.NginxHTTPPort, c.NginxHTTPSPort = 8080, 8443
		}, ""},
		{"nginx dir relative", func(c *agent.Config) { c.NginxDir = "nginx" }, "nginx_dir:"},
		{"nginx dir unclean", func(c *agent.Config) { c.NginxDir = "/etc/nginx/../gatehouse" }, "nginx_dir:"},
		{"nginx dir root", func(c *agent.Config) { c.NginxDir = "/" }, "nginx_dir:"},
		{"nginx dir quote", func(c *agent.Config) { c.NginxDir = `/etc/nginx/x";` }, "nginx_dir:"},
		{"nginx dir space", func(c *agent.Config) { c.NginxDir = "/etc/nginx/a b" }, "nginx_dir:"},
		{"nginx dir newline", func(c *agent.Config) { c.NginxDir = "/etc/nginx/a\nb" }, "nginx_dir:"},
		{"nginx binary shell", func(c *agent.Config) { c.NginxBinary = "nginx; rm -rf /" }, "nginx_binary:"},
		{"nginx binary empty", func(c *agent.Config) { c.NginxBinary = "" }, "nginx_binary:"},
		{"nginx args odd", func(c *agent.Config) { c.NginxArgs = []string{"-p"} }, "nginx_args:"},
		{"nginx args signal", func(c *agent.Config) { c.NginxArgs = []string{"-s", "stop"} }, "nginx_args:"},
		{"pid relative", func(c *agent.Config) { c.NginxPIDFile = "nginx.pid" }, "nginx_pid_file:"},
		{"error log relative", func(c *agent.Config) { c.NginxErrorLog = "error.log" }, "nginx_error_log:"},
		{"http port zero", func(c *agent.Config) { c.NginxHTTPPort = -1 }, "nginx_http_port:"},
		{"https port high", func(c *agent.Config) { c.NginxHTTPSPort = 65536 }, "nginx_https_port:"},
		{"same ports", func(c *agent.Config) { c.NginxHTTPSPort = 80 }, "nginx_https_port:"},
		{"bind name", func(c *agent.Config) { c.NginxBindAddress = "localhost" }, "nginx_bind_address:"},
		{"bind zone", func(c *agent.Config) { c.NginxBindAddress = "fe80::1%eth0" }, "nginx_bind_address:"},
		{"bind injection", func(c *agent.Config) { c.NginxBindAddress = "127.0.0.1; include /etc/passwd" }, "nginx_bind_address:"},
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
