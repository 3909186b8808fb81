package deploy

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// reportingSender is a fakeSender that also reports each node's nginx, as the hub does
// from the agent's Hello.
type reportingSender struct {
	*fakeSender
	mu      sync.Mutex
	reports map[string]*agentv1.NginxNode
}

var _ NodeReporter = (*reportingSender)(nil)

func (r *reportingSender) NginxNode(node string) *agentv1.NginxNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reports[node]
}

func (r *reportingSender) report(node string, n *agentv1.NginxNode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports[node] = n
}

// newReportingFixture is newFixture with a sender that reports nodes' nginx.
func newReportingFixture(t *testing.T, db *store.DB, cfg Config) (*fixture, *reportingSender) {
	t.Helper()
	f := newFixture(t, db, cfg)
	rs := &reportingSender{fakeSender: f.fake, reports: map[string]*agentv1.NginxNode{}}
	cfg.Debounce, cfg.OnRevision = f.dep.cfg.Debounce, f.pub.on
	dep, err := New(db, rs, cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	f.dep = dep
	f.svc = proxyconf.New(db, proxyconf.Config{Notifier: dep}, hclog.NewNullLogger())
	return f, rs
}

func revisionText(t *testing.T, f *fixture, serverID int) string {
	t.Helper()
	rev, _, err := f.dep.Render(context.Background(), serverID)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(rev)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, fl := range files {
		b.Write(fl.Content)
	}
	return b.String()
}

// A server with no domain and no stream never had a release: connecting its agent sends
// nothing, so a metrics-only node without nginx never sees an nginx command. Its first
// domain gives it revision 1.
func TestServerServingNothingGetsNoRelease(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "metrics-only")
		node := strconv.Itoa(srv.ID)
		f.fake.setConnected(node, true)
		if err := f.dep.ReconcileAgent(ctx, node, 0); err != nil {
			t.Fatal(err)
		}
		rev, err := f.dep.Deploy(ctx, srv.ID)
		if err != nil || rev != nil {
			t.Fatalf("deploy of a server serving nothing: %v %v", rev, err)
		}
		if sent := f.fake.take(); len(sent) != 0 {
			t.Fatalf("sent %d commands to a server serving nothing", len(sent))
		}
		if n := f.db.Client.ConfigRevision.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d revisions stored for a server serving nothing", n)
		}
		f.site(t, "first.example.com", srv.ID)
		rev, err = f.dep.Deploy(ctx, srv.ID)
		if err != nil || rev.Number != 1 {
			t.Fatalf("deploy after the first domain: %v %v", rev, err)
		}
		if sent := f.fake.take(); len(sent) != 1 || sent[0].cmd.GetApplyNginxRelease().GetRevision() != 1 {
			t.Fatalf("sent %v, want revision 1", sent)
		}
	})
}

// Each node's revision is rendered for the nginx its agent reports: its managed dir, its
// ports and bind address. The report outlives the session; a report that cannot be
// rendered is refused and no revision is made from it.
func TestRevisionFollowsTheReportedNginx(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Certificates travel in the release, so nginx finds them below the node's dir.
		f, rs := newReportingFixture(t, db, Config{
			TLS: func(context.Context, string) (*TLSMaterial, error) {
				return &TLSMaterial{Chain: TLSFile{Content: []byte("chain\n")}, Key: TLSFile{Content: []byte("key\n"), Mode: 0o600}}, nil
			},
		})
		srv := f.server(t, "web1")
		node := strconv.Itoa(srv.ID)
		f.site(t, "one.example.com", srv.ID)

		// Never connected: the defaults.
		text := revisionText(t, f, srv.ID)
		for _, want := range []string{"listen 80;", "root /etc/nginx/gatehouse/acme;", "ssl_certificate /etc/nginx/gatehouse/current/tls/one.example.com.crt;"} {
			if !strings.Contains(text, want) {
				t.Errorf("default revision lacks %q:\n%s", want, text)
			}
		}
		rs.setConnected(node, true)
		rs.report(node, &agentv1.NginxNode{Dir: "/srv/ngx/gh", Installed: true, HttpPort: 8080, HttpsPort: 8443, BindAddress: "127.0.0.1",
			Version: "nginx/1.22.1<script>"})
		rev, err := f.dep.Deploy(ctx, srv.ID)
		if err != nil || rev.Number != 2 {
			t.Fatalf("deploy with the reported nginx: %v %v", rev, err)
		}
		text = revisionText(t, f, srv.ID)
		for _, want := range []string{"listen 127.0.0.1:8080;", "root /srv/ngx/gh/acme;", "ssl_certificate /srv/ngx/gh/current/tls/one.example.com.crt;"} {
			if !strings.Contains(text, want) {
				t.Errorf("revision lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "listen 80") || strings.Contains(text, "/etc/nginx/gatehouse") {
			t.Errorf("revision still holds defaults:\n%s", text)
		}
		// Offline, the last report holds: no new revision.
		rs.setConnected(node, false)
		if _, created, err := f.dep.Render(ctx, srv.ID); err != nil || created {
			t.Fatalf("render while offline: created=%v %v", created, err)
		}
		// It is kept on the server, so it also holds after the controller restarts
		// while the agent is away.
		if got := f.reload(t, srv.ID).NginxNode; got == nil || got.Dir != "/srv/ngx/gh" || got.HTTPPort != 8080 || got.HTTPSPort != 8443 || got.BindAddress != "127.0.0.1" ||
			got.Version != "" {
			t.Fatalf("stored report %+v (a version not of the form name/1.2.3 is dropped)", got)
		}
		// A version of the right form is kept, without a new revision: it
		// changes nothing that is rendered.
		rs.setConnected(node, true)
		rs.report(node, &agentv1.NginxNode{Dir: "/srv/ngx/gh", Installed: true, HttpPort: 8080, HttpsPort: 8443, BindAddress: "127.0.0.1",
			Version: "nginx/1.22.1"})
		if _, created, err := f.dep.Render(ctx, srv.ID); err != nil || created {
			t.Fatalf("render with a version: created=%v %v", created, err)
		}
		if got := f.reload(t, srv.ID).NginxNode; got == nil || got.Version != "nginx/1.22.1" {
			t.Fatalf("stored version: %+v", got)
		}
		rs.setConnected(node, false)
		restarted, err := New(db, rs, f.dep.cfg, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		if _, created, err := restarted.Render(ctx, srv.ID); err != nil || created {
			t.Fatalf("render after a restart while offline: created=%v %v", created, err)
		}
		if n, err := restarted.NodeNginx(ctx, f.reload(t, srv.ID)); err != nil || !n.Reported || n.HTTPPort != 8080 {
			t.Fatalf("node nginx after a restart: %+v %v", n, err)
		}

		hostile := []struct {
			name string
			rep  *agentv1.NginxNode
			want string
		}{
			{"directive in dir", &agentv1.NginxNode{Dir: "/srv/x; include /etc/shadow", HttpPort: 80, HttpsPort: 443}, "nginx_dir"},
			{"relative dir", &agentv1.NginxNode{Dir: "srv/x", HttpPort: 80, HttpsPort: 443}, "nginx_dir"},
			{"port too high", &agentv1.NginxNode{Dir: "/srv/x", HttpPort: 70000, HttpsPort: 443}, "1-65535"},
			{"port wraps to 80", &agentv1.NginxNode{Dir: "/srv/x", HttpPort: 65536 + 80, HttpsPort: 443}, "1-65535"},
			{"bind with option", &agentv1.NginxNode{Dir: "/srv/x", HttpPort: 80, HttpsPort: 443, BindAddress: "0.0.0.0 reuseport"}, "nginx_bind_address"},
			{"same ports", &agentv1.NginxNode{Dir: "/srv/x", HttpPort: 80, HttpsPort: 80}, "nginx_http_port"},
		}
		rs.setConnected(node, true)
		for _, tc := range hostile {
			rs.report(node, tc.rep)
			rev, created, err := f.dep.Render(ctx, srv.ID)
			if err == nil || created || rev != nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: render = %v created=%v err=%v, want an error naming %s", tc.name, rev, created, err, tc.want)
			}
		}
		if got := f.reload(t, srv.ID).DesiredRevision; got != 2 {
			t.Errorf("desired revision %d after refused reports, want 2", got)
		}
		if got := f.reload(t, srv.ID).NginxNode; got == nil || got.Dir != "/srv/ngx/gh" {
			t.Errorf("a refused report replaced the stored one: %+v", got)
		}
	})
}

// Deploying an applied revision again sends it, and once the agent confirms it the
// drift recorded for the old files is cleared.
func TestRedeployClearsDrift(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Config{})
		srv := f.server(t, "web1")
		node := strconv.Itoa(srv.ID)
		f.site(t, "one.example.com", srv.ID)
		f.fake.setConnected(node, true)
		if _, err := f.dep.Deploy(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		f.fake.setReply(func(_ string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
			if cmd.GetCheckNginxDrift() == nil {
				return nil, errors.New("not a drift check")
			}
			return &agentv1.CommandResult{Result: &agentv1.CommandResult_Drift{Drift: &agentv1.DriftResult{Modified: []string{"http/00-gatehouse.conf"}}}}, nil
		})
		if d, err := f.dep.CheckDrift(ctx, srv.ID); err != nil || !d.Drifted() {
			t.Fatalf("drift check: %+v %v", d, err)
		}
		// The agent refuses: the drift stays recorded.
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_TEST_FAILED, "nginx: [emerg] x"))
		if _, err := f.dep.Deploy(ctx, srv.ID); !errors.Is(err, ErrApplyFailed) {
			t.Fatalf("refused redeploy: %v", err)
		}
		if d := f.reload(t, srv.ID).Drift; !d.Drifted() {
			t.Fatalf("drift cleared by a failed apply: %+v", d)
		}
		f.fake.setReply(applyWith(agentv1.ApplyCode_APPLY_CODE_APPLIED, ""))
		f.fake.take()
		rev, err := f.dep.Deploy(ctx, srv.ID)
		if err != nil || rev.Number != 1 {
			t.Fatalf("redeploy: %v %v", rev, err)
		}
		if sent := f.fake.take(); len(sent) != 1 {
			t.Fatalf("redeploy sent %d commands, want 1", len(sent))
		}
		if d := f.reload(t, srv.ID).Drift; d.Drifted() {
			t.Fatalf("drift after the revision was applied again: %+v", d)
		}
	})
}
