// Package provision installs the Gatehouse agent on a node over SSH.
//
// Dial connects with host-key trust decided by a HostKeyPolicy (an unknown or
// changed key stops the connection before credentials are sent). Provision
// then runs a fixed sequence of steps — connect, detect, upload, bootstrap,
// service, packages, nginx-include, done — reporting each through a callback
// so the caller can log it to a task and stream it live. Every remote command
// is an argv whose words pass through shellquote.Quote; the only shell
// scripts run on the node are constants whose inputs are positional
// parameters. Running Provision again on a half-done or done node converges;
// Uninstall reverses it.
//
// The agent is started as "gatehouse-agent -config BOOTSTRAP" with its state
// and nginx directories in the environment (EnvStateDir, EnvNginxDir). The
// bootstrap file is an agent config file (Plan.Bootstrap plus a token_file
// line); the token file next to it holds the one-time enrollment token and is
// deleted by the agent once it has an identity. Where systemd runs (the directory
// /run/systemd/system exists) it gets a hardened unit (Layout.AgentUnit).
// Elsewhere it runs under a small fixed POSIX sh supervisor installed next to
// the binary (supervise.sh), started with setsid and nohup, which restarts the
// agent whenever it exits and keeps pid files in StateDir; that fallback does
// not survive a reboot on its own (the script's header says how to hook it
// into the node's startup).
package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Platform is a node's operating system and architecture in Go's terms.
type Platform struct {
	OS   string // "linux"
	Arch string // "amd64" or "arm64"
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// InitMode chooses how the agent is kept running.
type InitMode int

const (
	InitAuto       InitMode = iota // systemd if /run/systemd/system exists, else the supervisor
	InitSystemd                    // always systemd
	InitSupervisor                 // always the supervisor script
)

// Plan is what Provision installs.
type Plan struct {
	Layout Layout
	// AgentBinary opens the agent build for a platform. Provision hashes the
	// stream while uploading and checks the hash on the node.
	AgentBinary func(Platform) (io.ReadCloser, error)
	// Bootstrap is the agent config file (key=value lines such as
	// controller, server_name and ca_pin), written 0600 to
	// Layout.BootstrapPath with a token_file line added. It must not set
	// token or token_file itself. It is never logged.
	Bootstrap []byte
	// Token is the one-time enrollment token, written 0600 to
	// Layout.TokenPath. It is never logged.
	Token string
	Init  InitMode
	// InstallNginx installs nginx with the distribution's package manager
	// when it is missing.
	InstallNginx bool
	// InstallGlances installs Glances and python3-bottle when missing and
	// runs Glances' REST API on 127.0.0.1:GlancesPort.
	InstallGlances bool
	GlancesPort    int    // default DefaultGlancesPort
	NginxConf      string // default /etc/nginx/nginx.conf
}

func (p Plan) withDefaults() Plan {
	p.Layout = p.Layout.withDefaults()
	if p.GlancesPort == 0 {
		p.GlancesPort = DefaultGlancesPort
	}
	if p.NginxConf == "" {
		p.NginxConf = "/etc/nginx/nginx.conf"
	}
	return p
}

func (p Plan) validate(install bool) error {
	errs := []error{p.Layout.Validate(), validDir("NginxConf", p.NginxConf), ValidatePort(p.GlancesPort)}
	if install {
		if p.AgentBinary == nil {
			errs = append(errs, errors.New("AgentBinary: required"))
		}
		if len(p.Bootstrap) == 0 {
			errs = append(errs, errors.New("Bootstrap: required"))
		}
		for _, line := range strings.Split(string(p.Bootstrap), "\n") {
			k, _, _ := strings.Cut(strings.TrimSpace(line), "=")
			if k = strings.TrimSpace(k); k == "token" || k == "token_file" {
				errs = append(errs, fmt.Errorf("Bootstrap: must not set %s; the token goes in Plan.Token", k))
			}
		}
		if !tokenRE.MatchString(p.Token) {
			errs = append(errs, errors.New("Token: required, 16-128 characters of A-Z, a-z, 0-9, '-' and '_'"))
		}
	}
	if p.Init < InitAuto || p.Init > InitSupervisor {
		errs = append(errs, fmt.Errorf("Init: unknown mode %d", p.Init))
	}
	return errors.Join(errs...)
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// Step is one finished provisioning step. Output is a transcript of the
// commands it ran and what they printed; it never holds secrets.
type Step struct {
	Name     string
	Duration time.Duration
	Output   string
	Err      error
}

// Facts is what the detect step learned about the node.
type Facts struct {
	Platform       Platform
	Distro         string // os-release ID, e.g. "debian", "alpine"
	Systemd        bool   // /run/systemd/system exists
	PackageManager string // "apt-get", "dnf", "yum", "apk" or ""
	Nginx          string // path of the nginx binary, "" if absent
}

// Provisioner runs provisioning sequences.
type Provisioner struct {
	log hclog.Logger
}

// New returns a Provisioner logging to logger.
func New(logger hclog.Logger) *Provisioner {
	return &Provisioner{log: logger.Named("provision")}
}

// run is the state of one sequence.
type run struct {
	p      *Provisioner
	ctx    context.Context
	c      *Client
	plan   Plan
	facts  Facts
	report func(Step)
	out    *bytes.Buffer
}

// step runs fn as the step called name and reports it.
func (r *run) step(name string, fn func() error) error {
	r.out = &bytes.Buffer{}
	start := time.Now()
	err := fn()
	s := Step{Name: name, Duration: time.Since(start), Output: r.out.String(), Err: err}
	if err != nil {
		r.p.log.Warn("step failed", "step", name, "error", err)
	} else {
		r.p.log.Debug("step done", "step", name, "duration", s.Duration)
	}
	if r.report != nil {
		r.report(s)
	}
	return err
}

func (r *run) note(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

// cmd runs argv as root, adding it and its output to the transcript.
func (r *run) cmd(argv ...string) (Output, error) { return r.exec(true, nil, argv) }

func (r *run) exec(privileged bool, stdin io.Reader, argv []string) (Output, error) {
	line, err := r.c.CommandLine(privileged, argv...)
	if err != nil {
		return Output{}, err
	}
	fmt.Fprintf(r.out, "$ %s\n", line)
	out, err := r.c.run(r.ctx, privileged, stdin, argv)
	r.out.Write(out.Stdout)
	r.out.Write(out.Stderr)
	if err != nil {
		fmt.Fprintf(r.out, "! %v\n", err)
	}
	return out, err
}

// exists reports whether path exists on the node (test -e as root).
func (r *run) test(flag, p string) (bool, error) {
	_, err := r.cmd("test", flag, p)
	var exit *ExitError
	if errors.As(err, &exit) && exit.Status == 1 {
		return false, nil
	}
	return err == nil, err
}

// writeScript atomically replaces a file with stdin: a constant script, the
// path and mode passed as positional parameters.
const writeScript = `umask 077 && cat >"$1.gatehouse-new" && chmod "$2" "$1.gatehouse-new" && mv -f "$1.gatehouse-new" "$1"`

// writeFile replaces path with content as root. The content is not logged.
func (r *run) writeFile(p string, mode string, content []byte) error {
	r.note("# write %s (%d bytes, mode %s)", p, len(content), mode)
	_, err := r.exec(true, bytes.NewReader(content), []string{"sh", "-c", writeScript, "gatehouse-write", p, mode})
	return err
}

// readFile returns a file's content as root.
func (r *run) readFile(p string) ([]byte, error) {
	fmt.Fprintf(r.out, "$ cat %s\n", p)
	out, err := r.c.Run(r.ctx, "cat", p)
	if err != nil {
		fmt.Fprintf(r.out, "! %v\n", err)
	}
	return out.Stdout, err
}

// which finds a program on root's PATH; "" if absent.
func (r *run) which(name string) (string, error) {
	out, err := r.cmd("sh", "-c", `command -v "$1" || true`, "gatehouse-which", name)
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(out.Stdout))
	if !strings.HasPrefix(p, "/") {
		return "", nil
	}
	return p, nil
}

// Provision installs or updates the agent on the target, reporting each step.
// On an unknown or changed host key it returns *UnknownHostKeyError or
// *HostKeyChangedError from the connect step.
func (p *Provisioner) Provision(ctx context.Context, t Target, policy HostKeyPolicy, plan Plan, report func(Step)) (Facts, error) {
	plan = plan.withDefaults()
	if err := errors.Join(t.Validate(), privileged(t), plan.validate(true)); err != nil {
		return Facts{}, err
	}
	r := &run{p: p, ctx: ctx, plan: plan, report: report}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"connect", func() error { return r.connect(t, policy) }},
		{"detect", r.detect},
		{"upload", r.upload},
		{"bootstrap", r.bootstrap},
		{"service", r.service},
		{"packages", r.packages},
		{"nginx-include", r.nginxInclude},
	}
	defer func() {
		if r.c != nil {
			r.c.Close()
		}
	}()
	for _, s := range steps {
		if err := r.step(s.name, s.fn); err != nil {
			return r.facts, err
		}
	}
	err := r.step("done", func() error {
		r.note("agent installed on %s (%s, %s); waiting for it to enroll is the controller's part", t.Host, r.facts.Platform, r.initName())
		return nil
	})
	return r.facts, err
}

// Uninstall stops the agent (and the Glances service Gatehouse started),
// removes the binary, supervisor, units, state and bootstrap, and removes the
// include lines from nginx. It leaves nginx, its packages and the managed nginx
// directory in place.
func (p *Provisioner) Uninstall(ctx context.Context, t Target, policy HostKeyPolicy, plan Plan, report func(Step)) error {
	plan = plan.withDefaults()
	if err := errors.Join(t.Validate(), privileged(t), plan.validate(false)); err != nil {
		return err
	}
	r := &run{p: p, ctx: ctx, plan: plan, report: report}
	defer func() {
		if r.c != nil {
			r.c.Close()
		}
	}()
	for _, s := range []struct {
		name string
		fn   func() error
	}{
		{"connect", func() error { return r.connect(t, policy) }},
		{"detect", r.detect},
		{"stop", r.stop},
		{"remove", r.remove},
		{"nginx-include", r.nginxExclude},
		{"done", func() error { r.note("agent removed from %s", t.Host); return nil }},
	} {
		if err := r.step(s.name, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// privileged checks that the target can act as root.
func privileged(t Target) error {
	if t.User != "root" && !t.Sudo {
		return fmt.Errorf("sudo: %s is not root; turn on sudo for this server or connect as root", t.User)
	}
	return nil
}

func (r *run) connect(t Target, policy HostKeyPolicy) error {
	addr := fmt.Sprintf("%s@%s:%d", t.User, t.Host, t.Port)
	r.note("# ssh %s", addr)
	c, err := Dial(r.ctx, t, policy)
	if err != nil {
		return err
	}
	r.c = c
	if c.sudo() {
		if _, err := r.cmd("true"); err != nil {
			return err
		}
	}
	r.note("# connected as %s%s", t.User, map[bool]string{true: " (root through sudo)", false: ""}[c.sudo()])
	return nil
}

var osReleaseIDRE = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

func (r *run) detect() error {
	out, err := r.cmd("uname", "-s", "-m")
	if err != nil {
		return err
	}
	f := strings.Fields(string(out.Stdout))
	if len(f) != 2 {
		return fmt.Errorf("unexpected uname output %q", out.Stdout)
	}
	if f[0] != "Linux" {
		return fmt.Errorf("unsupported operating system %q: the agent runs on Linux only", f[0])
	}
	switch f[1] {
	case "x86_64", "amd64":
		r.facts.Platform = Platform{OS: "linux", Arch: "amd64"}
	case "aarch64", "arm64":
		r.facts.Platform = Platform{OS: "linux", Arch: "arm64"}
	default:
		return fmt.Errorf("unsupported architecture %q: agent builds exist for x86_64 (amd64) and aarch64 (arm64)", f[1])
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		ok, err := r.test("-f", p)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		data, err := r.readFile(p)
		if err != nil {
			return err
		}
		r.facts.Distro = osReleaseID(data)
		break
	}
	if r.facts.Systemd, err = r.test("-d", "/run/systemd/system"); err != nil {
		return err
	}
	for _, pm := range []string{"apt-get", "dnf", "yum", "apk"} {
		p, err := r.which(pm)
		if err != nil {
			return err
		}
		if p != "" {
			r.facts.PackageManager = pm
			break
		}
	}
	if r.facts.Nginx, err = r.which("nginx"); err != nil {
		return err
	}
	r.note("# %s, distribution %q, init %s, package manager %q, nginx %q",
		r.facts.Platform, r.facts.Distro, r.initName(), r.facts.PackageManager, r.facts.Nginx)
	return nil
}

// osReleaseID extracts ID from os-release content; "" when absent or odd.
func osReleaseID(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "ID=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		if osReleaseIDRE.MatchString(v) {
			return v
		}
		return ""
	}
	return ""
}

func (r *run) useSystemd() bool {
	switch r.plan.Init {
	case InitSystemd:
		return true
	case InitSupervisor:
		return false
	}
	return r.facts.Systemd
}

func (r *run) initName() string {
	if r.useSystemd() {
		return "systemd"
	}
	return "supervisor"
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// remoteSHA256 returns the hex SHA-256 of a file on the node.
func (r *run) remoteSHA256(p string) (string, error) {
	out, err := r.cmd("sha256sum", p)
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(out.Stdout))
	if len(f) == 0 || !sha256RE.MatchString(f[0]) {
		return "", fmt.Errorf("unexpected sha256sum output %q", out.Stdout)
	}
	return f[0], nil
}

func (r *run) upload() error {
	l := r.plan.Layout
	bin, err := r.plan.AgentBinary(r.facts.Platform)
	if err != nil {
		return fmt.Errorf("no agent build for %s: %w", r.facts.Platform, err)
	}
	defer bin.Close()

	// Stage in a private directory owned by the login user, then copy into
	// place as root under a temporary name, verify, and rename.
	out, err := r.exec(false, nil, []string{"mktemp", "-d", "/tmp/gatehouse-upload.XXXXXXXX"})
	if err != nil {
		return err
	}
	staging := strings.TrimSpace(string(out.Stdout))
	if err := validDir("staging directory", staging); err != nil || !strings.HasPrefix(staging, "/tmp/gatehouse-upload.") {
		return fmt.Errorf("mktemp returned an unexpected path %q", staging)
	}
	defer func() {
		if _, err := r.exec(false, nil, []string{"rm", "-rf", "--", staging}); err != nil {
			r.p.log.Warn("remove staging directory", "dir", staging, "error", err)
		}
	}()
	staged := path.Join(staging, AgentBinaryName)

	sc, err := r.c.SFTP()
	if err != nil {
		return err
	}
	defer sc.Close()
	r.note("# sftp put %s", staged)
	f, err := sc.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("sftp create %s: %w", staged, err)
	}
	h := sha256.New()
	n, err := io.Copy(f, io.TeeReader(bin, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sftp upload to %s: %w", staged, err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	r.note("# uploaded %d bytes, sha256 %s", n, want)

	tmp := path.Join(l.BinDir, "."+AgentBinaryName+".gatehouse-new")
	steps := [][]string{
		{"mkdir", "-p", l.BinDir},
		{"cp", staged, tmp},
		{"chmod", "0755", tmp},
	}
	for _, argv := range steps {
		if _, err := r.cmd(argv...); err != nil {
			return err
		}
	}
	got, err := r.remoteSHA256(tmp)
	if err != nil {
		return err
	}
	if got != want {
		_, _ = r.cmd("rm", "-f", tmp)
		return fmt.Errorf("agent binary on the node has sha256 %s, expected %s; the upload was corrupted, run provisioning again", got, want)
	}
	r.note("# sha256 verified on the node")
	if _, err := r.cmd("mv", "-f", tmp, l.AgentPath()); err != nil {
		return err
	}
	return nil
}

func (r *run) bootstrap() error {
	l := r.plan.Layout
	for _, argv := range [][]string{
		{"mkdir", "-p", l.ConfigDir, l.StateDir, l.NginxDir},
		{"chmod", "0700", l.ConfigDir, l.StateDir},
	} {
		if _, err := r.cmd(argv...); err != nil {
			return err
		}
	}
	conf := bytes.TrimRight(r.plan.Bootstrap, "\n")
	conf = append(conf, "\n# Added by Gatehouse provisioning: the one-time enrollment token, deleted by the agent once enrolled.\ntoken_file="...)
	conf = append(conf, l.TokenPath()+"\n"...)
	if err := r.writeFile(l.TokenPath(), "0600", []byte(r.plan.Token+"\n")); err != nil {
		return err
	}
	return r.writeFile(l.BootstrapPath(), "0600", conf)
}

func (r *run) service() error {
	l := r.plan.Layout
	if r.useSystemd() {
		if err := r.writeFile(l.UnitPath(), "0644", []byte(l.AgentUnit())); err != nil {
			return err
		}
		for _, argv := range [][]string{
			{"systemctl", "daemon-reload"},
			{"systemctl", "enable", AgentUnitName},
			{"systemctl", "restart", AgentUnitName},
			{"systemctl", "is-active", AgentUnitName},
		} {
			if _, err := r.cmd(argv...); err != nil {
				return err
			}
		}
		return nil
	}
	r.note("# no systemd: the agent runs under %s", l.SupervisorPath())
	if err := r.writeFile(l.SupervisorPath(), "0755", supervisorScript); err != nil {
		return err
	}
	argv := append([]string{"env"}, l.agentEnv()...)
	argv = append(argv, l.SupervisorPath(), "start", "agent", l.StateDir)
	argv = append(argv, l.agentArgs()...)
	_, err := r.cmd(argv...)
	return err
}

// packageNames maps the programs Gatehouse wants to each package manager's
// package names.
var packageNames = map[string]map[string]string{
	"apt-get": {"nginx": "nginx", "glances": "glances", "bottle": "python3-bottle"},
	"dnf":     {"nginx": "nginx", "glances": "glances", "bottle": "python3-bottle"},
	"yum":     {"nginx": "nginx", "glances": "glances", "bottle": "python3-bottle"},
	"apk":     {"nginx": "nginx", "glances": "glances", "bottle": "py3-bottle"},
}

// installCommands returns the fixed argv lists that install pkgs.
func installCommands(pm string, pkgs []string) ([][]string, error) {
	switch pm {
	case "apt-get":
		return [][]string{
			{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-q"},
			append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends"}, pkgs...),
		}, nil
	case "dnf", "yum":
		return [][]string{append([]string{pm, "install", "-y"}, pkgs...)}, nil
	case "apk":
		return [][]string{append([]string{"apk", "add", "--no-cache"}, pkgs...)}, nil
	}
	return nil, errors.New("no supported package manager (apt-get, dnf, yum, apk) on the node; install nginx, glances and python3-bottle by hand")
}

func (r *run) packages() error {
	if !r.plan.InstallNginx && !r.plan.InstallGlances {
		r.note("# skipped: package installation not requested")
		return nil
	}
	var missing []string
	if r.plan.InstallNginx && r.facts.Nginx == "" {
		missing = append(missing, "nginx")
	}
	var glances string
	if r.plan.InstallGlances {
		var err error
		if glances, err = r.which("glances"); err != nil {
			return err
		}
		if glances == "" {
			missing = append(missing, "glances", "bottle")
		} else {
			ok, err := r.hasBottle(glances)
			if err != nil {
				return err
			}
			if !ok {
				missing = append(missing, "bottle")
			}
		}
	}
	if len(missing) > 0 {
		names := packageNames[r.facts.PackageManager]
		var pkgs []string
		for _, m := range missing {
			pkgs = append(pkgs, names[m])
		}
		cmds, err := installCommands(r.facts.PackageManager, pkgs)
		if err != nil {
			return err
		}
		for _, argv := range cmds {
			if _, err := r.cmd(argv...); err != nil {
				return err
			}
		}
		if r.facts.Nginx, err = r.which("nginx"); err != nil {
			return err
		}
		if r.plan.InstallGlances {
			if glances, err = r.which("glances"); err != nil {
				return err
			}
			if glances == "" {
				return errors.New("glances is still missing after installing it")
			}
		}
	} else {
		r.note("# requested packages already installed")
	}
	if !r.plan.InstallGlances {
		return nil
	}
	l := r.plan.Layout
	port := strconv.Itoa(r.plan.GlancesPort)
	if r.useSystemd() {
		if err := r.writeFile(l.GlancesUnitPath(), "0644", []byte(GlancesUnit(glances, r.plan.GlancesPort))); err != nil {
			return err
		}
		for _, argv := range [][]string{
			{"systemctl", "daemon-reload"},
			{"systemctl", "enable", GlancesUnitName},
			{"systemctl", "restart", GlancesUnitName},
		} {
			if _, err := r.cmd(argv...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.writeFile(l.SupervisorPath(), "0755", supervisorScript); err != nil {
		return err
	}
	_, err := r.cmd(l.SupervisorPath(), "start", "glances", l.StateDir,
		glances, "-w", "--disable-webui", "-B", "127.0.0.1", "-p", port)
	return err
}

var interpreterRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$|^python3(\.[0-9]+)?$`)

// hasBottle reports whether the Python that runs Glances (from the script's
// #! line) can import bottle, which Glances' REST API needs.
func (r *run) hasBottle(glances string) (bool, error) {
	out, err := r.cmd("head", "-n", "1", glances)
	if err != nil {
		return false, err
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(string(out.Stdout)), "#!")
	f := strings.Fields(line)
	if !ok || len(f) == 0 {
		return false, fmt.Errorf("%s is not a Python script; cannot check for bottle", glances)
	}
	interp := f[0]
	if path.Base(interp) == "env" && len(f) > 1 {
		interp = f[1]
	}
	if !interpreterRE.MatchString(interp) {
		return false, fmt.Errorf("%s names an unexpected interpreter %q", glances, interp)
	}
	_, err = r.cmd(interp, "-c", "import bottle")
	var exit *ExitError
	if errors.As(err, &exit) {
		return false, nil
	}
	return err == nil, err
}

// nginxRejectedError means nginx -t refused the edited main config and the
// original was put back, so the node is as it was before the edit.
type nginxRejectedError struct {
	conf string
	err  error
}

func (e *nginxRejectedError) Error() string {
	return fmt.Sprintf("nginx rejected the edited %s, original restored: %v", e.conf, e.err)
}

func (e *nginxRejectedError) Unwrap() error { return e.err }

// editNginx applies edit to the nginx main config, keeps the change only if
// nginx -t accepts it, and restores the original otherwise. When nginx -t
// exits non-zero and the restore succeeds, the error is a
// *nginxRejectedError; every other failure is returned as is.
func (r *run) editNginx(edit func(string) (string, bool, error)) error {
	if r.facts.Nginx == "" {
		r.note("# skipped: nginx is not installed")
		return nil
	}
	conf := r.plan.NginxConf
	ok, err := r.test("-f", conf)
	if err != nil {
		return err
	}
	if !ok {
		r.note("# skipped: %s does not exist", conf)
		return nil
	}
	orig, err := r.readFile(conf)
	if err != nil {
		return err
	}
	updated, changed, err := edit(string(orig))
	if err != nil {
		return fmt.Errorf("%s: %w", conf, err)
	}
	if !changed {
		r.note("# %s already up to date", conf)
		return nil
	}
	if err := r.writeFile(conf, "0644", []byte(updated)); err != nil {
		return err
	}
	if _, err := r.cmd(r.facts.Nginx, "-t", "-q", "-c", conf); err != nil {
		if rerr := r.writeFile(conf, "0644", orig); rerr != nil {
			return errors.Join(fmt.Errorf("nginx rejected the edited %s: %w", conf, err), fmt.Errorf("restore %s: %w", conf, rerr))
		}
		var exit *ExitError
		if errors.As(err, &exit) {
			return &nginxRejectedError{conf: conf, err: err}
		}
		return fmt.Errorf("test the edited %s, original restored: %w", conf, err)
	}
	return nil
}

// nginxInclude adds the http include, which must succeed, then the stream
// include, which nginx may refuse when it lacks the stream module: that only
// skips stream proxies, so it is noted and provisioning goes on.
func (r *run) nginxInclude() error {
	line := r.plan.Layout.IncludeLine()
	if err := r.editNginx(func(conf string) (string, bool, error) { return AddInclude(conf, line) }); err != nil {
		return err
	}
	stream := r.plan.Layout.StreamIncludeLine()
	err := r.editNginx(func(conf string) (string, bool, error) { return AddStreamInclude(conf, stream) })
	var rejected *nginxRejectedError
	if errors.As(err, &rejected) {
		r.note("# stream proxies skipped: nginx rejected a stream {} block (is the stream module installed? on Debian/Ubuntu: libnginx-mod-stream); add %q to %s by hand later", streamBlock(stream), r.plan.NginxConf)
		return nil
	}
	return err
}

func (r *run) nginxExclude() error {
	line := r.plan.Layout.IncludeLine()
	stream := r.plan.Layout.StreamIncludeLine()
	return r.editNginx(func(conf string) (string, bool, error) {
		out, changedHTTP := RemoveInclude(conf, line)
		out, changedStream := RemoveStreamInclude(out, stream)
		return out, changedHTTP || changedStream, nil
	})
}

func (r *run) stop() error {
	l := r.plan.Layout
	if r.useSystemd() {
		for _, unit := range []string{AgentUnitName, GlancesUnitName} {
			ok, err := r.test("-f", path.Join(l.UnitDir, unit))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if _, err := r.cmd("systemctl", "disable", "--now", unit); err != nil {
				return err
			}
		}
		return nil
	}
	ok, err := r.test("-f", l.SupervisorPath())
	if err != nil {
		return err
	}
	if !ok {
		r.note("# no supervisor installed")
		return nil
	}
	for _, name := range []string{"agent", "glances"} {
		if _, err := r.cmd(l.SupervisorPath(), "stop", name, l.StateDir); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) remove() error {
	l := r.plan.Layout
	if _, err := r.cmd("rm", "-f", "--", l.AgentPath(), l.SupervisorPath(), l.UnitPath(), l.GlancesUnitPath(),
		path.Join(l.BinDir, "."+AgentBinaryName+".gatehouse-new")); err != nil {
		return err
	}
	if _, err := r.cmd("rm", "-rf", "--", l.StateDir, l.ConfigDir); err != nil {
		return err
	}
	if r.useSystemd() {
		if _, err := r.cmd("systemctl", "daemon-reload"); err != nil {
			return err
		}
	}
	return nil
}
