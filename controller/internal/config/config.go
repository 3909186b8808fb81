// Package config holds the controller's configuration, layered as
// defaults → optional file → GATEHOUSE_* environment → flags, and validated
// once. Every setting has one name used in all three places: `listen` in the
// file, GATEHOUSE_LISTEN in the environment, --listen on the command line.
package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the controller's validated configuration.
type Config struct {
	DataDir         string         // where the SQLite file, master key and CA live
	DatabaseURL     string         // sqlite:PATH or postgres://...
	Listen          string         // HTTP listen address
	PublicURL       string         // the URL people use to reach the UI, when it differs from Listen
	TLSCert         string         // serve HTTPS directly with this certificate...
	TLSKey          string         // ...and key
	TrustedProxies  []netip.Prefix // proxies whose X-Forwarded-For/Proto are believed
	MasterKeyFile   string         // the key that seals secrets at rest
	MasterKey       string         // the key itself (from the environment), instead of the file
	LogLevel        string
	LogFormat       string // text or json
	AgentListen     string // gRPC listener for agents
	AgentAddress    string // host:port agents dial; defaults to AgentListen
	LocalAgent      bool   // run an agent for the controller's own host
	GlancesURL      string // where the local agent finds Glances
	MetricsInterval time.Duration
	RawRetention    time.Duration
	MinuteRetention time.Duration
	HourRetention   time.Duration
	SessionLifetime time.Duration
	SessionIdle     time.Duration
	CertLifetime    time.Duration // agent client certificate lifetime
	TokenLifetime   time.Duration // enrollment token lifetime
	// AgentDistDir holds the agent builds provisioning uploads, named
	// gatehouse-agent-linux-amd64 and gatehouse-agent-linux-arm64 (what
	// `make build` writes to dist/). A relative path is taken from the
	// controller's working directory.
	AgentDistDir string
	// AlertInterval is how often alert rules are evaluated.
	AlertInterval time.Duration
	// TelegramAPIURL is the Bot API base URL; changed only for testing or an HTTP proxy.
	TelegramAPIURL string

	// Certificates and DNS checks.
	ACMEDirectory     string        // ACME directory URL ("production" and "staging" name Let's Encrypt's)
	ACMEEmail         string        // contact given to the CA with the account; optional
	ACMECARoots       string        // PEM file of extra roots trusted when talking to the ACME directory
	ACMECAAIdentity   string        // the CA's CAA identity; empty reads it from the directory
	ACMEHTTPPort      int           // port the preflight fetches the challenge path on (the CA uses 80)
	DNSResolvers      []string      // recursive resolvers (host:port) for DNS checks and DNS-01
	RenewBefore       time.Duration // renew certificates this long before they expire
	DNSCheckInterval  time.Duration // how often every domain's DNS is checked
	CertCheckInterval time.Duration // how often renewals are due-checked and served certificates watched
	HealthInterval    time.Duration // how often domains with a health check are probed on every node
	StatusPageTitle   string        // heading of the public status page
	RequireTwoFactor  string        // off, admins or all: who must sign in with a second factor

	// Backups of the SQLite database (PostgreSQL has its own tools).
	BackupInterval time.Duration // how often a snapshot is written to DATA_DIR/backups; 0 turns it off
	BackupKeep     int           // how many snapshots are kept
}

var caaIdentity = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// Default returns the embedded defaults: SQLite under ./data, listening on loopback.
func Default() Config {
	return Config{
		DataDir:         "data",
		Listen:          "127.0.0.1:8080",
		LogLevel:        "info",
		LogFormat:       "text",
		AgentListen:     "127.0.0.1:8443",
		LocalAgent:      true,
		GlancesURL:      "http://127.0.0.1:61208",
		MetricsInterval: 10 * time.Second,
		RawRetention:    48 * time.Hour,
		MinuteRetention: 14 * 24 * time.Hour,
		HourRetention:   365 * 24 * time.Hour,
		SessionLifetime: 12 * time.Hour,
		SessionIdle:     2 * time.Hour,
		CertLifetime:    30 * 24 * time.Hour,
		TokenLifetime:   15 * time.Minute,
		AgentDistDir:    "dist",
		AlertInterval:   15 * time.Second,
		TelegramAPIURL:  "https://api.telegram.org",

		ACMEDirectory:     "https://acme-v02.api.letsencrypt.org/directory",
		ACMEHTTPPort:      80,
		DNSResolvers:      []string{"8.8.8.8:53", "1.1.1.1:53"},
		RenewBefore:       30 * 24 * time.Hour,
		DNSCheckInterval:  time.Hour,
		CertCheckInterval: time.Hour,
		HealthInterval:    time.Minute,
		StatusPageTitle:   "Status",
		RequireTwoFactor:  "off",
		BackupInterval:    24 * time.Hour,
		BackupKeep:        3,
	}
}

type setting struct {
	name string
	help string
	set  func(c *Config, v string) error
	get  func(c *Config) string
}

func str(p func(*Config) *string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error { *p(c) = v; return nil }, func(c *Config) string { return *p(c) }
}

func dur(p func(*Config) *time.Duration) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration (use e.g. 10s, 15m, 48h)", v)
			}
			*p(c) = d
			return nil
		}, func(c *Config) string {
			return p(c).String()
		}
}

func boolean(p func(*Config) *bool) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*p(c) = b
			return nil
		}, func(c *Config) string {
			return strconv.FormatBool(*p(c))
		}
}

func mk(name, help string, f func(*Config, string) error, g func(*Config) string) setting {
	return setting{name: name, help: help, set: f, get: g}
}

// settings is the single table behind the file, the environment and the flags.
func settings() []setting {
	s := func(name, help string, p func(*Config) *string) setting {
		f, g := str(p)
		return mk(name, help, f, g)
	}
	d := func(name, help string, p func(*Config) *time.Duration) setting {
		f, g := dur(p)
		return mk(name, help, f, g)
	}
	lb, lg := boolean(func(c *Config) *bool { return &c.LocalAgent })
	return []setting{
		s("data_dir", "directory for the SQLite database, master key and CA", func(c *Config) *string { return &c.DataDir }),
		s("database_url", "database: sqlite:PATH (default DATA_DIR/gatehouse.db) or postgres://user:pass@host/db", func(c *Config) *string { return &c.DatabaseURL }),
		s("listen", "HTTP listen address", func(c *Config) *string { return &c.Listen }),
		s("public_url", "URL people use to reach the UI (https:// turns on secure cookies)", func(c *Config) *string { return &c.PublicURL }),
		s("tls_cert", "serve HTTPS with this certificate file", func(c *Config) *string { return &c.TLSCert }),
		s("tls_key", "private key file for tls_cert", func(c *Config) *string { return &c.TLSKey }),
		mk("trusted_proxies", "comma-separated CIDRs of reverse proxies whose X-Forwarded-* headers are trusted",
			func(c *Config, v string) error {
				c.TrustedProxies = nil
				for _, p := range strings.Split(v, ",") {
					p = strings.TrimSpace(p)
					if p == "" {
						continue
					}
					if !strings.Contains(p, "/") {
						a, err := netip.ParseAddr(p)
						if err != nil {
							return fmt.Errorf("%q is not an IP address or CIDR", p)
						}
						c.TrustedProxies = append(c.TrustedProxies, netip.PrefixFrom(a, a.BitLen()))
						continue
					}
					pr, err := netip.ParsePrefix(p)
					if err != nil {
						return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", p)
					}
					c.TrustedProxies = append(c.TrustedProxies, pr.Masked())
				}
				return nil
			},
			func(c *Config) string {
				var out []string
				for _, p := range c.TrustedProxies {
					out = append(out, p.String())
				}
				return strings.Join(out, ",")
			}),
		s("master_key_file", "file holding the key that seals secrets (default DATA_DIR/master.key, created 0600)", func(c *Config) *string { return &c.MasterKeyFile }),
		s("master_key", "the master key itself (64 hex digits); prefer the environment over a flag", func(c *Config) *string { return &c.MasterKey }),
		s("log_level", "trace, debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		s("log_format", "text or json", func(c *Config) *string { return &c.LogFormat }),
		s("agent_listen", "gRPC listen address for agents", func(c *Config) *string { return &c.AgentListen }),
		s("agent_address", "host:port that agents dial (default: agent_listen)", func(c *Config) *string { return &c.AgentAddress }),
		mk("local_agent", "also monitor the controller's own host with a built-in agent", lb, lg),
		s("glances_url", "Glances REST API for the built-in agent", func(c *Config) *string { return &c.GlancesURL }),
		d("metrics_interval", "how often agents report metrics", func(c *Config) *time.Duration { return &c.MetricsInterval }),
		d("raw_retention", "how long raw samples are kept", func(c *Config) *time.Duration { return &c.RawRetention }),
		d("minute_retention", "how long 1-minute rollups are kept", func(c *Config) *time.Duration { return &c.MinuteRetention }),
		d("hour_retention", "how long 1-hour rollups are kept", func(c *Config) *time.Duration { return &c.HourRetention }),
		d("session_lifetime", "absolute lifetime of a login session", func(c *Config) *time.Duration { return &c.SessionLifetime }),
		d("session_idle", "a session unused this long ends", func(c *Config) *time.Duration { return &c.SessionIdle }),
		d("cert_lifetime", "lifetime of agent client certificates", func(c *Config) *time.Duration { return &c.CertLifetime }),
		d("token_lifetime", "lifetime of enrollment tokens", func(c *Config) *time.Duration { return &c.TokenLifetime }),
		d("alert_interval", "how often alert rules are evaluated", func(c *Config) *time.Duration { return &c.AlertInterval }),
		s("telegram_api_url", "Telegram Bot API base URL; change only for testing or to go through a proxy", func(c *Config) *string { return &c.TelegramAPIURL }),
		mk("acme_directory", "ACME directory URL: production or staging (Let's Encrypt) or any https:// ACME URL",
			func(c *Config, v string) error {
				switch v {
				case "production":
					v = "https://acme-v02.api.letsencrypt.org/directory"
				case "staging":
					v = "https://acme-staging-v02.api.letsencrypt.org/directory"
				}
				c.ACMEDirectory = v
				return nil
			}, func(c *Config) string { return c.ACMEDirectory }),
		s("acme_email", "contact address given to the CA with the ACME account (optional)", func(c *Config) *string { return &c.ACMEEmail }),
		s("acme_ca_roots", "PEM file of extra root certificates to trust when talking to the ACME directory (private CAs)", func(c *Config) *string { return &c.ACMECARoots }),
		s("acme_caa_identity", "the CA's CAA identity, e.g. letsencrypt.org (default: read from the directory)", func(c *Config) *string { return &c.ACMECAAIdentity }),
		d("backup_interval", "how often the SQLite database is snapshotted into DATA_DIR/backups (0 turns it off)", func(c *Config) *time.Duration { return &c.BackupInterval }),
		mk("backup_keep", "how many database snapshots to keep",
			func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("%q is not a whole number", v)
				}
				c.BackupKeep = n
				return nil
			}, func(c *Config) string { return strconv.Itoa(c.BackupKeep) }),
		mk("acme_http_port", "port the preflight fetches /.well-known/acme-challenge/ on (the CA always uses 80)",
			func(c *Config, v string) error {
				p, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("%q is not a port number", v)
				}
				c.ACMEHTTPPort = p
				return nil
			}, func(c *Config) string { return strconv.Itoa(c.ACMEHTTPPort) }),
		mk("dns_resolvers", "comma-separated recursive resolvers (host:port) for DNS checks and DNS-01",
			func(c *Config, v string) error {
				c.DNSResolvers = nil
				for _, r := range strings.Split(v, ",") {
					if r = strings.TrimSpace(r); r != "" {
						if _, _, err := net.SplitHostPort(r); err != nil {
							r = net.JoinHostPort(r, "53")
						}
						c.DNSResolvers = append(c.DNSResolvers, r)
					}
				}
				return nil
			}, func(c *Config) string { return strings.Join(c.DNSResolvers, ",") }),
		d("renew_before", "renew certificates this long before they expire", func(c *Config) *time.Duration { return &c.RenewBefore }),
		d("dns_check_interval", "how often every domain's DNS is checked", func(c *Config) *time.Duration { return &c.DNSCheckInterval }),
		d("cert_check_interval", "how often due renewals run and served certificates are checked", func(c *Config) *time.Duration { return &c.CertCheckInterval }),
		d("health_interval", "how often domains with a health check are probed through every serving node", func(c *Config) *time.Duration { return &c.HealthInterval }),
		s("require_two_factor", "who must use two-factor sign-in: off, admins or all (they set it up at their next sign-in)", func(c *Config) *string { return &c.RequireTwoFactor }),
		s("status_page_title", "heading of the public status page, e.g. your company's name", func(c *Config) *string { return &c.StatusPageTitle }),
		s("agent_dist_dir", "directory with the agent builds provisioning uploads (gatehouse-agent-linux-amd64, -arm64; make build writes them to dist/)", func(c *Config) *string { return &c.AgentDistDir }),
	}
}

func envName(name string) string { return "GATEHOUSE_" + strings.ToUpper(name) }

// Load builds the configuration: defaults, then the file named by --config or
// GATEHOUSE_CONFIG (if any), then the environment, then the flags in args.
func Load(fs *flag.FlagSet, args []string, environ []string) (Config, error) {
	c := Default()
	table := settings()
	byName := map[string]setting{}
	for _, s := range table {
		byName[s.name] = s
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	// Flags are parsed first to learn --config, then applied last.
	configFile := fs.String("config", env["GATEHOUSE_CONFIG"], "configuration file (key = value lines)")
	flagVals := map[string]string{}
	for _, s := range table {
		s := s
		fs.Func(strings.ReplaceAll(s.name, "_", "-"), s.help+" (env "+envName(s.name)+")", func(v string) error {
			if err := s.set(&Config{}, v); err != nil {
				return err
			}
			flagVals[s.name] = v
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *configFile != "" {
		if err := loadFile(&c, *configFile, byName); err != nil {
			return c, err
		}
	}
	for _, s := range table {
		if v, ok := env[envName(s.name)]; ok {
			if err := s.set(&c, v); err != nil {
				return c, fmt.Errorf("%s: %w", envName(s.name), err)
			}
		}
	}
	for _, s := range table {
		if v, ok := flagVals[s.name]; ok {
			s.set(&c, v)
		}
	}
	c.fillDerived()
	return c, c.Validate()
}

func loadFile(c *Config, path string, byName map[string]setting) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: expected key = value", path, n)
		}
		k = strings.TrimSpace(k)
		v = strings.Trim(strings.TrimSpace(v), `"`)
		s, ok := byName[k]
		if !ok {
			return fmt.Errorf("%s:%d: unknown setting %q (see gatehouse serve --help)", path, n, k)
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
		}
	}
	return sc.Err()
}

// fillDerived sets values that default to others.
func (c *Config) fillDerived() {
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "gatehouse.db")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.AgentAddress == "" {
		c.AgentAddress = c.AgentListen
	}
}

// Validate checks the whole configuration and reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.AgentDistDir == "" {
		bad("agent_dist_dir", "must not be empty (make build writes the agent builds to dist/)")
	}
	for name, addr := range map[string]string{"listen": c.Listen, "agent_listen": c.AgentListen, "agent_address": c.AgentAddress} {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q is not host:port (e.g. 127.0.0.1:8080)", addr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(name, "port %q must be 0-65535", port)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public_url", "%q must be an http:// or https:// URL", c.PublicURL)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together")
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q must be trace, debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q must be text or json", c.LogFormat)
	}
	if u, err := url.Parse(c.GlancesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		bad("glances_url", "%q must be an http:// URL", c.GlancesURL)
	}
	if u, err := url.Parse(c.TelegramAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("telegram_api_url", "%q must be an http:// or https:// URL without credentials, query or fragment", c.TelegramAPIURL)
	}
	if u, err := url.Parse(c.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		bad("acme_directory", "%q must be production, staging or an https:// ACME directory URL", c.ACMEDirectory)
	}
	if c.ACMEEmail != "" {
		if a, err := mail.ParseAddress(c.ACMEEmail); err != nil || a.Address != c.ACMEEmail {
			bad("acme_email", "%q must be a plain address such as admin@example.com", c.ACMEEmail)
		}
	}
	if c.ACMEHTTPPort < 1 || c.ACMEHTTPPort > 65535 {
		bad("acme_http_port", "%d must be 1-65535", c.ACMEHTTPPort)
	}
	if len(c.DNSResolvers) == 0 {
		bad("dns_resolvers", "name at least one resolver, e.g. 1.1.1.1:53")
	}
	for _, r := range c.DNSResolvers {
		host, port, err := net.SplitHostPort(r)
		p, perr := strconv.Atoi(port)
		if _, aerr := netip.ParseAddr(host); err != nil || aerr != nil || perr != nil || p < 1 || p > 65535 {
			bad("dns_resolvers", "%q must be an IP address with an optional :port, e.g. 1.1.1.1:53", r)
		}
	}
	if c.ACMECAAIdentity != "" && !caaIdentity.MatchString(c.ACMECAAIdentity) {
		bad("acme_caa_identity", "%q must be a domain such as letsencrypt.org", c.ACMECAAIdentity)
	}
	if c.BackupInterval != 0 && c.BackupInterval < time.Minute {
		bad("backup_interval", "%s is too short (at least 1m, or 0 to turn backups off)", c.BackupInterval)
	}
	if c.BackupKeep < 1 || c.BackupKeep > 1000 {
		bad("backup_keep", "%d must be 1-1000", c.BackupKeep)
	}
	switch c.RequireTwoFactor {
	case "off", "admins", "all":
	default:
		bad("require_two_factor", "%q must be off, admins or all", c.RequireTwoFactor)
	}
	if t := c.StatusPageTitle; strings.TrimSpace(t) == "" || utf8.RuneCountInString(t) > 80 || !utf8.ValidString(t) ||
		strings.IndexFunc(t, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 {
		bad("status_page_title", "must be 1-80 printable characters")
	}
	type minDur struct {
		name string
		d    time.Duration
		min  time.Duration
	}
	for _, m := range []minDur{
		{"metrics_interval", c.MetricsInterval, time.Second},
		{"raw_retention", c.RawRetention, time.Hour},
		{"minute_retention", c.MinuteRetention, time.Hour},
		{"hour_retention", c.HourRetention, 24 * time.Hour},
		{"session_lifetime", c.SessionLifetime, time.Minute},
		{"session_idle", c.SessionIdle, time.Minute},
		{"cert_lifetime", c.CertLifetime, 5 * time.Second},
		{"token_lifetime", c.TokenLifetime, 10 * time.Second},
		{"alert_interval", c.AlertInterval, time.Second},
		{"renew_before", c.RenewBefore, time.Hour},
		{"dns_check_interval", c.DNSCheckInterval, time.Second},
		{"cert_check_interval", c.CertCheckInterval, time.Second},
		{"health_interval", c.HealthInterval, time.Second},
	} {
		if m.d < m.min {
			bad(m.name, "%s is too short (at least %s)", m.d, m.min)
		}
	}
	return errors.Join(errs...)
}

// Secure reports whether the UI is served over TLS, directly or behind a
// TLS-terminating proxy named by public_url.
func (c Config) Secure() bool {
	return c.TLSCert != "" || strings.HasPrefix(c.PublicURL, "https://")
}

// Reference returns the settings table as text, for --help and the README.
func Reference() string {
	table := settings()
	var b strings.Builder
	def := Default()
	for _, s := range table {
		d := ""
		if v := s.get(&def); v != "" {
			d = fmt.Sprintf(" (default %s)", v)
		}
		fmt.Fprintf(&b, "%-18s %-30s %s%s\n", s.name, envName(s.name), s.help, d)
	}
	return b.String()
}
