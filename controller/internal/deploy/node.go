package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/schema"
	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// NodeReporter is implemented by a Sender that knows what a connected agent reported
// about its node's nginx in its Hello (*hub.Hub does).
type NodeReporter interface {
	NginxNode(nodeID string) *agentv1.NginxNode
}

// NodeNginx is how nginx is set up on one node: the agent's managed directory and where
// the rendered server blocks listen.
type NodeNginx struct {
	Dir         string
	HTTPPort    int    // 0: 80
	HTTPSPort   int    // 0: 443
	BindAddress string // empty: all addresses
	// StubStatus: nginx has the stub_status module, so releases carry the
	// block the agent reads nginx's counters from.
	StubStatus bool
	// Version is the server software and version the agent found, such as
	// "nginx/1.22.1"; empty when unknown or not of that form. It does not
	// change what is rendered.
	Version string
	// Reported is true when the node's agent reported these values (now or before), false
	// when they are defaults (its agent never reported them, or is too old to).
	Reported bool
}

// apply sets cfg's node fields: the paths below the managed dir (nginx creates cache/ itself
// when a route caches), ports and bind address.
func (n NodeNginx) apply(cfg nginxconf.NodeConfig) nginxconf.NodeConfig {
	cfg.Webroot, cfg.ConfigDir, cfg.CacheDir = n.Dir+"/acme", n.Dir+"/current", n.Dir+"/cache"
	cfg.HTTPPort, cfg.HTTPSPort, cfg.BindAddress = n.HTTPPort, n.HTTPSPort, n.BindAddress
	cfg.Status = n.StubStatus
	return cfg
}

// NodeNginx returns the nginx setup the server's revisions are rendered for. A connected
// agent's report wins and is kept on the server, so it holds while the agent is away and
// across controller restarts; without any report, the dir provisioning installed the
// agent with, else Config.NginxDir, on ports 80 and 443. A report the renderer cannot use
// (from a broken or hostile agent) is an error, so no revision is rendered from it, and
// it is never stored.
func (d *Deployer) NodeNginx(ctx context.Context, srv *ent.Server) (NodeNginx, error) {
	node := nodeID(srv.ID)
	if r, ok := d.sender.(NodeReporter); ok && d.sender.Connected(node) {
		if rep := r.NginxNode(node); rep != nil {
			if rep.GetHttpPort() > 65535 || rep.GetHttpsPort() > 65535 {
				return NodeNginx{}, fmt.Errorf("server %s: its agent reports nginx ports %d and %d; set nginx_http_port and nginx_https_port to 1-65535", srv.Name, rep.GetHttpPort(), rep.GetHttpsPort())
			}
			n := NodeNginx{Dir: rep.GetDir(), HTTPPort: int(rep.GetHttpPort()), HTTPSPort: int(rep.GetHttpsPort()), BindAddress: rep.GetBindAddress(),
				StubStatus: rep.GetStubStatus(), Reported: true}
			if v := rep.GetVersion(); nginxsyntax.ValidVersion(v) {
				n.Version = v
			}
			if _, fe := nginxconf.Normalize(n.apply(nginxconf.NodeConfig{})); fe != nil {
				return NodeNginx{}, fmt.Errorf("server %s: its agent reports nginx settings that cannot be rendered; fix the agent's nginx_dir, nginx_http_port, nginx_https_port or nginx_bind_address: %w", srv.Name, fe)
			}
			if err := d.remember(ctx, srv, n); err != nil {
				return NodeNginx{}, err
			}
			return n, nil
		}
	}
	if s := srv.NginxNode; s != nil {
		n := NodeNginx{Dir: s.Dir, HTTPPort: s.HTTPPort, HTTPSPort: s.HTTPSPort, BindAddress: s.BindAddress, StubStatus: s.StubStatus, Reported: true}
		if nginxsyntax.ValidVersion(s.Version) {
			n.Version = s.Version
		}
		// Stored reports were valid when stored; a row edited since is not trusted either.
		if _, fe := nginxconf.Normalize(n.apply(nginxconf.NodeConfig{})); fe != nil {
			return NodeNginx{}, fmt.Errorf("server %s: the stored nginx report cannot be rendered; reconnect its agent: %w", srv.Name, fe)
		}
		return n, nil
	}
	n := NodeNginx{Dir: d.cfg.NginxDir}
	if srv.InstallLayout != nil && srv.InstallLayout.NginxDir != "" {
		n.Dir = srv.InstallLayout.NginxDir
	}
	return n, nil
}

// remember stores a validated report on the server when it differs from the stored one.
func (d *Deployer) remember(ctx context.Context, srv *ent.Server, n NodeNginx) error {
	if s := srv.NginxNode; s != nil && s.Dir == n.Dir && s.HTTPPort == n.HTTPPort && s.HTTPSPort == n.HTTPSPort && s.BindAddress == n.BindAddress &&
		s.StubStatus == n.StubStatus && s.Version == n.Version {
		return nil
	}
	rep := &schema.NginxNode{Dir: n.Dir, HTTPPort: n.HTTPPort, HTTPSPort: n.HTTPSPort, BindAddress: n.BindAddress, StubStatus: n.StubStatus,
		Version: n.Version, ReportedAt: time.Now().UTC()}
	if err := d.db.Client.Server.UpdateOneID(srv.ID).SetNginxNode(rep).Exec(ctx); err != nil {
		return fmt.Errorf("server %s: store its agent's nginx report: %w", srv.Name, err)
	}
	srv.NginxNode = rep
	return nil
}
