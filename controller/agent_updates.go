package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// agentOutdated reports whether a server's agent last reported another
// version than the controller's own. A server whose agent never reported is
// not outdated: it is not installed yet.
func agentOutdated(s *ent.Server) bool {
	return s.AgentVersion != "" && s.AgentVersion != version.Version
}

// agentUpdate is what updating the agents did with one outdated server.
type agentUpdate struct {
	ServerID int    `json:"server_id"`
	Server   string `json:"server"`
	From     string `json:"from_version"`
	TaskID   int    `json:"task_id,omitempty"`
	// Skipped says why no task was started.
	Skipped string `json:"skipped,omitempty"`
}

// updateAgents starts a provisioning run, which installs this controller's
// agent build, on every server reached over SSH whose agent is outdated.
// Servers without SSH access or an approved host key, or with a task
// already running, are skipped with the reason.
func (pw *provisionWeb) updateAgents(ctx context.Context, actor audit.Actor) ([]agentUpdate, error) {
	list, err := pw.c.db.Client.Server.Query().
		Where(server.Local(false), server.StatusNEQ(server.StatusRemoved), server.AgentVersionNEQ("")).
		Order(ent.Asc(server.FieldName)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	var out []agentUpdate
	for _, s := range list {
		if !agentOutdated(s) {
			continue
		}
		u := agentUpdate{ServerID: s.ID, Server: s.Name, From: s.AgentVersion}
		keys, err := pw.p.approvedKeys(ctx, s.ID)
		switch {
		case err != nil:
			return nil, err
		case s.SSHHost == "" || s.SSHAuth == server.SSHAuthNone:
			u.Skipped = "installed by hand: update it on the node"
		case len(keys) == 0:
			u.Skipped = "its SSH host key is not approved"
		default:
			t, err := pw.p.start(ctx, actor, s, taskProvision)
			switch {
			case errors.Is(err, errTaskRunning):
				u.Skipped = "a task is already running on it"
			case err != nil:
				u.Skipped = err.Error()
			default:
				u.TaskID = t.ID
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func (pw *provisionWeb) apiUpdateAgents(w http.ResponseWriter, r *http.Request) {
	res, err := pw.updateAgents(r.Context(), pw.w.Actor(r))
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	if res == nil {
		res = []agentUpdate{}
	}
	web.WriteJSON(w, http.StatusAccepted, map[string]any{"version": version.Version, "servers": res})
}

func (pw *provisionWeb) updateAgentsPage(w http.ResponseWriter, r *http.Request) {
	res, err := pw.updateAgents(r.Context(), pw.w.Actor(r))
	if err != nil {
		pw.c.log.Error("update agents", "error", err)
		pw.w.Flash(r, "error", "The agents could not be updated because of a problem on our side.")
		http.Redirect(w, r, "/provisioning", http.StatusSeeOther)
		return
	}
	var started, skipped []string
	for _, u := range res {
		if u.TaskID != 0 {
			started = append(started, u.Server)
		} else {
			skipped = append(skipped, u.Server+" ("+u.Skipped+")")
		}
	}
	switch {
	case len(res) == 0:
		pw.w.Flash(r, "success", "Every agent already runs "+version.Version+".")
	case len(skipped) == 0:
		pw.w.Flash(r, "success", fmt.Sprintf("Updating %d agent(s) to %s: %s. Each run is listed below.", len(started), version.Version, strings.Join(started, ", ")))
	default:
		msg := fmt.Sprintf("Updating %d agent(s) to %s", len(started), version.Version)
		if len(started) > 0 {
			msg += ": " + strings.Join(started, ", ")
		}
		pw.w.Flash(r, "error", msg+". Not updated: "+strings.Join(skipped, "; ")+".")
	}
	http.Redirect(w, r, "/provisioning", http.StatusSeeOther)
}
