package controller

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/task"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// Updating the agents starts a provisioning run on every outdated server
// reached over SSH with an approved host key, and says why the others are
// not updated; current and never-installed agents are left alone.
func TestUpdateOutdatedAgents(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	// A port nothing listens on (no test binds port 1): the run fails at
	// once, on loopback.
	const port = 1
	ssh := func(name string) int {
		return e.create(map[string]any{"name": name, "host": "127.0.0.1", "port": port, "user": "root", "auth": "password", "password": "a password"})
	}
	old, nokey, current, fresh := ssh("web-old"), ssh("web-nokey"), ssh("web-current"), ssh("web-fresh")
	hand := db.Server.Create().SetName("web-hand").SetAgentVersion("0.9.0").SetStatus(server.StatusOnline).SetLastSeenAt(time.Now()).SaveX(ctx)
	db.Server.UpdateOneID(old).SetAgentVersion("0.9.0").ExecX(ctx)
	db.Server.UpdateOneID(nokey).SetAgentVersion("0.8.1").ExecX(ctx)
	db.Server.UpdateOneID(current).SetAgentVersion(version.Version).ExecX(ctx)
	_ = fresh // never installed: no version
	db.HostKey.Create().SetServerID(old).SetKeyType("ssh-ed25519").SetFingerprint("SHA256:" + strings.Repeat("A", 43)).SetApprovedAt(time.Now()).ExecX(ctx)

	cl := e.browser(e.adminLogin)
	_, _, page := send(t, cl, "GET", e.base+"/provisioning", nil)
	if !strings.Contains(page, "data-agents-outdated") || strings.Count(page, "data-agent-outdated") != 2 {
		t.Fatalf("the provisioning list does not mark the two outdated SSH agents:\n%s", page)
	}
	_, _, page = send(t, cl, "GET", e.base+"/servers", nil)
	if strings.Count(page, "data-agent-outdated") != 3 {
		t.Errorf("the server list marks %d outdated agents, want 3", strings.Count(page, "data-agent-outdated"))
	}

	if code, _ := e.api("POST", "/api/v1/servers/update-agents", e.user, nil, nil); code != http.StatusForbidden {
		t.Fatalf("a user updated agents: %d", code)
	}
	var out struct {
		Version string `json:"version"`
		Servers []struct {
			ServerID int    `json:"server_id"`
			Server   string `json:"server"`
			From     string `json:"from_version"`
			TaskID   int    `json:"task_id"`
			Skipped  string `json:"skipped"`
		} `json:"servers"`
	}
	if code, b := e.api("POST", "/api/v1/servers/update-agents", e.admin, nil, &out); code != http.StatusAccepted {
		t.Fatalf("update agents: %d %s", code, b)
	}
	got := map[string]string{}
	for _, s := range out.Servers {
		switch {
		case s.TaskID != 0:
			got[s.Server] = "task"
		default:
			got[s.Server] = s.Skipped
		}
	}
	if out.Version != version.Version || len(out.Servers) != 3 || got["web-old"] != "task" ||
		!strings.Contains(got["web-nokey"], "host key is not approved") || !strings.Contains(got["web-hand"], "installed by hand") {
		t.Fatalf("update agents answered %+v", out)
	}
	// Scheduler jobs record tasks too: count provisioning runs only.
	if n := db.Task.Query().Where(task.Kind(taskProvision)).CountX(ctx); n != 1 {
		t.Errorf("%d provisioning runs started, want 1", n)
	}
	// The page says the same in a message.
	code, loc, _ := send(t, cl, "POST", e.base+"/provisioning/update-agents", nil)
	if code != http.StatusSeeOther || loc != "/provisioning" {
		t.Fatalf("page: %d %q", code, loc)
	}
	_, _, page = send(t, cl, "GET", e.base+"/provisioning", nil)
	if !strings.Contains(page, "Not updated:") || !strings.Contains(page, "web-hand (installed by hand") {
		t.Errorf("the page does not say what was not updated:\n%s", page)
	}
	_ = hand
}
