// Package nginx is the agent's nginx apply engine. It owns one managed
// directory (by default /etc/nginx/gatehouse), reached from nginx by a single
// include line, and applies numbered releases sent by the controller as a
// transaction: write and verify the files, swap the `current` symlink, run
// `nginx -t`, reload the master and confirm the reload took, and on any
// failure swap back and report nginx's own message.
//
// Layout under Config.Dir:
//
//	releases/<rev>/...                 one directory per release, never edited after it is applied
//	releases/<rev>/.manifest.json      sha256 and mode of every file, for drift detection
//	current -> releases/<rev>          swapped atomically (current.tmp, then rename)
//	acme/.well-known/acme-challenge/   webroot for ACME HTTP-01 challenges
//
// nginx reaches the release through the symlink, for example with
// `include /etc/nginx/gatehouse/current/http/*.conf;` inside http{}.
package nginx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults used by New for zero Config fields.
const (
	DefaultDir           = "/etc/nginx/gatehouse"
	DefaultNginxBinary   = "nginx"
	DefaultPIDFile       = "/run/nginx.pid"
	DefaultKeep          = 10
	DefaultReloadTimeout = 30 * time.Second
)

// Config says where the managed directory is and how to drive nginx.
type Config struct {
	// Dir is the managed root; nothing is written outside it.
	Dir string
	// NginxBinary is the nginx executable, found in PATH when not absolute.
	NginxBinary string
	// NginxArgs are passed before every command, so one can point at a
	// private prefix and configuration: {"-p", prefix, "-c", conf}. Only
	// -p, -c, -e and -g, each with a value, are accepted.
	NginxArgs []string
	// PIDFile is the nginx master's pid file (the `pid` directive). The
	// reload signal goes to that process and its workers are watched to
	// confirm the new configuration generation started.
	PIDFile string
	// ErrorLog is the main nginx error log, optional. When set, an [emerg]
	// line written after the reload signal marks the reload as refused at
	// once instead of after ReloadTimeout.
	ErrorLog string
	// Keep is how many releases to keep, by revision; current and previous
	// are always kept.
	Keep int
	// ReloadTimeout bounds the wait for nginx to start workers with the new
	// configuration, and ReloadCheck.
	ReloadTimeout time.Duration
	// ReloadCheck, optional, runs after nginx started its new workers and
	// must return nil only when the given revision is live (see
	// RevisionURLCheck). It is also run for the old revision after a rollback.
	ReloadCheck func(ctx context.Context, revision uint64) error
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.NginxBinary == "" {
		c.NginxBinary = DefaultNginxBinary
	}
	if c.PIDFile == "" {
		c.PIDFile = DefaultPIDFile
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.ReloadTimeout == 0 {
		c.ReloadTimeout = DefaultReloadTimeout
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var problems []string
	if !filepath.IsAbs(c.Dir) || filepath.Clean(c.Dir) != c.Dir || c.Dir == "/" {
		problems = append(problems, fmt.Sprintf("dir %q: must be a clean absolute path other than /", c.Dir))
	}
	if c.NginxBinary == "" || strings.ContainsAny(c.NginxBinary, "\x00\n") {
		problems = append(problems, fmt.Sprintf("nginx binary %q: must be a file name or path", c.NginxBinary))
	}
	if len(c.NginxArgs)%2 != 0 {
		problems = append(problems, "nginx args: must be flag/value pairs (-p, -c, -e or -g followed by a value)")
	} else {
		for i := 0; i < len(c.NginxArgs); i += 2 {
			switch c.NginxArgs[i] {
			case "-p", "-c", "-e", "-g":
			default:
				problems = append(problems, fmt.Sprintf("nginx args: flag %q is not allowed; use -p, -c, -e or -g", c.NginxArgs[i]))
			}
			if v := c.NginxArgs[i+1]; v == "" || strings.ContainsRune(v, 0) {
				problems = append(problems, fmt.Sprintf("nginx args: value for %s must be non-empty", c.NginxArgs[i]))
			}
		}
	}
	if !filepath.IsAbs(c.PIDFile) {
		problems = append(problems, fmt.Sprintf("pid file %q: must be an absolute path", c.PIDFile))
	}
	if c.ErrorLog != "" && !filepath.IsAbs(c.ErrorLog) {
		problems = append(problems, fmt.Sprintf("error log %q: must be an absolute path or empty", c.ErrorLog))
	}
	if c.Keep < 1 || c.Keep > 1000 {
		problems = append(problems, fmt.Sprintf("keep %d: must be between 1 and 1000", c.Keep))
	}
	if c.ReloadTimeout < 0 {
		problems = append(problems, fmt.Sprintf("reload timeout %s: must be positive", c.ReloadTimeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("nginx apply config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Code is the result class of an apply.
type Code int

// Outcome codes, as reported to the controller.
const (
	// Applied: the release is current and nginx runs it.
	Applied Code = iota + 1
	// TestFailed: `nginx -t` refused the release; the previous one is current again.
	TestFailed
	// ReloadFailedRolledBack: the reload did not take (or its check failed);
	// the previous release is current again and nginx runs it.
	ReloadFailedRolledBack
	// RollbackFailed: after a failure the previous state could not be
	// restored or confirmed; an operator should look at the node.
	RollbackFailed
)

func (c Code) String() string {
	switch c {
	case Applied:
		return "APPLIED"
	case TestFailed:
		return "TEST_FAILED"
	case ReloadFailedRolledBack:
		return "RELOAD_FAILED_ROLLED_BACK"
	case RollbackFailed:
		return "ROLLBACK_FAILED"
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// File is one file of a release.
type File struct {
	// Path is relative to the release root, e.g. "http/example.com.conf".
	Path    string
	Content []byte
	// Mode is the permission; zero means 0644. Only read/write bits are allowed.
	Mode fs.FileMode
}

// Release is one immutable, numbered configuration rendered by the controller.
type Release struct {
	Revision uint64
	Files    []File
}

// Outcome is the result of Apply or Reapply.
type Outcome struct {
	Code     Code
	Revision uint64
	// Output is nginx's own text: `nginx -t` stderr, or the error log lines
	// of a refused reload, followed by what the rollback did when it failed.
	Output   string
	Duration time.Duration
	// Unchanged is true when the revision was already current and intact,
	// so nothing was written and nginx was not touched.
	Unchanged bool
}

// Applier applies releases, one at a time.
type Applier struct {
	log hclog.Logger
	cfg Config

	// mu serialises every change to the managed directory and every nginx
	// command.
	mu sync.Mutex
	// challengeMu serialises challenge file changes, which never involve nginx.
	challengeMu sync.Mutex

	// hashes and manifests spare an apply re-reading what it wrote last
	// time; both are guarded by mu.
	hashes    *hashCache
	manifests manifestCache
}

// New checks the configuration and creates the managed layout when missing.
func New(logger hclog.Logger, cfg Config) (*Applier, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Applier{log: logger.Named("nginx"), cfg: cfg, hashes: newHashCache()}
	if err := a.ensureLayout(); err != nil {
		return nil, err
	}
	return a, nil
}

// Dir is the managed root.
func (a *Applier) Dir() string { return a.cfg.Dir }

// InvalidError lists why a release or challenge was refused.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string {
	return "invalid: " + strings.Join(e.Problems, "; ")
}

// ErrNotCurrent is returned by Reapply for a revision other than the current one.
var ErrNotCurrent = errors.New("revision is not the current release")
