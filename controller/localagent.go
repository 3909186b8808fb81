package controller

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gatehousehq/gatehouse/agent"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/agentcertificate"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/version"
)

var notNameChars = regexp.MustCompile(`[^a-z0-9.-]+`)

// localServerName derives a server name from the host name.
func localServerName() string {
	h, _ := os.Hostname()
	h = strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(h), "-"), "-.")
	if len(h) > 50 {
		h = h[:50]
	}
	if h == "" {
		return "local"
	}
	return h
}

// runLocalAgent runs an agent for the controller's own host, in process,
// enrolled through the same token path as any other node.
func (c *Controller) runLocalAgent(ctx context.Context) error {
	srv, err := c.db.Client.Server.Query().Where(server.Local(true)).First(ctx)
	if ent.IsNotFound(err) {
		name := localServerName()
		srv, err = c.registry.Create(ctx, name, "", true)
		if err != nil {
			srv, err = c.registry.Create(ctx, name+"-local", "", true)
		}
	}
	if err != nil {
		return fmt.Errorf("register the local server: %w", err)
	}
	// The agent wants absolute paths; the data directory may be relative
	// (the default is ./data).
	stateDir, err := filepath.Abs(c.dataPath("agent"))
	if err != nil {
		return err
	}
	valid, err := c.db.Client.AgentCertificate.Query().
		Where(agentcertificate.HasServerWith(server.ID(srv.ID)), agentcertificate.RevokedAtIsNil()).Exist(ctx)
	if err != nil {
		return err
	}
	token := ""
	if !valid {
		// The controller does not know the stored identity (a new database,
		// or a revoked certificate): start over with a fresh token.
		if err := os.RemoveAll(stateDir); err != nil {
			return err
		}
		if token, _, err = c.registry.IssueToken(ctx, srv.ID, c.cfg.TokenLifetime); err != nil {
			return err
		}
	}
	a, err := agent.New(agent.Config{
		ControllerAddr: dialable(c.AgentAddr()),
		CAPin:          c.ca.Pin(),
		Token:          token,
		StateDir:       stateDir,
		GlancesURL:     c.cfg.GlancesURL,
		NginxDir:       filepath.Join(stateDir, "nginx"),
		Version:        version.Version,
	}, c.log.Named("local-agent"))
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// dialable turns a listen address into one a local client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
