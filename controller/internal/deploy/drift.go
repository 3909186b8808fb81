package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gatehousehq/gatehouse/ent/schema"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// CheckDrift asks the server's agent whether the files of its current release were
// changed behind its back and stores the answer on the server.
func (d *Deployer) CheckDrift(ctx context.Context, serverID int) (*schema.NginxDrift, error) {
	srv, err := d.db.Client.Server.Get(ctx, serverID)
	if err != nil {
		return nil, fmt.Errorf("load server %d: %w", serverID, err)
	}
	node := nodeID(serverID)
	if !d.sender.Connected(node) {
		return nil, fmt.Errorf("server %s: %w", srv.Name, errors.New("agent is not connected; check drift once it is online"))
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	defer cancel()
	res, err := d.sender.Send(cctx, node, &agentv1.Command{Kind: &agentv1.Command_CheckNginxDrift{CheckNginxDrift: &agentv1.CheckNginxDrift{}}})
	if err != nil {
		return nil, fmt.Errorf("check drift on server %s: %w", srv.Name, err)
	}
	if e := res.GetError(); e != nil {
		return nil, fmt.Errorf("check drift on server %s: agent: %s (%s)", srv.Name, e.GetMessage(), e.GetCode())
	}
	r := res.GetDrift()
	if r == nil {
		return nil, fmt.Errorf("check drift on server %s: the agent answered without a drift result", srv.Name)
	}
	drift := &schema.NginxDrift{
		CheckedAt: d.cfg.Now().UTC(),
		Revision:  srv.AppliedRevision,
		Added:     sorted(r.GetAdded()),
		Removed:   sorted(r.GetRemoved()),
		Modified:  sorted(r.GetModified()),
	}
	if err := d.db.Client.Server.UpdateOneID(serverID).SetDrift(drift).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store drift of server %s: %w", srv.Name, err)
	}
	if drift.Drifted() {
		d.log.Warn("nginx files changed outside gatehouse", "server", srv.Name,
			"added", len(drift.Added), "removed", len(drift.Removed), "modified", len(drift.Modified))
	}
	return drift, nil
}

func sorted(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}
