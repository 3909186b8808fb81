package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
	"github.com/gatehousehq/gatehouse/ent/predicate"
	"github.com/gatehousehq/gatehouse/ent/server"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// Outcomes recorded on a revision after an apply attempt.
const (
	OutcomeApplied         = "applied"          // the release is current and nginx runs it
	OutcomeTestFailed      = "test_failed"      // nginx -t refused it; the previous release is current
	OutcomeReloadFailed    = "reload_failed"    // the reload failed and was rolled back
	OutcomeRollbackFailed  = "rollback_failed"  // the reload failed and so did the rollback
	OutcomeRefused         = "refused"          // the agent refused the command's arguments
	OutcomeUnsupported     = "unsupported"      // the agent does not implement the command
	OutcomeAgentError      = "agent_error"      // the command ran on the agent and failed
	OutcomeUndelivered     = "undelivered"      // no answer from the agent; retried on reconnect
	OutcomeUnknownResponse = "unknown_response" // the agent answered with something else
)

// file is one file of a stored revision.
type file struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
	// Ref names a secret sent in place of Content (see TLSFile); Mode is the file's
	// permission on the node (0: the agent's default).
	Ref  string `json:"ref,omitempty"`
	Mode uint32 `json:"mode,omitempty"`
}

// encodeFiles stores a file set as a JSON list sorted by path; equal sets encode equally.
func encodeFiles(files []file) ([]byte, error) {
	list := slices.Clone(files)
	slices.SortFunc(list, func(a, b file) int { return strings.Compare(a.Path, b.Path) })
	return json.Marshal(list)
}

func decodeFiles(rev *ent.ConfigRevision) ([]file, error) {
	var list []file
	if err := json.Unmarshal(rev.Files, &list); err != nil {
		return nil, fmt.Errorf("decode files of revision %d: %w", rev.Number, err)
	}
	return list, nil
}

// Files decodes a revision's file set. A secret file (a certificate's key) shows the
// description stored in its place, never the secret.
func Files(rev *ent.ConfigRevision) ([]nginxconf.File, error) {
	list, err := decodeFiles(rev)
	if err != nil {
		return nil, err
	}
	out := make([]nginxconf.File, len(list))
	for i, f := range list {
		out[i] = nginxconf.File{Path: f.Path, Content: f.Content}
	}
	return out, nil
}

// DesiredRevisions returns the desired (newest) revision of each server that
// has one, by server id, without its files: the server id, number, status,
// outcome and nginx output. It reads up to 200 servers per query, because
// SQLite refuses expressions nested deeper than 1,000, which one OR over
// thousands of servers would be.
func DesiredRevisions(ctx context.Context, db *store.DB, servers []*ent.Server) (map[int]*ent.ConfigRevision, error) {
	var preds []predicate.ConfigRevision
	seen := make(map[int]bool, len(servers))
	for _, s := range servers {
		if s.DesiredRevision > 0 && !seen[s.ID] {
			seen[s.ID] = true
			preds = append(preds, configrevision.And(configrevision.ServerID(s.ID), configrevision.Number(s.DesiredRevision)))
		}
	}
	out := make(map[int]*ent.ConfigRevision, len(preds))
	for chunk := range slices.Chunk(preds, 200) {
		revs, err := db.Client.ConfigRevision.Query().Where(configrevision.Or(chunk...)).
			Select(configrevision.FieldServerID, configrevision.FieldNumber, configrevision.FieldStatus,
				configrevision.FieldOutcome, configrevision.FieldOutput).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load desired revisions: %w", err)
		}
		for _, rev := range revs {
			out[rev.ServerID] = rev
		}
	}
	return out, nil
}

// Revisions lists a server's revisions, newest first, at most limit (0 for all).
func (d *Deployer) Revisions(ctx context.Context, serverID, limit int) ([]*ent.ConfigRevision, error) {
	q := d.db.Client.ConfigRevision.Query().Where(configrevision.ServerID(serverID)).Order(ent.Desc(configrevision.FieldNumber))
	if limit > 0 {
		q = q.Limit(limit)
	}
	return q.All(ctx)
}

// Revision returns a server's revision by number.
func (d *Deployer) Revision(ctx context.Context, serverID int, number int64) (*ent.ConfigRevision, error) {
	rev, err := d.db.Client.ConfigRevision.Query().Where(configrevision.ServerID(serverID), configrevision.Number(number)).Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("revision %d of server %d: %w", number, serverID, err)
	}
	return rev, nil
}

func (d *Deployer) latest(ctx context.Context, c *ent.Client, serverID int) (*ent.ConfigRevision, error) {
	rev, err := c.ConfigRevision.Query().Where(configrevision.ServerID(serverID)).Order(ent.Desc(configrevision.FieldNumber)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return rev, err
}

// Render renders the server's configuration and, when it differs from the latest
// revision, stores it as a new revision and makes that the desired one. It returns the
// latest revision and whether it was created now; a server that serves no domain and no
// stream and never had a revision gets none (nil).
func (d *Deployer) Render(ctx context.Context, serverID int) (*ent.ConfigRevision, bool, error) {
	unlock, err := d.lock(ctx, serverID)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	return d.render(ctx, serverID)
}

func (d *Deployer) render(ctx context.Context, serverID int) (*ent.ConfigRevision, bool, error) {
	cfg, extra, plain, err := d.nodeConfig(ctx, serverID)
	if err != nil {
		return nil, false, err
	}
	r, err := nginxconf.Render(cfg)
	if err != nil {
		return nil, false, fmt.Errorf("render server %d: %w", serverID, err)
	}
	all, hash := withExtra(r, extra)
	r.Hash = hash
	latest, err := d.latest(ctx, d.db.Client, serverID)
	if err != nil {
		return nil, false, fmt.Errorf("load latest revision of server %d: %w", serverID, err)
	}
	if latest == nil && len(cfg.Domains) == 0 && len(cfg.Streams) == 0 {
		// Nothing to serve and nothing served before: the node gets no release, so a
		// node without nginx (a metrics-only server) never sees an nginx command.
		return nil, false, nil
	}
	if latest != nil && latest.Hash == r.Hash {
		return latest, false, nil
	}
	files, err := encodeFiles(all)
	if err != nil {
		return nil, false, fmt.Errorf("encode files: %w", err)
	}
	var rev *ent.ConfigRevision
	err = d.tx(ctx, func(tx *ent.Tx) error {
		latest, err := d.latest(ctx, tx.Client(), serverID)
		if err != nil {
			return err
		}
		number := int64(1)
		if latest != nil {
			number = latest.Number + 1
		}
		if _, err := tx.ConfigRevision.Update().
			Where(configrevision.ServerID(serverID), configrevision.StatusEQ(configrevision.StatusPending)).
			SetStatus(configrevision.StatusSuperseded).Save(ctx); err != nil {
			return fmt.Errorf("supersede pending revisions: %w", err)
		}
		rev, err = tx.ConfigRevision.Create().SetServerID(serverID).SetNumber(number).SetHash(r.Hash).SetFiles(files).Save(ctx)
		if err != nil {
			return fmt.Errorf("store revision: %w", err)
		}
		return tx.Server.UpdateOneID(serverID).SetDesiredRevision(number).Exec(ctx)
	})
	if err != nil {
		return nil, false, fmt.Errorf("store revision of server %d: %w", serverID, err)
	}
	d.log.Info("new nginx revision", "server", serverID, "revision", rev.Number, "files", len(all), "hash", r.Hash[:12])
	// Said with each new revision only: the server is rendered again on every
	// change and every nginx.sync.
	for _, name := range plain {
		d.log.Warn("domain has no certificate; serving it over plain HTTP", "domain", name, "server", serverID)
	}
	d.publish(rev)
	return rev, true, nil
}

func (d *Deployer) tx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := d.db.Client.Tx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Deploy renders the server's configuration and applies its desired revision through the
// agent, also when it was applied before: the agent leaves an intact release alone and
// restores one whose files were edited behind its back. It returns the revision with its
// recorded outcome (nil when the server has none); the error wraps ErrOffline when the
// agent is not connected and ErrApplyFailed when the agent did not apply it.
func (d *Deployer) Deploy(ctx context.Context, serverID int) (*ent.ConfigRevision, error) {
	return d.sync(ctx, serverID, true)
}

// Reconcile is called when a node's agent connects: it renders the server's configuration
// and pushes the desired revision if the agent has not applied it. A revision nginx
// refused is not pushed again until the configuration changes or Deploy is called.
func (d *Deployer) Reconcile(ctx context.Context, nodeID string) error {
	id, err := parseNodeID(nodeID)
	if err != nil {
		return err
	}
	_, err = d.sync(ctx, id, false)
	if errors.Is(err, ErrApplyFailed) {
		return nil // recorded on the revision
	}
	return err
}

// ReconcileAgent is Reconcile for an agent that reported, in its Hello, the revision it
// runs. When that differs from the recorded applied revision (the agent lost its
// releases, or was restored from an older state), the agent's word is recorded first, so
// the desired revision is pushed even if it was applied before.
func (d *Deployer) ReconcileAgent(ctx context.Context, nodeID string, reported int64) error {
	id, err := parseNodeID(nodeID)
	if err != nil {
		return err
	}
	n, err := d.db.Client.Server.Update().Where(server.ID(id), server.AppliedRevisionNEQ(reported)).SetAppliedRevision(reported).Save(ctx)
	if err != nil {
		return fmt.Errorf("record the revision server %d reports: %w", id, err)
	}
	if n > 0 {
		d.log.Warn("agent runs another revision than recorded; recording what it reports", "server", id, "reported", reported)
	}
	return d.Reconcile(ctx, nodeID)
}

// sync brings one server up to date. With retry, the revision is sent again even when
// it failed or was applied before.
func (d *Deployer) sync(ctx context.Context, serverID int, retry bool) (*ent.ConfigRevision, error) {
	unlock, err := d.lock(ctx, serverID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	srv, err := d.db.Client.Server.Get(ctx, serverID)
	if ent.IsNotFound(err) {
		return nil, nil // deleted since the change
	}
	if err != nil {
		return nil, fmt.Errorf("load server %d: %w", serverID, err)
	}
	if srv.Status == server.StatusRemoved {
		return nil, nil
	}
	rev, _, err := d.render(ctx, serverID)
	if err != nil {
		// The stored configuration no longer renders (it is validated on every change,
		// so this means the rules changed); keep the node on its desired revision.
		d.log.Error("render failed; keeping the desired revision", "server", serverID, "error", err)
		rev, err = d.Revision(ctx, serverID, srv.DesiredRevision)
		if err != nil {
			return nil, err
		}
	}
	if rev == nil {
		return nil, nil
	}
	srv, err = d.db.Client.Server.Get(ctx, serverID)
	if err != nil {
		return nil, fmt.Errorf("load server %d: %w", serverID, err)
	}
	if !retry && srv.AppliedRevision == rev.Number && rev.Status == configrevision.StatusApplied {
		return rev, nil
	}
	if rev.Status == configrevision.StatusFailed && !retry {
		return rev, nil
	}
	return d.push(ctx, srv, rev)
}

// push sends rev to the server's agent and records the outcome.
func (d *Deployer) push(ctx context.Context, srv *ent.Server, rev *ent.ConfigRevision) (*ent.ConfigRevision, error) {
	node := nodeID(srv.ID)
	if !d.sender.Connected(node) {
		return rev, fmt.Errorf("server %s: %w", srv.Name, ErrOffline)
	}
	files, err := decodeFiles(rev)
	if err != nil {
		return rev, err
	}
	msg := &agentv1.ApplyNginxRelease{Revision: rev.Number, Files: make([]*agentv1.NginxFile, len(files))}
	for i, f := range files {
		content, err := d.resolve(ctx, f)
		if err != nil {
			return rev, fmt.Errorf("revision %d of server %s: %w", rev.Number, srv.Name, err)
		}
		msg.Files[i] = &agentv1.NginxFile{Path: f.Path, Content: content, Mode: f.Mode}
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	res, sendErr := d.sender.Send(cctx, node, &agentv1.Command{Kind: &agentv1.Command_ApplyNginxRelease{ApplyNginxRelease: msg}})
	cancel()
	status, outcome, output := classify(res, sendErr)
	if ctx.Err() != nil {
		return rev, fmt.Errorf("apply revision %d on server %s: %w", rev.Number, srv.Name, ctx.Err())
	}
	now := d.cfg.Now()
	err = d.tx(ctx, func(tx *ent.Tx) error {
		upd := tx.ConfigRevision.UpdateOneID(rev.ID).SetStatus(status).SetOutcome(outcome).SetOutput(output)
		if status == configrevision.StatusApplied {
			upd.SetAppliedAt(now)
		}
		if err := upd.Exec(ctx); err != nil {
			return fmt.Errorf("record outcome: %w", err)
		}
		if status != configrevision.StatusApplied {
			return nil
		}
		if _, err := tx.ConfigRevision.Update().Where(
			configrevision.ServerID(srv.ID), configrevision.NumberLT(rev.Number),
			configrevision.StatusIn(configrevision.StatusApplied, configrevision.StatusPending),
		).SetStatus(configrevision.StatusSuperseded).Save(ctx); err != nil {
			return fmt.Errorf("supersede older revisions: %w", err)
		}
		// The files are now exactly the revision's, so an earlier drift report no
		// longer holds.
		return tx.Server.UpdateOneID(srv.ID).SetAppliedRevision(rev.Number).ClearDrift().Exec(ctx)
	})
	if err != nil {
		return rev, fmt.Errorf("record outcome of revision %d on server %s: %w", rev.Number, srv.Name, err)
	}
	rev, err = d.db.Client.ConfigRevision.Get(ctx, rev.ID)
	if err != nil {
		return nil, err
	}
	d.publish(rev)
	switch {
	case status == configrevision.StatusApplied:
		d.log.Info("revision applied", "server", srv.Name, "revision", rev.Number)
		return rev, nil
	case outcome == OutcomeUndelivered:
		d.log.Warn("revision not delivered; it is sent again when the agent reconnects", "server", srv.Name, "revision", rev.Number, "error", output)
	default:
		d.log.Warn("revision not applied", "server", srv.Name, "revision", rev.Number, "outcome", outcome, "output", output)
	}
	return rev, fmt.Errorf("server %s revision %d: %w: %s: %s", srv.Name, rev.Number, ErrApplyFailed, outcome, output)
}

// classify maps an agent's answer, or the failure to get one, to a revision status.
// Undelivered revisions stay pending, so they are sent again on reconnect.
func classify(res *agentv1.CommandResult, err error) (configrevision.Status, string, string) {
	if err != nil {
		return configrevision.StatusPending, OutcomeUndelivered, err.Error()
	}
	if e := res.GetError(); e != nil {
		switch e.GetCode() {
		case agentv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:
			return configrevision.StatusPending, OutcomeUndelivered, "agent: " + e.GetMessage()
		case agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT:
			return configrevision.StatusFailed, OutcomeRefused, e.GetMessage()
		case agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED:
			return configrevision.StatusFailed, OutcomeUnsupported, e.GetMessage()
		default:
			return configrevision.StatusFailed, OutcomeAgentError, e.GetMessage()
		}
	}
	a := res.GetApply()
	if a == nil {
		return configrevision.StatusFailed, OutcomeUnknownResponse, "the agent answered without an apply result"
	}
	switch a.GetCode() {
	case agentv1.ApplyCode_APPLY_CODE_APPLIED:
		return configrevision.StatusApplied, OutcomeApplied, a.GetOutput()
	case agentv1.ApplyCode_APPLY_CODE_TEST_FAILED:
		return configrevision.StatusFailed, OutcomeTestFailed, a.GetOutput()
	case agentv1.ApplyCode_APPLY_CODE_RELOAD_FAILED_ROLLED_BACK:
		return configrevision.StatusFailed, OutcomeReloadFailed, a.GetOutput()
	case agentv1.ApplyCode_APPLY_CODE_ROLLBACK_FAILED:
		return configrevision.StatusFailed, OutcomeRollbackFailed, a.GetOutput()
	}
	return configrevision.StatusFailed, OutcomeUnknownResponse, fmt.Sprintf("unknown apply code %d: %s", a.GetCode(), a.GetOutput())
}
