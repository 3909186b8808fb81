package deploy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/configrevision"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestNodeConfigHoldsOnlyWhatTheServerServes(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{NginxDir: "/srv/nginx/gh"})
		web1, web2 := f.server(t, "web1"), f.server(t, "web2")
		f.site(t, "one.example.com", web1.ID)
		f.site(t, "two.example.com", web2.ID)
		if _, err := f.svc.CreateUpstream(ctx, admin, proxyconf.UpstreamInput{Name: "db", Targets: []proxyconf.TargetInput{{Host: "10.0.0.5", Port: 5432}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateUpstream(ctx, admin, proxyconf.UpstreamInput{Name: "unused", Targets: []proxyconf.TargetInput{{Host: "10.0.0.6", Port: 1}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreateStream(ctx, admin, proxyconf.StreamInput{Name: "pg", ListenPort: 5432, Upstream: "db", Servers: []int{web1.ID}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AddBasicAuthUser(ctx, admin, f.db.Client.Domain.Query().FirstX(ctx).ID, "carol", "pw"); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.dep.NodeConfig(ctx, web1.ID)
		if err != nil {
			t.Fatal(err)
		}
		var doms, ups, streams []string
		for _, d := range cfg.Domains {
			doms = append(doms, d.Name)
		}
		for _, u := range cfg.Upstreams {
			ups = append(ups, u.Name)
		}
		for _, s := range cfg.Streams {
			streams = append(streams, s.Name)
		}
		if !reflect.DeepEqual(doms, []string{"one.example.com"}) || !reflect.DeepEqual(ups, []string{"app", "db"}) || !reflect.DeepEqual(streams, []string{"pg"}) {
			t.Errorf("web1 config: domains %v upstreams %v streams %v", doms, ups, streams)
		}
		if cfg.Webroot != "/srv/nginx/gh/acme" || cfg.ConfigDir != "/srv/nginx/gh/current" {
			t.Errorf("webroot %q config dir %q", cfg.Webroot, cfg.ConfigDir)
		}
		if len(cfg.Domains[0].BasicAuthUsers) != 1 || cfg.Domains[0].BasicAuthUsers[0].User != "carol" {
			t.Errorf("basic-auth users: %+v", cfg.Domains[0].BasicAuthUsers)
		}
		r, err := nginxconf.Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, file := range r.Files {
			paths = append(paths, file.Path)
		}
		want := []string{"auth/one.example.com.htpasswd", "http/00-gatehouse.conf", "http/domain-one.example.com.conf", "http/upstream-app.conf", "http/upstream-db.conf", "stream/stream-pg.conf"}
		if !reflect.DeepEqual(paths, want) {
			t.Errorf("rendered files %q, want %q", paths, want)
		}
	})
}

func TestRevisionsOnlyOnRealChange(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		web1, web2 := f.server(t, "web1"), f.server(t, "web2")
		d := f.site(t, "one.example.com", web1.ID)

		rev, created, err := f.dep.Render(ctx, web1.ID)
		if err != nil || !created || rev.Number != 1 || rev.Status != configrevision.StatusPending {
			t.Fatalf("first render: %+v created=%v err=%v", rev, created, err)
		}
		again, created, err := f.dep.Render(ctx, web1.ID)
		if err != nil || created || again.ID != rev.ID {
			t.Fatalf("unchanged render created a revision: %+v %v %v", again, created, err)
		}
		// An edit that normalizes to the same configuration changes nothing.
		if _, err := f.svc.UpdateDomain(ctx, admin, d.ID, proxyconf.DomainInput{Name: "ONE.example.com.", Servers: []int{web1.ID},
			Routes: []proxyconf.RouteInput{{Path: "/", Kind: "proxy", Upstream: "app"}}}); err != nil {
			t.Fatal(err)
		}
		if _, created, _ := f.dep.Render(ctx, web1.ID); created {
			t.Error("an equivalent edit created a revision")
		}
		if _, err := f.svc.UpdateDomain(ctx, admin, d.ID, proxyconf.DomainInput{Name: "one.example.com", Servers: []int{web1.ID}, Maintenance: true}); err != nil {
			t.Fatal(err)
		}
		rev2, created, err := f.dep.Render(ctx, web1.ID)
		if err != nil || !created || rev2.Number != 2 || rev2.Hash == rev.Hash {
			t.Fatalf("render after a change: %+v %v %v", rev2, created, err)
		}
		if got := f.reload(t, web1.ID); got.DesiredRevision != 2 || got.AppliedRevision != 0 {
			t.Errorf("web1 desired %d applied %d, want 2 and 0", got.DesiredRevision, got.AppliedRevision)
		}
		if st := f.db.Client.ConfigRevision.GetX(ctx, rev.ID).Status; st != configrevision.StatusSuperseded {
			t.Errorf("unapplied revision 1 is %s after revision 2, want superseded", st)
		}
		// A server that serves nothing gets no revision; numbering is per server.
		if none, created, err := f.dep.Render(ctx, web2.ID); err != nil || created || none != nil {
			t.Fatalf("web2 serves nothing but got a revision: %+v %v %v", none, created, err)
		}
		f.site(t, "two.example.com", web2.ID)
		other, created, err := f.dep.Render(ctx, web2.ID)
		if err != nil || !created || other.Number != 1 {
			t.Fatalf("web2's first revision: %+v %v %v", other, created, err)
		}
		// Stored files are what the renderer produced, and revisions are listed newest first.
		files, err := Files(rev2)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := f.dep.NodeConfig(ctx, web1.ID)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := nginxconf.Render(cfg)
		if !reflect.DeepEqual(files, r.Files) {
			t.Error("stored files differ from the rendered ones")
		}
		list, err := f.dep.Revisions(ctx, web1.ID, 0)
		if err != nil || len(list) != 2 || list[0].Number != 2 {
			t.Errorf("revisions of web1: %v %v", list, err)
		}
		if got := f.pub.take(); len(got) != 3 {
			t.Errorf("%d revisions published, want one per created revision (3)", len(got))
		}
	})
}

func TestDeployRecordsEachOutcome(t *testing.T) {
	type want struct {
		status  configrevision.Status
		outcome string
		applied bool
		err     error
	}
	cases := []struct {
		name  string
		reply func(string, *agentv1.Command) (*agentv1.CommandResult, error)
		want  want
	}{
		{"applied", applyWith(agentv1.ApplyCode_APPLY_CODE_APPLIED, "reloaded"), want{configrevision.StatusApplied, OutcomeApplied, true, nil}},
		{"test failed", applyWith(agentv1.ApplyCode_APPLY_CODE_TEST_FAILED, `nginx: [emerg] unknown directive "x"`), want{configrevision.StatusFailed, OutcomeTestFailed, false, ErrApplyFailed}},
		{"reload failed", applyWith(agentv1.ApplyCode_APPLY_CODE_RELOAD_FAILED_ROLLED_BACK, "reload not confirmed"), want{configrevision.StatusFailed, OutcomeReloadFailed, false, ErrApplyFailed}},
		{"rollback failed", applyWith(agentv1.ApplyCode_APPLY_CODE_ROLLBACK_FAILED, "rollback: nginx -t failed"), want{configrevision.StatusFailed, OutcomeRollbackFailed, false, ErrApplyFailed}},
		{"unspecified code", applyWith(agentv1.ApplyCode_APPLY_CODE_UNSPECIFIED, ""), want{configrevision.StatusFailed, OutcomeUnknownResponse, false, ErrApplyFailed}},
		{"refused", func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
			return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Message: "file[0] path: must be relative"}}, nil
		}, want{configrevision.StatusFailed, OutcomeRefused, false, ErrApplyFailed}},
		{"agent deadline", func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
			return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Message: "deadline passed"}}, nil
		}, want{configrevision.StatusPending, OutcomeUndelivered, false, ErrApplyFailed}},
		{"session closed", func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
			return nil, hub.ErrSessionClosed
		}, want{configrevision.StatusPending, OutcomeUndelivered, false, ErrApplyFailed}},
	}
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		for i, c := range cases {
			srv := f.server(t, fmt.Sprintf("web%d", i))
			node := strconv.Itoa(srv.ID)
			f.site(t, fmt.Sprintf("site%d.example.com", i), srv.ID)
			f.fake.setConnected(node, true)
			f.fake.setReply(c.reply)
			f.fake.take()

			rev, err := f.dep.Deploy(ctx, srv.ID)
			if !errors.Is(err, c.want.err) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.want.err)
			}
			if rev == nil {
				t.Fatalf("%s: no revision returned", c.name)
			}
			if rev.Status != c.want.status || rev.Outcome != c.want.outcome {
				t.Errorf("%s: revision %s/%s, want %s/%s", c.name, rev.Status, rev.Outcome, c.want.status, c.want.outcome)
			}
			if c.want.outcome != OutcomeUndelivered && c.want.outcome != OutcomeUnknownResponse {
				if o := rev.Output; o == "" && c.want.outcome != OutcomeApplied {
					t.Errorf("%s: output not stored", c.name)
				}
			}
			if (rev.AppliedAt != nil) != c.want.applied {
				t.Errorf("%s: applied_at %v", c.name, rev.AppliedAt)
			}
			wantApplied := int64(0)
			if c.want.applied {
				wantApplied = rev.Number
			}
			if got := f.reload(t, srv.ID).AppliedRevision; got != wantApplied {
				t.Errorf("%s: applied revision %d, want %d", c.name, got, wantApplied)
			}
			// The command carried the stored revision and its files.
			cmds := f.fake.take()
			if len(cmds) != 1 || cmds[0].node != node {
				t.Fatalf("%s: commands %v", c.name, cmds)
			}
			a := cmds[0].cmd.GetApplyNginxRelease()
			files, _ := Files(rev)
			if a.GetRevision() != rev.Number || len(a.GetFiles()) != len(files) || a.GetFiles()[0].GetPath() != files[0].Path || string(a.GetFiles()[0].GetContent()) != string(files[0].Content) {
				t.Errorf("%s: command %v does not carry revision %d's files", c.name, a, rev.Number)
			}
			// The outcome was published after the creation.
			pub := f.pub.take()
			if len(pub) != 2 || pub[1].Status != c.want.status {
				t.Errorf("%s: published %d revisions, last %v", c.name, len(pub), pub)
			}
		}
	})
}

func TestDeployMovesAppliedOnlyForward(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "web1")
		node := strconv.Itoa(srv.ID)
		d := f.site(t, "one.example.com", srv.ID)
		f.fake.setConnected(node, true)

		r1, err := f.dep.Deploy(ctx, srv.ID)
		if err != nil || r1.Number != 1 {
			t.Fatalf("deploy 1: %v %v", r1, err)
		}
		// Deploying again sends the same revision (the agent leaves an intact release
		// alone and restores an edited one) and creates none.
		f.fake.take()
		again, err := f.dep.Deploy(ctx, srv.ID)
		if sent := f.fake.take(); err != nil || again.Number != 1 || len(sent) != 1 || sent[0].cmd.GetApplyNginxRelease().GetRevision() != 1 {
			t.Errorf("repeat deploy: %v %v, sent %v", again, err, sent)
		}
		// A revision nginx refuses leaves the node on revision 1.
		if _, err := f.svc.UpdateDomain(ctx, admin, d.ID, proxyconf.DomainInput{Name: "one.example.com", Servers: []int{srv.ID}, Maintenance: true}); err != nil {
			t.Fatal(err)
		}
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_TEST_FAILED, "nginx: [emerg] test"))
		r2, err := f.dep.Deploy(ctx, srv.ID)
		if !errors.Is(err, ErrApplyFailed) || !strings.Contains(err.Error(), "[emerg] test") || r2.Number != 2 {
			t.Fatalf("failing deploy: %v %v", r2, err)
		}
		got := f.reload(t, srv.ID)
		if got.AppliedRevision != 1 || got.DesiredRevision != 2 {
			t.Errorf("applied %d desired %d, want 1 and 2", got.AppliedRevision, got.DesiredRevision)
		}
		if st := f.db.Client.ConfigRevision.GetX(ctx, r1.ID).Status; st != configrevision.StatusApplied {
			t.Errorf("revision 1 is %s while it is still the applied one", st)
		}
		// Deploy retries; once applied, revision 1 is superseded.
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_APPLIED, ""))
		r2, err = f.dep.Deploy(ctx, srv.ID)
		if err != nil || r2.Status != configrevision.StatusApplied {
			t.Fatalf("retry: %v %v", r2, err)
		}
		if got := f.reload(t, srv.ID).AppliedRevision; got != 2 {
			t.Errorf("applied %d after retry, want 2", got)
		}
		if st := f.db.Client.ConfigRevision.GetX(ctx, r1.ID).Status; st != configrevision.StatusSuperseded {
			t.Errorf("revision 1 is %s after 2 was applied, want superseded", st)
		}
	})
}

func TestReconcileOnReconnect(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "web1")
		node := strconv.Itoa(srv.ID)
		f.site(t, "one.example.com", srv.ID)

		// Offline: the change is rendered and waits.
		f.dep.Flush(ctx)
		if got := f.reload(t, srv.ID); got.DesiredRevision != 1 || got.AppliedRevision != 0 {
			t.Fatalf("offline server: desired %d applied %d", got.DesiredRevision, got.AppliedRevision)
		}
		if _, err := f.dep.Deploy(ctx, srv.ID); !errors.Is(err, ErrOffline) {
			t.Errorf("deploy to an offline server: %v, want ErrOffline", err)
		}
		if len(f.fake.take()) != 0 {
			t.Fatal("a command went to an offline server")
		}

		f.fake.setConnected(node, true)
		if err := f.dep.Reconcile(ctx, node); err != nil {
			t.Fatal(err)
		}
		cmds := f.fake.take()
		if len(cmds) != 1 || cmds[0].cmd.GetApplyNginxRelease().GetRevision() != 1 {
			t.Fatalf("reconnect sent %v, want revision 1", cmds)
		}
		if got := f.reload(t, srv.ID).AppliedRevision; got != 1 {
			t.Errorf("applied %d after reconcile", got)
		}
		// Up to date: nothing to send.
		if err := f.dep.Reconcile(ctx, node); err != nil || len(f.fake.take()) != 0 {
			t.Errorf("reconcile of an up-to-date server: %v", err)
		}

		// A revision nginx refused is not pushed on every reconnect, only by Deploy or a
		// new change.
		d, _ := f.svc.Domains(ctx)
		if _, err := f.svc.UpdateDomain(ctx, admin, d[0].ID, proxyconf.DomainInput{Name: "one.example.com", Servers: []int{srv.ID}, Maintenance: true}); err != nil {
			t.Fatal(err)
		}
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_TEST_FAILED, "bad"))
		f.dep.Flush(ctx)
		if len(f.fake.take()) != 1 {
			t.Fatal("the change was not pushed to the connected server")
		}
		if err := f.dep.Reconcile(ctx, node); err != nil || len(f.fake.take()) != 0 {
			t.Errorf("reconcile re-sent a refused revision: %v", err)
		}
		// A revision that never arrived is sent again.
		if _, err := f.svc.UpdateDomain(ctx, admin, d[0].ID, proxyconf.DomainInput{Name: "one.example.com", Servers: []int{srv.ID}}); err != nil {
			t.Fatal(err)
		}
		f.fake.setReply(func(string, *agentv1.Command) (*agentv1.CommandResult, error) { return nil, hub.ErrSessionClosed })
		f.dep.Flush(ctx)
		f.fake.take()
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_APPLIED, ""))
		if err := f.dep.Reconcile(ctx, node); err != nil {
			t.Fatal(err)
		}
		if cmds := f.fake.take(); len(cmds) != 1 || cmds[0].cmd.GetApplyNginxRelease().GetRevision() != 3 {
			t.Errorf("reconcile after an undelivered revision sent %v, want revision 3", cmds)
		}
		// An agent that lost its releases reports revision 0 and gets the desired one again.
		if err := f.dep.ReconcileAgent(ctx, node, 3); err != nil || len(f.fake.take()) != 0 {
			t.Errorf("reconcile of an agent reporting the applied revision: %v", err)
		}
		if err := f.dep.ReconcileAgent(ctx, node, 0); err != nil {
			t.Fatal(err)
		}
		if cmds := f.fake.take(); len(cmds) != 1 || cmds[0].cmd.GetApplyNginxRelease().GetRevision() != 3 {
			t.Errorf("reconcile of an agent without releases sent %v, want revision 3", cmds)
		}
		if got := f.reload(t, srv.ID).AppliedRevision; got != 3 {
			t.Errorf("applied %d after re-applying, want 3", got)
		}
		if err := f.dep.Reconcile(ctx, "web1"); err == nil {
			t.Error("a node id that is not a server id was accepted")
		}
	})
}

func TestBurstOfEditsYieldsOneRevision(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		web1, web2 := f.server(t, "web1"), f.server(t, "web2")
		f.fake.setConnected(strconv.Itoa(web1.ID), true)
		d := f.site(t, "one.example.com", web1.ID)
		for i := range 5 {
			in := proxyconf.DomainInput{Name: "one.example.com", Servers: []int{web1.ID, web2.ID},
				Routes: []proxyconf.RouteInput{{Path: "/", Kind: "respond", RespondStatus: 200, RespondBody: fmt.Sprintf("edit %d", i)}}}
			if _, err := f.svc.UpdateDomain(ctx, admin, d.ID, in); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.dep.Pending(); !reflect.DeepEqual(got, []int{web1.ID, web2.ID}) {
			t.Fatalf("pending %v, want both servers", got)
		}
		if n := f.db.Client.ConfigRevision.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d revisions before the batch ran", n)
		}
		f.dep.Flush(ctx)
		for _, srv := range []int{web1.ID, web2.ID} {
			revs, err := f.dep.Revisions(ctx, srv, 0)
			if err != nil || len(revs) != 1 {
				t.Fatalf("server %d has %d revisions after a burst, want 1 (%v)", srv, len(revs), err)
			}
			files, _ := Files(revs[0])
			var found bool
			for _, file := range files {
				found = found || strings.Contains(string(file.Content), `"edit 4"`)
			}
			if !found {
				t.Errorf("server %d's revision does not hold the last edit", srv)
			}
		}
		// The connected server got it applied; the offline one waits.
		if got := f.reload(t, web1.ID).AppliedRevision; got != 1 {
			t.Errorf("web1 applied %d", got)
		}
		if got := f.reload(t, web2.ID).AppliedRevision; got != 0 {
			t.Errorf("web2 applied %d while offline", got)
		}
		if len(f.dep.Pending()) != 0 {
			t.Error("batch still pending after flush")
		}
	})
}

// TestRunProcessesBatches checks that Run, not a test, drives the batches.
func TestRunProcessesBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		f := newFixture(t, db, Config{Debounce: time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- f.dep.Run(ctx) }()
		srv := f.server(t, "web1")
		f.site(t, "one.example.com", srv.ID)
		select {
		case rev := <-f.pub.ch:
			if rev.ServerID != srv.ID || rev.Number != 1 {
				t.Errorf("published %+v", rev)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run never rendered the change")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestCheckDrift(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "web1")
		node := strconv.Itoa(srv.ID)
		if _, err := f.dep.CheckDrift(ctx, srv.ID); err == nil {
			t.Error("drift check of an offline server succeeded")
		}
		f.fake.setConnected(node, true)
		f.fake.setReply(func(_ string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
			if cmd.GetCheckNginxDrift() == nil {
				return nil, errors.New("not a drift check")
			}
			return &agentv1.CommandResult{Result: &agentv1.CommandResult_Drift{Drift: &agentv1.DriftResult{
				Added: []string{"http/zz.conf", "http/extra.conf"}, Modified: []string{"http/00-gatehouse.conf"},
			}}}, nil
		})
		drift, err := f.dep.CheckDrift(ctx, srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored := f.reload(t, srv.ID).Drift
		if stored == nil || !stored.Drifted() || !reflect.DeepEqual(stored.Added, []string{"http/extra.conf", "http/zz.conf"}) ||
			!reflect.DeepEqual(stored.Modified, []string{"http/00-gatehouse.conf"}) || stored.CheckedAt.IsZero() {
			t.Errorf("stored drift %+v (returned %+v)", stored, drift)
		}
		// A clean check clears it.
		f.fake.setReply(func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
			return &agentv1.CommandResult{Result: &agentv1.CommandResult_Drift{Drift: &agentv1.DriftResult{}}}, nil
		})
		if _, err := f.dep.CheckDrift(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		if stored := f.reload(t, srv.ID).Drift; stored == nil || stored.Drifted() {
			t.Errorf("drift after a clean check: %+v", stored)
		}
		// An agent error is reported and keeps the last result.
		f.fake.setReply(func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
			return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_FAILED, Message: "no current release"}}, nil
		})
		if _, err := f.dep.CheckDrift(ctx, srv.ID); err == nil || !strings.Contains(err.Error(), "no current release") {
			t.Errorf("agent error: %v", err)
		}
	})
}

func TestDiffBetweenRevisions(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "web1")
		d := f.site(t, "one.example.com", srv.ID)
		if _, _, err := f.dep.Render(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateDomain(ctx, admin, d.ID, proxyconf.DomainInput{Name: "one.example.com", Servers: []int{srv.ID},
			Routes: []proxyconf.RouteInput{{Path: "/", Kind: "respond", RespondStatus: 200, RespondBody: "hello"}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.dep.Render(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		diff, err := f.dep.Diff(ctx, srv.ID, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"--- a/http/domain-one.example.com.conf\n+++ b/http/domain-one.example.com.conf\n@@ ",
			"--- a/http/upstream-app.conf\n+++ /dev/null\n",
			"+        return 200 hello;\n",
		} {
			if !strings.Contains(diff, want) {
				t.Errorf("diff lacks %q:\n%s", want, diff)
			}
		}
		if strings.Contains(diff, "00-gatehouse.conf") {
			t.Errorf("diff shows the unchanged global file:\n%s", diff)
		}
		full, err := f.dep.Diff(ctx, srv.ID, 0, 1)
		if err != nil || !strings.Contains(full, "--- /dev/null\n+++ b/http/00-gatehouse.conf\n@@ -0,0 +1") {
			t.Errorf("diff from nothing: %v\n%s", err, full)
		}
		if same, err := f.dep.Diff(ctx, srv.ID, 2, 2); err != nil || same != "" {
			t.Errorf("diff of a revision with itself: %q %v", same, err)
		}
		if _, err := f.dep.Diff(ctx, srv.ID, 1, 9); err == nil {
			t.Error("diff to a missing revision succeeded")
		}
	})
}
