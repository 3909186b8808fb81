package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args, env []string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, args, env)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DatabaseURL != "sqlite:data/gatehouse.db" || c.MasterKeyFile != "data/master.key" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.Secure() {
		t.Fatal("plain http default must not be secure")
	}
	if c.AgentDistDir != "dist" {
		t.Fatalf("agent_dist_dir default %q, want dist (where make build writes)", c.AgentDistDir)
	}
}

func TestLayering(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "gatehouse.conf")
	os.WriteFile(file, []byte("# comment\nlisten = 127.0.0.1:9000\nlog_level = debug\nmetrics_interval = 5s\n"), 0o600)
	c, err := load(t, []string{"--config", file, "--log-level", "warn"},
		[]string{"GATEHOUSE_LISTEN=127.0.0.1:9100", "GATEHOUSE_DATA_DIR=/var/lib/gh", "UNRELATED=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9100" {
		t.Errorf("env must override file: %s", c.Listen)
	}
	if c.LogLevel != "warn" {
		t.Errorf("flag must override file: %s", c.LogLevel)
	}
	if c.MetricsInterval != 5*time.Second {
		t.Errorf("file value lost: %s", c.MetricsInterval)
	}
	if c.DatabaseURL != "sqlite:/var/lib/gh/gatehouse.db" {
		t.Errorf("database default must follow data_dir: %s", c.DatabaseURL)
	}
}

func TestValidationMessages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "nope"}, "listen: \"nope\" is not host:port"},
		{[]string{"--public-url", "ftp://x"}, "public_url"},
		{[]string{"--tls-cert", "a.pem"}, "tls_cert and tls_key go together"},
		{[]string{"--log-level", "loud"}, "log_level"},
		{[]string{"--metrics-interval", "1ms"}, "metrics_interval: 1ms is too short"},
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, "not a CIDR"},
		{[]string{"--metrics-interval", "soon"}, "not a duration"},
		{[]string{"--agent-dist-dir", ""}, "agent_dist_dir: must not be empty"},
		{[]string{"--alert-interval", "10ms"}, "alert_interval: 10ms is too short"},
		{[]string{"--telegram-api-url", "https://user:pw@example.test"}, "telegram_api_url"},
		{[]string{"--telegram-api-url", "file:///etc"}, "telegram_api_url"},
		{[]string{"--status-page-title", " "}, "status_page_title: must be 1-80 printable characters"},
		{[]string{"--require-two-factor", "yes"}, `require_two_factor: "yes" must be off, admins or all`},
		{[]string{"--status-page-title", "Acme\u202e"}, "status_page_title"},
		{[]string{"--status-page-title", "Acme\nStatus"}, "status_page_title"},
		{[]string{"--status-page-title", strings.Repeat("x", 81)}, "status_page_title"},
	}
	for _, tc := range cases {
		_, err := load(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want message containing %q", tc.args, err, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(file, []byte("lisen = x\n"), 0o600)
	if _, err := load(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), `unknown setting "lisen"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestTrustedProxiesAndSecure(t *testing.T) {
	t.Parallel()
	c, err := load(t, []string{"--trusted-proxies", "10.0.0.1, 192.168.0.0/16", "--public-url", "https://gh.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0].String() != "10.0.0.1/32" {
		t.Fatalf("proxies: %v", c.TrustedProxies)
	}
	if !c.Secure() {
		t.Fatal("https public_url must mean secure cookies")
	}
}
