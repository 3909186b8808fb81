// Package agent is the Gatehouse node agent: it enrolls with the controller,
// keeps one mutual-TLS session and one metrics stream open, renews its
// certificate, and executes the controller's typed commands. It is
// embeddable: New builds an Agent from a Config and Run drives it.
package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/agent/trust"
)

// Defaults for Config fields left empty.
const (
	DefaultGlancesURL  = "http://127.0.0.1:61208"
	DefaultNginxDir    = "/etc/nginx/gatehouse"
	DefaultStateDir    = "/var/lib/gatehouse-agent"
	DefaultBufferBytes = 8 << 20 // > 24 h of samples at 10 s
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = 30 * time.Second
)

// Capability is the agent's protocol capability sent in Hello.
const Capability int32 = 1

// Config configures an Agent.
type Config struct {
	// ControllerAddr is the controller's agent endpoint, host:port.
	ControllerAddr string
	// ServerName is the name the controller's certificate must carry; the
	// host of ControllerAddr when empty.
	ServerName string
	// CAPin is the controller CA pin, "sha256:<hex>".
	CAPin string
	// Token is the one-time enrollment token; TokenFile names a file holding
	// it, deleted after a successful enrollment. Needed only until enrolled.
	Token     string
	TokenFile string
	// StateDir keeps the key, certificate and CA chain (0700 / 0600).
	StateDir   string
	GlancesURL string
	NginxDir   string
	// ProcRoot and SysRoot are where the fallback sampler reads.
	ProcRoot, SysRoot string
	// BufferBytes bounds the metrics kept while the controller is unreachable.
	BufferBytes int
	// BackoffMin and BackoffMax bound the jittered reconnect delay.
	BackoffMin, BackoffMax time.Duration
	// Version is reported in Hello and host facts.
	Version string
}

func (c *Config) setDefaults() {
	if c.GlancesURL == "" {
		c.GlancesURL = DefaultGlancesURL
	}
	if c.NginxDir == "" {
		c.NginxDir = DefaultNginxDir
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.SysRoot == "" {
		c.SysRoot = "/sys"
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Validate reports every unusable setting, one per line.
func (c *Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.ControllerAddr)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("controller: %q must be host:port, e.g. gatehouse.example.com:7443", c.ControllerAddr))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("controller: port %q must be 1-65535", port))
	}
	if c.ServerName != "" && strings.ContainsAny(c.ServerName, " /:@") {
		errs = append(errs, fmt.Errorf("server_name: %q is not a host name", c.ServerName))
	}
	if _, err := trust.ParsePin(c.CAPin); err != nil {
		errs = append(errs, fmt.Errorf("ca_pin: %w (copy it from the controller's add-server page)", err))
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New("token and token_file are both set; use one"))
	}
	for _, d := range []struct{ name, v string }{
		{"state_dir", c.StateDir}, {"nginx_dir", c.NginxDir}, {"proc_root", c.ProcRoot}, {"sys_root", c.SysRoot}, {"token_file", c.TokenFile},
	} {
		if d.v != "" && !filepath.IsAbs(d.v) {
			errs = append(errs, fmt.Errorf("%s: %q must be an absolute path", d.name, d.v))
		}
	}
	if u, err := url.Parse(c.GlancesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("glances_url: %q must be an http(s) URL like %s", c.GlancesURL, DefaultGlancesURL))
	}
	if c.BufferBytes < 64<<10 || c.BufferBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("buffer_bytes: %d must be between 64 KiB and 1 GiB", c.BufferBytes))
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff: min %s and max %s must be positive with min <= max", c.BackoffMin, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// configKeys maps config file keys (and GATEHOUSE_AGENT_<KEY> variables) to fields.
func configKeys(c *Config) map[string]*string {
	return map[string]*string{
		"controller":  &c.ControllerAddr,
		"server_name": &c.ServerName,
		"ca_pin":      &c.CAPin,
		"token":       &c.Token,
		"token_file":  &c.TokenFile,
		"state_dir":   &c.StateDir,
		"glances_url": &c.GlancesURL,
		"nginx_dir":   &c.NginxDir,
		"proc_root":   &c.ProcRoot,
		"sys_root":    &c.SysRoot,
	}
}

// ConfigKeys lists the keys a config file and the environment accept.
func ConfigKeys() []string {
	return []string{"controller", "server_name", "ca_pin", "token", "token_file", "state_dir", "glances_url", "nginx_dir", "proc_root", "sys_root"}
}

// ParseConfigFile reads key=value lines into c: blank lines and lines
// starting with # are skipped, values may be double-quoted, unknown keys are
// errors.
func ParseConfigFile(r io.Reader, c *Config) error {
	keys := configKeys(c)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("line %d: want key=value", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			v = uq
		}
		p, ok := keys[k]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q (known: %s)", n, k, strings.Join(ConfigKeys(), ", "))
		}
		*p = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return nil
}

// ApplyEnv sets fields from GATEHOUSE_AGENT_<KEY> entries of environ
// (os.Environ form).
func ApplyEnv(environ []string, c *Config) {
	keys := configKeys(c)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(k, "GATEHOUSE_AGENT_")
		if !ok {
			continue
		}
		if p, ok := keys[strings.ToLower(name)]; ok {
			*p = v
		}
	}
}
