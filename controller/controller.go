// Package controller assembles the Gatehouse controller: database, sealed
// secrets, the agent CA and gRPC hub, the metrics pipeline, the web UI and
// API, and the built-in agent for the controller's own host. New prepares
// everything and binds the listeners; Run serves until its context ends.
package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/agent/trust"
	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/certs"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/health"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/user"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// Controller is a running controller.
type Controller struct {
	cfg config.Config
	log hclog.Logger
	out io.Writer
	// unlock releases the data directory, held while the controller runs.
	unlock func()

	db       *store.DB
	box      *secrets.Box
	ca       *pki.CA
	hub      *hub.Hub
	registry *nodes.Registry
	writer   *metrics.Writer
	maint    *metrics.Maintainer
	query    *metrics.Query
	events   *events.Broker
	audit    *audit.Recorder
	users    *auth.Users
	tokens   *auth.Tokens
	tiles    *tileCoalescer
	deployer *deploy.Deployer
	proxy    *proxyconf.Service
	certs    *certs.Service
	health   *health.Service
	status   *statusWeb // the public status page, whose cache changes to listings clear
	sched    *scheduler.Scheduler
	alerts   *alerts.Engine
	channels *alerts.Channels
	prov     *provisioner

	// monitorsClock is the clock of the monitors' checks and pushes.
	monitorsClock monitorsClock
	// upstreamProbes are the newest probes of upstream servers by the nodes.
	upstreamProbes upstreamProbes

	httpLn, agentLn net.Listener
	httpSrv         *http.Server
	webClose        func()
	webRoutes       func() []web.Route // the web layer's route table, for its reference docs
}

// Options are the parts of a controller that are not configuration.
type Options struct {
	// Out is the terminal: the first admin password is shown there, never in the log.
	Out io.Writer
	// BcryptCost overrides the password hashing cost (tests lower it).
	BcryptCost int
}

// New opens (and migrates) the database, loads or creates the master key and
// the agent CA, creates the first admin when there is none, and binds the
// HTTP and agent listeners. Nothing is served until Run.
func New(ctx context.Context, cfg config.Config, log hclog.Logger, opts Options) (_ *Controller, err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	c := &Controller{cfg: cfg, log: log, out: opts.Out}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if c.unlock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	c.db, err = store.Open(ctx, cfg.DatabaseURL, log.Named("store"))
	if err != nil {
		return nil, err
	}
	if _, err := c.db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	c.box, err = openSecrets(ctx, c.db, cfg)
	if err != nil {
		return nil, err
	}
	c.audit = audit.New(c.db.Client, log)
	c.users, err = auth.NewUsers(c.db.Client, c.audit, log, auth.UsersOptions{BcryptCost: opts.BcryptCost, Secrets: c.box})
	if err != nil {
		return nil, err
	}
	c.tokens = auth.NewTokens(c.db.Client, c.audit, log, nil)
	if err := c.bootstrapAdmin(ctx); err != nil {
		return nil, err
	}
	c.ca, err = loadOrCreateCA(ctx, c.db, c.box)
	if err != nil {
		return nil, err
	}
	c.events = events.New(log)
	c.registry = nodes.New(c.db, log)
	c.tiles = newTileCoalescer(c.events)
	c.writer = metrics.NewWriter(c.db, log.Named("metrics"), metrics.WriterOptions{Publish: c.publishMetrics})
	c.maint = metrics.NewMaintainer(c.writer, metrics.Retention{Raw: cfg.RawRetention, Minute: cfg.MinuteRetention, Hour: cfg.HourRetention}, 3*cfg.MetricsInterval)
	c.maint.OnStatus = func(ids []int, status string) {
		for _, id := range ids {
			c.events.Publish(events.Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": id, "status": status}})
		}
	}
	c.query = metrics.NewQuery(c.writer)
	// Alerts and the job scheduler (alerts.go, scheduler.go).
	c.buildAlerts()
	if err := c.buildScheduler(); err != nil {
		return nil, err
	}

	if c.agentLn, err = net.Listen("tcp", cfg.AgentListen); err != nil {
		return nil, fmt.Errorf("agent listener: %w", err)
	}
	serverCert, err := c.ca.IssueServer(agentHosts(cfg, c.agentLn.Addr()))
	if err != nil {
		return nil, err
	}
	c.hub, err = hub.New(hub.Config{
		CA:              c.ca,
		ServerCert:      trust.NewHotCert(serverCert),
		Store:           c.registry,
		Ingest:          c.writer,
		OnEvent:         c.onHubEvent,
		CertLifetime:    cfg.CertLifetime,
		MetricsInterval: cfg.MetricsInterval,
	}, log)
	if err != nil {
		return nil, err
	}
	c.registry.OnRevoke = func(id string) { c.hub.Disconnect(id, "certificate revoked or server removed") }
	c.deployer, err = deploy.New(c.db, c.hub, deploy.Config{
		// Certificates travel in each node's release (certs.go builds c.certs next).
		TLS:    func(ctx context.Context, d string) (*deploy.TLSMaterial, error) { return c.certs.TLS(ctx, d) },
		Secret: func(ctx context.Context, ref string) ([]byte, error) { return c.certs.Secret(ctx, ref) },
		OnRevision: func(serverID int, rev *ent.ConfigRevision) {
			c.events.Publish(events.Event{Topic: "server." + strconv.Itoa(serverID), Name: "revision",
				Data: map[string]any{"server_id": serverID, "number": rev.Number, "status": rev.Status, "outcome": rev.Outcome}})
		},
	}, log)
	if err != nil {
		return nil, err
	}
	if err := c.buildCerts(); err != nil {
		return nil, err
	}
	if err := c.buildHealth(); err != nil {
		return nil, err
	}
	c.proxy = proxyconf.New(c.db, proxyconf.Config{Notifier: c.deployer, Certificate: c.certs.HasCertificate}, log)
	c.prov = newProvisioner(c)
	if err := c.prov.recoverInterrupted(ctx); err != nil {
		return nil, err
	}

	if c.httpLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("http listener: %w (is another gatehouse running? choose another with --listen)", err)
	}
	if err := c.buildWeb(); err != nil {
		return nil, err
	}
	return c, nil
}

// HTTPAddr is the bound address of the web UI and API.
func (c *Controller) HTTPAddr() string { return c.httpLn.Addr().String() }

// AgentAddr is the bound address of the agent endpoint.
func (c *Controller) AgentAddr() string { return c.agentLn.Addr().String() }

// CAPin is the pin agents use to trust this controller.
func (c *Controller) CAPin() string { return c.ca.Pin() }

// URL is where people reach the UI.
func (c *Controller) URL() string {
	if c.cfg.PublicURL != "" {
		return c.cfg.PublicURL
	}
	scheme := "http"
	if c.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + c.HTTPAddr()
}

// Run serves the UI, the API and the agents until ctx ends, then shuts down.
func (c *Controller) Run(ctx context.Context) error {
	defer c.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	goRun(func() { c.writer.Run(ctx) })
	goRun(func() { c.tiles.run(ctx) })
	goRun(func() { c.sched.Run(ctx) })
	goRun(func() { c.alerts.Run(ctx) })
	goRun(func() { c.channels.Run(ctx, c.alerts.Handler()) })
	goRun(func() { c.deployer.Run(ctx) })
	goRun(func() {
		if err := c.hub.Serve(c.agentLn); err != nil {
			errc <- fmt.Errorf("agent endpoint: %w", err)
		}
	})
	goRun(func() {
		var err error
		if c.cfg.TLSCert != "" {
			err = c.httpSrv.ServeTLS(c.httpLn, c.cfg.TLSCert, c.cfg.TLSKey)
		} else {
			err = c.httpSrv.Serve(c.httpLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("web: %w", err)
		}
	})
	if c.cfg.LocalAgent {
		goRun(func() {
			if err := c.runLocalAgent(ctx); err != nil {
				c.log.Error("built-in agent stopped", "error", err)
			}
		})
	}
	c.log.Info("gatehouse controller ready", "version", version.Version, "url", c.URL(), "agents", c.AgentAddr(), "database", c.db.Dialect)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shut, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	// Closing the web layer first ends open event streams, which would
	// otherwise hold the HTTP shutdown until its timeout.
	c.webClose()
	c.webClose = nil
	c.httpSrv.Shutdown(shut)
	c.prov.stop()
	c.hub.Stop()
	c.events.Close()
	wg.Wait()
	return err
}

func (c *Controller) close() {
	if c.webClose != nil {
		c.webClose()
	}
	if c.httpLn != nil {
		c.httpLn.Close()
	}
	if c.agentLn != nil {
		c.agentLn.Close()
	}
	if c.db != nil {
		c.db.Close()
	}
	if c.unlock != nil {
		c.unlock()
		c.unlock = nil
	}
}

func (c *Controller) onHubEvent(e hub.Event) {
	id, _ := strconv.Atoi(e.NodeID)
	if e.Kind == hub.EventOnline && c.deployer != nil {
		// Push the desired nginx release if the node lacks it; never block the hub.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := c.deployer.ReconcileAgent(ctx, e.NodeID, e.Hello.GetAppliedRevision()); err != nil {
				c.log.Warn("reconcile nginx release", "node", e.NodeID, "error", err)
			}
		}()
	}
	c.events.Publish(events.Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": id, "status": e.Kind.String()}})
}

// agentHosts are the names the agent endpoint's certificate carries.
func agentHosts(cfg config.Config, bound net.Addr) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range []string{cfg.AgentAddress, cfg.AgentListen} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// bootstrapAdmin creates the first admin with a random password, shown once
// on the terminal, when no admin exists.
func (c *Controller) bootstrapAdmin(ctx context.Context) error {
	n, err := c.db.Client.User.Query().Where(user.RoleEQ(user.RoleAdmin)).Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := rand.Text()[:20]
	if _, err := c.users.Create(ctx, audit.System("first-run"), "admin", password, auth.RoleAdmin); err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	fmt.Fprintf(c.out, "\nFirst run: an admin account was created.\n  user:     admin\n  password: %s\nThis password is shown only now; change it after logging in (click your name at the top right, or run `gatehouse user passwd admin`).\n\n", password)
	return nil
}

// dataPath returns a path inside the data directory.
func (c *Controller) dataPath(parts ...string) string {
	return filepath.Join(append([]string{c.cfg.DataDir}, parts...)...)
}
