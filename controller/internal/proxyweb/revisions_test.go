package proxyweb

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

var applied = &agentv1.ApplyResult{Code: agentv1.ApplyCode_APPLY_CODE_APPLIED, Output: "nginx: configuration file test is successful"}

type revisionsBody struct {
	Desired   int64          `json:"desired_revision"`
	Applied   int64          `json:"applied_revision"`
	Drifted   bool           `json:"drifted"`
	Revisions []revisionJSON `json:"revisions"`
}

func TestDeployRevisionsAndDiff(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		adminUser := e.createUser("admin", auth.RoleAdmin)
		admin, adminAPI := e.login("admin"), e.token(adminUser)
		viewer := e.login(e.createUser("viewer", auth.RoleUser).Username)
		s := e.server("edge-1")
		node := strconv.Itoa(s.ID)
		ctx := context.Background()

		if _, err := e.proxy.CreateUpstream(ctx, adminActor, proxyconf.UpstreamInput{Name: "app", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 8080}}}); err != nil {
			t.Fatal(err)
		}
		d, err := e.proxy.CreateDomain(ctx, adminActor, domainUsing("example.com", "app", s.ID))
		if err != nil {
			t.Fatal(err)
		}

		// Offline: the revision is rendered and waits for the agent.
		r := e.do(adminAPI, "POST", fmt.Sprintf("/api/v1/servers/%d/deploy", s.ID), nil)
		if ae := decode[apiError](t, r); r.StatusCode != http.StatusConflict || ae.Error.Code != "offline" {
			t.Fatalf("deploy to an offline server: %d %s", r.StatusCode, r.body)
		}

		// Online: the page's re-apply button deploys and reports the outcome.
		e.agents.set(node, true, applied)
		subCtx, unsubscribe := context.WithCancel(ctx)
		sub := e.broker.Subscribe(subCtx, "server."+node)
		r = e.follow(admin, e.do(admin, "POST", fmt.Sprintf("/servers/%d/deploy", s.ID), url.Values{}))
		if !strings.Contains(r.body, "Revision 1 is applied on edge-1") {
			t.Fatalf("deploy flash missing: %d", r.StatusCode)
		}
		if !strings.Contains(r.body, `<tr data-revision="1">`) || !strings.Contains(r.body, `rev-applied`) || !strings.Contains(r.body, "in sync") {
			t.Errorf("revisions page does not show r1 applied")
		}
		if !strings.Contains(r.body, `data-live="server.`+node+`"`) {
			t.Errorf("revisions page does not subscribe to the server's topic")
		}
		var last events.Event
		for len(sub) > 0 {
			last = <-sub
		}
		if data, ok := last.Data.(map[string]any); !ok || last.Name != "revision" || fmt.Sprint(data["status"]) != "applied" {
			t.Errorf("last published event %+v", last)
		}
		unsubscribe()

		// A change, then nginx refuses it: the outcome and nginx's message are shown.
		in := domainUsing("example.com", "app", s.ID)
		in.Routes = append(in.Routes, proxyconf.RouteInput{Match: "exact", Path: "/health", Kind: "respond", RespondStatus: 200, RespondBody: "ok"})
		if _, err := e.proxy.UpdateDomain(ctx, adminActor, d.ID, in); err != nil {
			t.Fatal(err)
		}
		e.agents.set(node, true, &agentv1.ApplyResult{Code: agentv1.ApplyCode_APPLY_CODE_TEST_FAILED, Output: "nginx: [emerg] unknown directive \"oops\""})
		r = e.follow(admin, e.do(admin, "POST", fmt.Sprintf("/servers/%d/deploy", s.ID), url.Values{}))
		if !strings.Contains(r.body, "Revision 2 was not applied on edge-1 (test_failed)") || !strings.Contains(html.UnescapeString(r.body), `unknown directive "oops"`) {
			t.Errorf("failed apply not reported")
		}
		if !strings.Contains(r.body, "behind") {
			t.Errorf("revisions page does not show the server behind")
		}

		// The API agrees, and shows it to a plain user's token too.
		r = e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions", s.ID), nil)
		list := decode[revisionsBody](t, r)
		if list.Desired != 2 || list.Applied != 1 || len(list.Revisions) != 2 || list.Revisions[0].Status != "failed" ||
			list.Revisions[0].Outcome != "test_failed" || !list.Revisions[1].Applied || list.Revisions[1].AppliedAt == nil {
			t.Fatalf("revisions: %+v", list)
		}
		r = e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/2/diff", s.ID), nil)
		diff := decode[struct {
			From, To int64
			Diff     string
		}](t, r)
		if diff.From != 1 || diff.To != 2 || !strings.Contains(diff.Diff, "+") || !strings.Contains(diff.Diff, "/health") {
			t.Errorf("diff r1..r2: %+v", diff)
		}
		r = e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/2/diff?against=2", s.ID), nil)
		if decode[struct{ Diff string }](t, r).Diff != "" {
			t.Errorf("a revision differs from itself: %s", r.body)
		}
		for _, bad := range []string{"?against=-1", "?against=x"} {
			if r := e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/2/diff%s", s.ID, bad), nil); r.StatusCode != http.StatusBadRequest {
				t.Errorf("against %s: %d", bad, r.StatusCode)
			}
		}
		if r := e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/2/diff?against=9", s.ID), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("against a missing revision: %d", r.StatusCode)
		}
		r = e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/2", s.ID), nil)
		files := decode[struct {
			Revision revisionJSON
			Files    []fileJSON
		}](t, r)
		found := false
		for _, f := range files.Files {
			found = found || strings.Contains(f.Content, "/health")
		}
		if files.Revision.Number != 2 || !found {
			t.Errorf("revision 2 files: %+v", files)
		}
		if r := e.do(adminAPI, "GET", fmt.Sprintf("/api/v1/servers/%d/revisions/7", s.ID), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("missing revision: %d", r.StatusCode)
		}
		if r := e.do(adminAPI, "GET", "/api/v1/servers/999/revisions", nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("missing server: %d", r.StatusCode)
		}

		// The revision page shows the files and the colored diff to any user.
		r = e.do(viewer, "GET", fmt.Sprintf("/servers/%d/revisions/2", s.ID), nil)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `class="diff-add"`) || !strings.Contains(r.body, "Changes since revision 1") || !strings.Contains(r.body, "data-file=") {
			t.Errorf("revision page: %d", r.StatusCode)
		}
		if strings.Contains(r.body, "data-reapply") {
			t.Error("a user is offered re-apply")
		}

		// Re-apply after fixing nginx applies the desired revision through the API.
		e.agents.set(node, true, applied)
		r = e.do(adminAPI, "POST", fmt.Sprintf("/api/v1/servers/%d/deploy", s.ID), nil)
		dep := decode[struct {
			Applied  bool
			Revision revisionJSON
		}](t, r)
		if r.StatusCode != http.StatusOK || !dep.Applied || dep.Revision.Number != 2 || dep.Revision.Status != "applied" {
			t.Fatalf("re-apply: %d %s", r.StatusCode, r.body)
		}

		// Drift: the agent reports a modified file.
		e.agents.setDrift(&agentv1.DriftResult{Modified: []string{"domains/example.com.conf"}})
		r = e.do(adminAPI, "POST", fmt.Sprintf("/api/v1/servers/%d/drift", s.ID), nil)
		if !decode[struct{ Drifted bool }](t, r).Drifted {
			t.Fatalf("drift: %s", r.body)
		}
		r = e.follow(admin, e.do(admin, "POST", fmt.Sprintf("/servers/%d/drift", s.ID), url.Values{}))
		if !strings.Contains(r.body, "changed outside Gatehouse") || !strings.Contains(r.body, "domains/example.com.conf") {
			t.Errorf("revisions page does not show the drift")
		}
		e.agents.set(node, false, nil)
		r = e.do(adminAPI, "POST", fmt.Sprintf("/api/v1/servers/%d/drift", s.ID), nil)
		if r.StatusCode != http.StatusBadGateway || !strings.Contains(r.body, "not connected") {
			t.Errorf("drift check while offline: %d %s", r.StatusCode, r.body)
		}

		// Each deploy and drift check is in the audit log.
		actions := map[string]int{}
		for _, ev := range e.db.Client.AuditEvent.Query().AllX(ctx) {
			actions[ev.Action]++
		}
		if actions["server.deploy"] < 3 || actions["server.drift_check"] < 2 {
			t.Errorf("audit actions %v", actions)
		}
	})
}
