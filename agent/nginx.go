package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/agent/internal/nginx"
	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// nginxEngine gives the controller's nginx commands an Applier. The Applier
// is created on first use, once the nginx binary is found, so a node without
// nginx still runs the agent (metrics keep flowing) and answers nginx
// commands with an error saying what to install.
type nginxEngine struct {
	cfg nginx.Config
	log hclog.Logger

	mu      sync.Mutex
	applier *nginx.Applier
}

func newNginxEngine(c Config, log hclog.Logger) *nginxEngine {
	return &nginxEngine{log: log, cfg: nginx.Config{
		Dir:         c.NginxDir,
		NginxBinary: c.NginxBinary,
		NginxArgs:   c.NginxArgs,
		PIDFile:     c.NginxPIDFile,
		ErrorLog:    c.NginxErrorLog,
	}}
}

// errNoNginx says nginx is missing on the node.
var errNoNginx = errors.New("nginx is not installed on this node")

// installed reports whether the nginx binary can be found.
func (e *nginxEngine) installed() bool {
	_, err := exec.LookPath(e.cfg.NginxBinary)
	return err == nil
}

// get returns the Applier, creating it and the managed directory on first use.
func (e *nginxEngine) get() (*nginx.Applier, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.applier != nil {
		return e.applier, nil
	}
	if _, err := exec.LookPath(e.cfg.NginxBinary); err != nil {
		return nil, fmt.Errorf("%w (%v); install nginx, or set nginx_binary to its path", errNoNginx, err)
	}
	a, err := nginx.New(e.log, e.cfg)
	if err != nil {
		return nil, err
	}
	e.applier = a
	return a, nil
}

// current is the applied release for Hello: 0 when none, or when nginx or
// the managed directory is unusable. It never creates the managed directory:
// only a command from the controller does.
func (e *nginxEngine) current() int64 {
	e.mu.Lock()
	a := e.applier
	e.mu.Unlock()
	if a == nil {
		if _, err := os.Stat(e.cfg.Dir); err != nil {
			return 0
		}
		var err error
		if a, err = e.get(); err != nil {
			return 0
		}
	}
	rev, ok, err := a.Current()
	if err != nil {
		e.log.Warn("cannot tell the current nginx release; reporting none", "error", err)
		return 0
	}
	if !ok {
		return 0
	}
	return int64(rev)
}

// nginxFailure maps an error from the engine to a command error.
func nginxFailure(ctx context.Context, what string, err error) *agentv1.CommandResult {
	var invalid *nginx.InvalidError
	switch {
	case errors.As(err, &invalid):
		return cmdError(agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "%s: %v", what, err)
	case ctx.Err() != nil:
		return cmdError(agentv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, "%s: %v", what, err)
	}
	return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "%s: %v", what, err)
}

var applyCodes = map[nginx.Code]agentv1.ApplyCode{
	nginx.Applied:                agentv1.ApplyCode_APPLY_CODE_APPLIED,
	nginx.TestFailed:             agentv1.ApplyCode_APPLY_CODE_TEST_FAILED,
	nginx.ReloadFailedRolledBack: agentv1.ApplyCode_APPLY_CODE_RELOAD_FAILED_ROLLED_BACK,
	nginx.RollbackFailed:         agentv1.ApplyCode_APPLY_CODE_ROLLBACK_FAILED,
}

func (e *nginxEngine) apply(ctx context.Context, m *agentv1.ApplyNginxRelease) *agentv1.CommandResult {
	if m.GetRevision() <= 0 {
		return cmdError(agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "apply nginx release: revision %d must be greater than 0", m.GetRevision())
	}
	a, err := e.get()
	if err != nil {
		return nginxFailure(ctx, "apply nginx release", err)
	}
	rel := nginx.Release{Revision: uint64(m.GetRevision()), Files: make([]nginx.File, len(m.GetFiles()))}
	for i, f := range m.GetFiles() {
		rel.Files[i] = nginx.File{Path: f.GetPath(), Content: f.GetContent(), Mode: fs.FileMode(f.GetMode())}
	}
	out, err := a.Apply(ctx, rel)
	if err != nil {
		return nginxFailure(ctx, fmt.Sprintf("apply nginx release %d", rel.Revision), err)
	}
	code, ok := applyCodes[out.Code]
	if !ok {
		return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "apply nginx release %d: unexpected outcome %s", rel.Revision, out.Code)
	}
	// The revision current now: the new one, or the one a failure restored.
	now := int64(rel.Revision)
	if out.Code != nginx.Applied {
		now = e.current()
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_Apply{Apply: &agentv1.ApplyResult{Code: code, Output: out.Output, Revision: now}}}
}

func (e *nginxEngine) drift(ctx context.Context) *agentv1.CommandResult {
	a, err := e.get()
	if err != nil {
		return nginxFailure(ctx, "check nginx drift", err)
	}
	d, err := a.Drift()
	if err != nil {
		return nginxFailure(ctx, "check nginx drift", err)
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_Drift{Drift: &agentv1.DriftResult{Added: d.Added, Removed: d.Removed, Modified: d.Modified}}}
}

func (e *nginxEngine) placeChallenge(ctx context.Context, m *agentv1.PlaceChallenge) *agentv1.CommandResult {
	a, err := e.get()
	if err == nil {
		err = a.PlaceChallenge(m.GetToken(), m.GetKeyAuthorization())
	}
	if err != nil {
		return nginxFailure(ctx, "place ACME challenge", err)
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_Challenge{Challenge: &agentv1.ChallengeResult{}}}
}

func (e *nginxEngine) removeChallenge(ctx context.Context, m *agentv1.RemoveChallenge) *agentv1.CommandResult {
	a, err := e.get()
	if err == nil {
		err = a.RemoveChallenge(m.GetToken())
	}
	if err != nil {
		return nginxFailure(ctx, "remove ACME challenge", err)
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_Challenge{Challenge: &agentv1.ChallengeResult{}}}
}

// node describes the node's nginx for Hello.
func (e *nginxEngine) node(c Config) *agentv1.NginxNode {
	n := &agentv1.NginxNode{
		Dir:         c.NginxDir,
		Installed:   e.installed(),
		HttpPort:    uint32(c.NginxHTTPPort),
		HttpsPort:   uint32(c.NginxHTTPSPort),
		BindAddress: c.NginxBindAddress,
	}
	if n.Installed {
		n.Version, n.StubStatus = e.inspect()
	}
	return n
}

// stubStatusFlag is how `nginx -V` says the module was built in.
const stubStatusFlag = "--with-http_stub_status_module"

// inspect asks the nginx binary (`nginx -V`) for its version and whether it
// was built with the stub_status module, so the controller renders the
// status block only for an nginx that accepts it. Any failure counts as an
// unknown version and no module.
func (e *nginxEngine) inspect() (version string, stubStatus bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.NginxBinary, "-V")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out // nginx writes -V to stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		e.log.Debug("nginx -V failed; not asking for the status block", "error", err)
		return "", false
	}
	return parseNginxVersion(out.Bytes()), bytes.Contains(out.Bytes(), []byte(stubStatusFlag))
}

// parseNginxVersion finds "nginx version: NAME/VERSION" in `nginx -V`
// output and returns "NAME/VERSION" when it has that form (a lower-case
// name, a dotted numeric version), else "".
func parseNginxVersion(out []byte) string {
	const prefix = "nginx version: "
	for line := range strings.Lines(string(out)) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		word, _, _ := strings.Cut(strings.TrimRight(rest, "\r\n"), " ")
		if nginxsyntax.ValidVersion(word) {
			return word
		}
		return ""
	}
	return ""
}
