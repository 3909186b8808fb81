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
	"net/netip"
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
	DefaultNginxBinary = "nginx"
	DefaultNginxPID    = "/run/nginx.pid"
	DefaultErrorLog    = "/var/log/nginx/error.log"
	DefaultAccessLog   = "/var/log/nginx/access.log"
	DefaultHTTPPort    = 80
	DefaultHTTPSPort   = 443
)

// Capability is the agent's protocol capability sent in Hello. 2: applies
// nginx releases, places ACME challenges, checks drift, and reports its nginx
// setup in Hello. 3: reads nginx's error and access logs.
// 4: probes the upstream servers of its current release over TCP.
const Capability int32 = 4

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
	// NginxDir is the managed nginx directory (releases/, current, acme/).
	NginxDir string
	// NginxBinary is the nginx executable, looked up in PATH unless absolute.
	NginxBinary string
	// NginxArgs go before every nginx command, as flag/value pairs of -p, -c,
	// -e or -g; in a config file they are one space-separated value.
	NginxArgs []string
	// NginxPIDFile is the nginx master's pid file; reloads signal that process.
	NginxPIDFile string
	// NginxErrorLog is nginx's main error log, read to report a refused
	// reload at once and shown to admins on request. NginxAccessLog is the
	// access log shown to admins. These are the only logs the agent reads
	// for the controller.
	NginxErrorLog  string
	NginxAccessLog string
	// NginxHTTPPort, NginxHTTPSPort and NginxBindAddress are where the
	// managed server blocks listen; reported to the controller, which renders
	// them. Empty bind address: all addresses.
	NginxHTTPPort    int
	NginxHTTPSPort   int
	NginxBindAddress string
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
	if c.NginxBinary == "" {
		c.NginxBinary = DefaultNginxBinary
	}
	if c.NginxPIDFile == "" {
		c.NginxPIDFile = DefaultNginxPID
	}
	if c.NginxErrorLog == "" {
		c.NginxErrorLog = DefaultErrorLog
	}
	if c.NginxAccessLog == "" {
		c.NginxAccessLog = DefaultAccessLog
	}
	if c.NginxHTTPPort == 0 {
		c.NginxHTTPPort = DefaultHTTPPort
	}
	if c.NginxHTTPSPort == 0 {
		c.NginxHTTPSPort = DefaultHTTPSPort
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
		{"state_dir", c.StateDir}, {"proc_root", c.ProcRoot}, {"sys_root", c.SysRoot}, {"token_file", c.TokenFile},
		{"nginx_pid_file", c.NginxPIDFile}, {"nginx_error_log", c.NginxErrorLog},
		{"nginx_access_log", c.NginxAccessLog},
	} {
		if d.v != "" && !filepath.IsAbs(d.v) {
			errs = append(errs, fmt.Errorf("%s: %q must be an absolute path", d.name, d.v))
		}
	}
	errs = append(errs, c.validateNginx()...)
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

// validateNginx checks the nginx settings. The managed directory must be a
// clean path of letters, digits and . _ - / because the controller writes it
// into nginx directives.
func (c *Config) validateNginx() []error {
	var errs []error
	if !filepath.IsAbs(c.NginxDir) || filepath.Clean(c.NginxDir) != c.NginxDir || c.NginxDir == "/" || strings.Trim(c.NginxDir, pathChars) != "" {
		errs = append(errs, fmt.Errorf("nginx_dir: %q must be a clean absolute path other than / made of letters, digits and . _ - /", c.NginxDir))
	}
	if c.NginxBinary == "" || strings.Trim(c.NginxBinary, pathChars) != "" || strings.HasSuffix(c.NginxBinary, "/") {
		errs = append(errs, fmt.Errorf("nginx_binary: %q must be a program name or path made of letters, digits and . _ - /", c.NginxBinary))
	}
	if len(c.NginxArgs)%2 != 0 {
		errs = append(errs, fmt.Errorf("nginx_args: %q must be flag/value pairs such as \"-p /srv/nginx -c /srv/nginx/nginx.conf\"", strings.Join(c.NginxArgs, " ")))
	} else {
		for i := 0; i < len(c.NginxArgs); i += 2 {
			switch f := c.NginxArgs[i]; f {
			case "-p", "-c", "-e", "-g":
			default:
				errs = append(errs, fmt.Errorf("nginx_args: flag %q is not allowed; use -p, -c, -e or -g", f))
			}
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"nginx_http_port", c.NginxHTTPPort}, {"nginx_https_port", c.NginxHTTPSPort}} {
		if p.v < 1 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d must be 1-65535", p.name, p.v))
		}
	}
	if c.NginxHTTPPort == c.NginxHTTPSPort {
		errs = append(errs, fmt.Errorf("nginx_https_port: %d is also the HTTP port; choose another", c.NginxHTTPSPort))
	}
	if c.NginxBindAddress != "" {
		if a, err := netip.ParseAddr(c.NginxBindAddress); err != nil || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("nginx_bind_address: %q must be an IP address such as 127.0.0.1, or empty for all addresses", c.NginxBindAddress))
		}
	}
	return errs
}

const pathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/"

// configKey sets one field from its text form.
type configKey func(v string) error

func stringKey(p *string) configKey {
	return func(v string) error { *p = v; return nil }
}

func intKey(p *int) configKey {
	return func(v string) error {
		if v == "" {
			*p = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p = n
		return nil
	}
}

func fieldsKey(p *[]string) configKey {
	return func(v string) error { *p = strings.Fields(v); return nil }
}

// configKeys maps config file keys (and GATEHOUSE_AGENT_<KEY> variables) to fields.
func configKeys(c *Config) map[string]configKey {
	return map[string]configKey{
		"controller":         stringKey(&c.ControllerAddr),
		"server_name":        stringKey(&c.ServerName),
		"ca_pin":             stringKey(&c.CAPin),
		"token":              stringKey(&c.Token),
		"token_file":         stringKey(&c.TokenFile),
		"state_dir":          stringKey(&c.StateDir),
		"glances_url":        stringKey(&c.GlancesURL),
		"nginx_dir":          stringKey(&c.NginxDir),
		"nginx_binary":       stringKey(&c.NginxBinary),
		"nginx_args":         fieldsKey(&c.NginxArgs),
		"nginx_pid_file":     stringKey(&c.NginxPIDFile),
		"nginx_error_log":    stringKey(&c.NginxErrorLog),
		"nginx_access_log":   stringKey(&c.NginxAccessLog),
		"nginx_http_port":    intKey(&c.NginxHTTPPort),
		"nginx_https_port":   intKey(&c.NginxHTTPSPort),
		"nginx_bind_address": stringKey(&c.NginxBindAddress),
		"proc_root":          stringKey(&c.ProcRoot),
		"sys_root":           stringKey(&c.SysRoot),
	}
}

// ConfigKeys lists the keys a config file and the environment accept.
func ConfigKeys() []string {
	return []string{"controller", "server_name", "ca_pin", "token", "token_file", "state_dir", "glances_url",
		"nginx_dir", "nginx_binary", "nginx_args", "nginx_pid_file", "nginx_error_log", "nginx_access_log", "nginx_http_port", "nginx_https_port", "nginx_bind_address",
		"proc_root", "sys_root"}
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
		set, ok := keys[k]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q (known: %s)", n, k, strings.Join(ConfigKeys(), ", "))
		}
		if err := set(v); err != nil {
			return fmt.Errorf("line %d: %s: %w", n, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return nil
}

// ApplyEnv sets fields from GATEHOUSE_AGENT_<KEY> entries of environ
// (os.Environ form); unknown keys are ignored.
func ApplyEnv(environ []string, c *Config) error {
	keys := configKeys(c)
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(k, "GATEHOUSE_AGENT_")
		if !ok {
			continue
		}
		if set, ok := keys[strings.ToLower(name)]; ok {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	return errors.Join(errs...)
}
