package controller

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// Admin is the controller's state opened for administrative commands,
// without serving anything.
type Admin struct {
	cfg      config.Config
	db       *store.DB
	Users    *auth.Users
	Registry *nodes.Registry
	Tokens   *auth.Tokens
	ca       *pki.CA
	audit    *audit.Recorder
}

// OpenAdmin opens and migrates the database and loads the master key and CA.
func OpenAdmin(ctx context.Context, cfg config.Config, log hclog.Logger) (*Admin, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, log.Named("store"))
	if err != nil {
		return nil, err
	}
	a := &Admin{cfg: cfg, db: db}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	box, err := openSecrets(ctx, db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	rec := audit.New(db.Client, log)
	a.audit = rec
	if a.Users, err = auth.NewUsers(db.Client, rec, log, auth.UsersOptions{}); err != nil {
		db.Close()
		return nil, err
	}
	if a.ca, err = loadOrCreateCA(ctx, db, box); err != nil {
		db.Close()
		return nil, err
	}
	a.Registry = nodes.New(db, log)
	a.Tokens = auth.NewTokens(db.Client, rec, log, time.Now)
	return a, nil
}

// Close closes the database.
func (a *Admin) Close() error { return a.db.Close() }

// Migrate applies pending migrations and returns their names.
func Migrate(ctx context.Context, cfg config.Config, log hclog.Logger) ([]string, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, log.Named("store"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Migrate(ctx)
}

// CAPin is the pin agents use to trust this controller.
func (a *Admin) CAPin() string { return a.ca.Pin() }

// Servers lists the servers by name.
func (a *Admin) Servers(ctx context.Context) ([]*ent.Server, error) {
	return a.db.Client.Server.Query().Order(ent.Asc(server.FieldName)).All(ctx)
}

// ServerByName finds a server.
func (a *Admin) ServerByName(ctx context.Context, name string) (*ent.Server, error) {
	s, err := a.db.Client.Server.Query().Where(server.Name(name)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("no server named %q", name)
	}
	return s, err
}

// SetServer changes a server's settings (nil fields are kept), recording the
// change in the audit log as actor. Settings that shape the node's nginx
// configuration (trusted proxies, the answer to unknown names, the cache
// size) reach the node with the running controller's next nginx.sync, or
// when the controller starts.
func (a *Admin) SetServer(ctx context.Context, actor audit.Actor, name string, in ServerSettings) (*ent.Server, error) {
	s, err := a.ServerByName(ctx, name)
	if err != nil {
		return nil, err
	}
	s, changed, _, err := applyServerSettings(ctx, a.db.Client, s, in)
	if err != nil || changed == "" {
		return s, err
	}
	return s, a.audit.Record(ctx, audit.For(actor, "server.update", "server:"+s.Name, changed))
}

// Enrollment is what a node needs to join: the token and the command line.
type Enrollment struct {
	Server    *ent.Server
	Token     string
	ExpiresAt time.Time
	Command   string
}

// Enroll issues an enrollment token for a server (creating the server when
// it does not exist) and returns the one-line install command.
func (a *Admin) Enroll(ctx context.Context, name string) (*Enrollment, error) {
	s, err := a.db.Client.Server.Query().Where(server.Name(name)).Only(ctx)
	if ent.IsNotFound(err) {
		s, err = a.Registry.Create(ctx, name, "", false)
	}
	if err != nil {
		return nil, err
	}
	return enrollment(ctx, a.Registry, s, a.cfg, a.ca.Pin())
}

func enrollment(ctx context.Context, r *nodes.Registry, s *ent.Server, cfg config.Config, pin string) (*Enrollment, error) {
	token, exp, err := r.IssueToken(ctx, s.ID, cfg.TokenLifetime)
	if err != nil {
		return nil, err
	}
	return &Enrollment{Server: s, Token: token, ExpiresAt: exp, Command: InstallCommand(cfg.AgentAddress, pin, token)}, nil
}

// InstallCommand is the command that enrolls and starts an agent on a node
// that has the gatehouse-agent binary. The token travels in the environment,
// not in argv, where other local users could read it.
func InstallCommand(controllerAddr, pin, token string) string {
	return fmt.Sprintf("sudo GATEHOUSE_AGENT_TOKEN=%s gatehouse-agent -controller %s -ca_pin %s", token, controllerAddr, pin)
}

// WriteServers prints the servers as a table.
func WriteServers(w io.Writer, list []*ent.Server) {
	fmt.Fprintf(w, "%-5s %-24s %-8s %-20s %s\n", "ID", "NAME", "STATUS", "LAST SEEN", "AGENT")
	for _, s := range list {
		seen := "never"
		if s.LastSeenAt != nil {
			seen = s.LastSeenAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "%-5d %-24s %-8s %-20s %s\n", s.ID, s.Name, s.Status, seen, s.AgentVersion)
	}
}
