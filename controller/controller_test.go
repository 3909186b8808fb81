package controller

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
)

func testConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.AgentListen = "127.0.0.1:0"
	cfg.LocalAgent = false
	cfg.LogLevel = "trace"
	// Never reach public resolvers, CAs or Telegram from a test.
	cfg.DNSResolvers = []string{"127.0.0.1:1"}
	cfg.ACMEDirectory = "https://127.0.0.1:1/directory"
	cfg.TelegramAPIURL = "http://127.0.0.1:1"
	return withDerived(cfg)
}

// withDerived fills the settings that default to others, as config.Load does.
func withDerived(cfg config.Config) config.Config {
	cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "gatehouse.db")
	cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
	cfg.AgentAddress = cfg.AgentListen
	return cfg
}

func start(t *testing.T, cfg config.Config, logs io.Writer, out io.Writer) (*Controller, func()) {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
	c, err := New(context.Background(), cfg, log, Options{Out: out, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func TestFirstRunSealsSecretsAndRefusesAWrongKey(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	logs, out := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	c, stop := start(t, cfg, logs, out)

	// The first admin's password is shown on the terminal, never in the log.
	var password string
	for _, line := range strings.Split(out.String(), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "password: "); ok {
			password = p
		}
	}
	if len(password) < 16 {
		t.Fatalf("no first-run password on the terminal:\n%s", out.String())
	}
	st, err := os.Stat(cfg.MasterKeyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", st, err)
	}

	// Log in and read every API listing with an admin token: nothing returns a secret.
	ctx := context.Background()
	admin, err := c.users.Lookup(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	tok, raw, err := newTokenForTest(c, admin.ID)
	if err != nil || tok == 0 {
		t.Fatal(err)
	}
	if _, err := c.registry.Create(ctx, "web-1", "", false); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := c.ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	secretsToFind := map[string][]byte{
		"CA private key (DER)": block.Bytes,
		"CA private key (PEM)": keyPEM[len("-----BEGIN EC PRIVATE KEY-----\n") : len("-----BEGIN EC PRIVATE KEY-----\n")+40],
		"admin password":       []byte(password),
		"API token":            []byte(raw),
	}
	var bodies []byte
	for _, path := range []string{"/api/v1/me", "/api/v1/users", "/api/v1/tokens", "/api/v1/audit", "/api/v1/servers", "/api/v1/servers/1", "/readyz", "/healthz"} {
		req, _ := http.NewRequest("GET", "http://"+c.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		bodies = append(bodies, b...)
	}
	stop()

	db, _ := os.ReadFile(filepath.Join(dir, "gatehouse.db"))
	wal, _ := os.ReadFile(filepath.Join(dir, "gatehouse.db-wal"))
	for what, secret := range secretsToFind {
		if bytes.Contains(db, secret) || bytes.Contains(wal, secret) {
			t.Errorf("%s is stored in plain text in the database", what)
		}
		if bytes.Contains(bodies, secret) {
			t.Errorf("%s appears in an API response", what)
		}
		if strings.Contains(logs.String(), string(secret)) {
			t.Errorf("%s appears in the log", what)
		}
	}

	// Restarting with the key file works and keeps the same CA.
	pin := c.CAPin()
	c2, stop2 := start(t, cfg, io.Discard, io.Discard)
	if c2.CAPin() != pin {
		t.Fatal("the agent CA changed across a restart")
	}
	stop2()

	// Without the key file, the controller refuses to start instead of making a new key.
	if err := os.Rename(cfg.MasterKeyFile, cfg.MasterKeyFile+".bak"); err != nil {
		t.Fatal(err)
	}
	_, err = New(ctx, cfg, hclog.NewNullLogger(), Options{})
	if err == nil || !strings.Contains(err.Error(), "master key file") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("started without its master key: %v", err)
	}
	if _, err := os.Stat(cfg.MasterKeyFile); err == nil {
		t.Fatal("a new master key file was created over existing sealed data")
	}
	// With a different key, it refuses too.
	wrong := cfg
	wrong.MasterKey = strings.Repeat("ab", 32)
	_, err = New(ctx, wrong, hclog.NewNullLogger(), Options{})
	if err == nil || !strings.Contains(err.Error(), "not the one that sealed") {
		t.Fatalf("started with the wrong master key: %v", err)
	}
	os.Rename(cfg.MasterKeyFile+".bak", cfg.MasterKeyFile)
}

func newTokenForTest(c *Controller, userID int) (int, string, error) {
	tok, raw, err := c.tokens.Create(context.Background(), audit.System("test"), userID, "test", nil)
	return tok.ID, raw, err
}

func TestInstallCommandKeepsTheTokenOutOfArgv(t *testing.T) {
	cmd := InstallCommand("gh.example.com:8443", "sha256:abc", "tok123")
	if !strings.Contains(cmd, "GATEHOUSE_AGENT_TOKEN=tok123 gatehouse-agent") || strings.Contains(cmd, "-token") {
		t.Fatalf("install command: %s", cmd)
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:8443": "127.0.0.1:8443", "[::]:1": "127.0.0.1:1", "10.0.0.1:5": "10.0.0.1:5"} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestDefaultRelativeDataDirRunsTheLocalAgent: with the embedded defaults the
// data directory is the relative ./data, and the built-in agent must still
// enroll and report (it wants absolute paths).
func TestDefaultRelativeDataDirRunsTheLocalAgent(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg := testConfig(t, "data")
	cfg.LocalAgent = true
	cfg.GlancesURL = "http://127.0.0.1:1"
	cfg.MetricsInterval = time.Second
	c, stop := start(t, cfg, io.Discard, io.Discard)
	defer stop()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := c.db.Client.Server.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Local && c.hub.Connected(strconv.Itoa(list[0].ID)) && c.writer.Latest(list[0].ID) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the built-in agent did not report with a relative data directory: %+v", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
