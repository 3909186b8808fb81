// Package deploy turns the stored proxy configuration into numbered nginx revisions per
// server and applies them through the server's agent.
//
// For each server it builds the nginxconf.NodeConfig of the domains and streams assigned to
// it, renders it, and when the file set's hash differs from the server's latest revision it
// stores a new immutable ConfigRevision (number+1) as the server's desired revision. Deploy
// sends the desired revision to the agent as ApplyNginxRelease and records the outcome:
// the status and nginx's own output on the revision, and the applied revision on the
// server when, and only when, the agent reports it applied. One render or deploy runs at a
// time per server.
//
// Changes arrive through Changed, which batches a burst of edits into one revision per
// server after a quiet period (Run drives it). Reconcile, called when an agent connects,
// pushes the desired revision if the agent has not applied it yet.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Sender delivers commands to connected agents; *hub.Hub implements it. Node ids are the
// decimal server ids. A Sender that also implements NodeReporter lets each node's
// revision be rendered for the nginx its agent reports.
type Sender interface {
	Send(ctx context.Context, nodeID string, cmd *agentv1.Command) (*agentv1.CommandResult, error)
	Connected(nodeID string) bool
}

// Defaults for zero Config fields.
const (
	DefaultNginxDir     = "/etc/nginx/gatehouse"
	DefaultDebounce     = time.Second
	DefaultMaxDelay     = 10 * time.Second
	DefaultApplyTimeout = 2 * time.Minute
	DefaultParallel     = 8
)

// ErrOffline means the server's agent is not connected; the desired revision is applied
// when it reconnects.
var ErrOffline = errors.New("agent is not connected; the revision is applied when it reconnects")

// ErrApplyFailed means the agent did not apply the revision; the revision's outcome and
// output say why.
var ErrApplyFailed = errors.New("revision was not applied")

// Config configures a Deployer.
type Config struct {
	// NginxDir is the agent's managed nginx directory (its releases, the current link
	// and the ACME webroot); default DefaultNginxDir.
	NginxDir string
	// Debounce is the quiet period after a change before servers are re-rendered;
	// MaxDelay bounds how long a stream of changes can postpone it.
	Debounce time.Duration
	MaxDelay time.Duration
	// ApplyTimeout bounds one ApplyNginxRelease or CheckNginxDrift command.
	ApplyTimeout time.Duration
	// Parallel is how many servers a batch of changes renders and deploys at once.
	Parallel int
	// Certificate, optional, returns the certificate a node holds for a domain. Without
	// one, a domain is served over plain HTTP and its force_https, hsts and http2 are
	// left out.
	Certificate func(ctx context.Context, domain string) (*nginxconf.CertRef, error)
	// TLS, optional, returns the certificate a domain is served with as files that
	// travel in the release (below TLSDir); nil means none. It takes precedence over
	// Certificate.
	TLS func(ctx context.Context, domain string) (*TLSMaterial, error)
	// Secret resolves the Ref of a TLS file when a revision is sent to an agent.
	Secret func(ctx context.Context, ref string) ([]byte, error)
	// OnRevision, optional, is called after a revision is created and after each apply
	// outcome is recorded. It must not block.
	OnRevision func(serverID int, rev *ent.ConfigRevision)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.NginxDir == "" {
		c.NginxDir = DefaultNginxDir
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxDelay < c.Debounce {
		c.MaxDelay = c.Debounce
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, fe := nginxconf.Normalize(nginxconf.NodeConfig{Webroot: c.NginxDir + "/acme", ConfigDir: c.NginxDir + "/current"}); fe != nil {
		errs = append(errs, fmt.Errorf("nginx dir %q: must be an absolute path of letters, digits and . _ - /", c.NginxDir))
	}
	if c.Debounce < 0 || c.MaxDelay < 0 || c.ApplyTimeout < 0 {
		errs = append(errs, errors.New("debounce, max delay and apply timeout must not be negative"))
	}
	if c.Parallel < 0 {
		errs = append(errs, errors.New("parallel must not be negative"))
	}
	return errors.Join(errs...)
}

// Deployer renders and applies nginx revisions.
type Deployer struct {
	db     *store.DB
	sender Sender
	cfg    Config
	log    hclog.Logger

	locks sync.Map // server id -> chan struct{} (capacity 1)

	mu       sync.Mutex
	pending  map[int]struct{}
	due      time.Time // when the pending batch runs
	deadline time.Time // latest time the batch may be postponed to
	wake     chan struct{}
}

// New returns a Deployer on db that sends commands through sender.
func New(db *store.DB, sender Sender, cfg Config, log hclog.Logger) (*Deployer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("deploy config: %w", err)
	}
	return &Deployer{
		db: db, sender: sender, cfg: cfg, log: log.Named("deploy"),
		pending: map[int]struct{}{},
		wake:    make(chan struct{}, 1),
	}, nil
}

// lock takes the server's lock, waiting until it is free or ctx ends.
func (d *Deployer) lock(ctx context.Context, serverID int) (func(), error) {
	v, _ := d.locks.LoadOrStore(serverID, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the running deploy of server %d: %w", serverID, ctx.Err())
	}
}

func nodeID(serverID int) string { return strconv.Itoa(serverID) }

func parseNodeID(id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil || n <= 0 || strconv.Itoa(n) != id {
		return 0, fmt.Errorf("node id %q is not a server id", id)
	}
	return n, nil
}

func (d *Deployer) publish(rev *ent.ConfigRevision) {
	if d.cfg.OnRevision != nil && rev != nil {
		d.cfg.OnRevision(rev.ServerID, rev)
	}
}

// Changed schedules the servers for re-rendering and deployment. Calls in a burst are
// batched: the batch runs once no change arrived for Debounce, or MaxDelay after its first
// change. It never blocks.
func (d *Deployer) Changed(serverIDs ...int) {
	if len(serverIDs) == 0 {
		return
	}
	now := d.cfg.Now()
	d.mu.Lock()
	if len(d.pending) == 0 {
		d.deadline = now.Add(d.cfg.MaxDelay)
	}
	for _, id := range serverIDs {
		d.pending[id] = struct{}{}
	}
	d.due = now.Add(d.cfg.Debounce)
	if d.due.After(d.deadline) {
		d.due = d.deadline
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Pending returns the servers waiting in the current batch.
func (d *Deployer) Pending() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.pending))
}

// Run processes batches of changes until ctx ends.
func (d *Deployer) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		n, due := len(d.pending), d.due
		d.mu.Unlock()
		wait := time.Hour
		if n > 0 {
			wait = due.Sub(d.cfg.Now())
		}
		if n > 0 && wait <= 0 {
			d.Flush(ctx)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// Flush processes the pending batch now: every server in it is rendered and, when its
// agent is connected and has not applied the result, deployed. Problems are logged; the
// revisions record the outcomes.
func (d *Deployer) Flush(ctx context.Context) {
	d.mu.Lock()
	ids := slices.Sorted(maps.Keys(d.pending))
	clear(d.pending)
	d.mu.Unlock()
	sem := make(chan struct{}, d.cfg.Parallel)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := d.sync(ctx, id, false); err != nil && !errors.Is(err, ErrOffline) && !errors.Is(err, ErrApplyFailed) {
				d.log.Error("deploy after a change failed", "server", id, "error", err)
			}
		})
	}
	wg.Wait()
}
