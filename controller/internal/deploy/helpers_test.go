package deploy

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// eachDB runs body against a fresh, migrated SQLite and PostgreSQL database.
func eachDB(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := "sqlite:" + t.TempDir() + "/gh.db"
			if name == "postgres" {
				url = pgtest.Database(t)
			}
			ctx := context.Background()
			db, err := store.Open(ctx, url, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			body(t, db)
		})
	}
}

// sent is one command the fake sender received.
type sent struct {
	node string
	cmd  *agentv1.Command
}

// fakeSender stands in for the hub: it records commands and answers with reply.
type fakeSender struct {
	mu        sync.Mutex
	connected map[string]bool
	sent      []sent
	reply     func(node string, cmd *agentv1.Command) (*agentv1.CommandResult, error)
}

func newFakeSender() *fakeSender {
	return &fakeSender{connected: map[string]bool{}, reply: applyWith(agentv1.ApplyCode_APPLY_CODE_APPLIED, "")}
}

var _ Sender = (*hub.Hub)(nil)

func (f *fakeSender) Send(ctx context.Context, node string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
	f.mu.Lock()
	if !f.connected[node] {
		f.mu.Unlock()
		return nil, hub.ErrNotConnected
	}
	f.sent = append(f.sent, sent{node, cmd})
	reply := f.reply
	f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("command sent without a deadline")
	}
	return reply(node, cmd)
}

func (f *fakeSender) Connected(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[node]
}

func (f *fakeSender) setConnected(node string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected[node] = on
}

func (f *fakeSender) setReply(r func(string, *agentv1.Command) (*agentv1.CommandResult, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = r
}

// take returns and forgets the commands so far.
func (f *fakeSender) take() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sent
	f.sent = nil
	return s
}

// applyWith answers every ApplyNginxRelease with code and output, reporting the
// release's revision as current when applied.
func applyWith(code agentv1.ApplyCode, output string) func(string, *agentv1.Command) (*agentv1.CommandResult, error) {
	return func(_ string, cmd *agentv1.Command) (*agentv1.CommandResult, error) {
		a := cmd.GetApplyNginxRelease()
		if a == nil {
			return &agentv1.CommandResult{Error: &agentv1.CommandError{Code: agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED, Message: "unexpected command"}}, nil
		}
		rev := int64(0)
		if code == agentv1.ApplyCode_APPLY_CODE_APPLIED {
			rev = a.GetRevision()
		}
		return &agentv1.CommandResult{Result: &agentv1.CommandResult_Apply{Apply: &agentv1.ApplyResult{Code: code, Output: output, Revision: rev}}}, nil
	}
}

// published collects OnRevision calls.
type published struct {
	mu   sync.Mutex
	revs []*ent.ConfigRevision
	ch   chan *ent.ConfigRevision
}

func (p *published) on(_ int, rev *ent.ConfigRevision) {
	p.mu.Lock()
	p.revs = append(p.revs, rev)
	p.mu.Unlock()
	select {
	case p.ch <- rev:
	default:
	}
}

func (p *published) take() []*ent.ConfigRevision {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.revs
	p.revs = nil
	return r
}

// fixture is a deployer and a proxy configuration service wired together as the
// controller wires them.
type fixture struct {
	db   *store.DB
	dep  *Deployer
	svc  *proxyconf.Service
	fake *fakeSender
	pub  *published
	logs *syncbuf.Buffer // the deployer's log
}

var admin = proxyconf.Actor{Actor: audit.Actor{Name: "alice"}, Admin: true}

func newFixture(t *testing.T, db *store.DB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{db: db, fake: newFakeSender(), pub: &published{ch: make(chan *ent.ConfigRevision, 64)}, logs: &syncbuf.Buffer{}}
	if cfg.Debounce == 0 {
		cfg.Debounce = time.Hour // batches run only when a test flushes them
	}
	cfg.OnRevision = f.pub.on
	dep, err := New(db, f.fake, cfg, hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	f.dep = dep
	f.svc = proxyconf.New(db, proxyconf.Config{Notifier: dep, Certificate: cfg.Certificate}, hclog.NewNullLogger())
	return f
}

func (f *fixture) server(t *testing.T, name string) *ent.Server {
	t.Helper()
	s, err := f.db.Client.Server.Create().SetName(name).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) reload(t *testing.T, id int) *ent.Server {
	t.Helper()
	return f.db.Client.Server.GetX(context.Background(), id)
}

// site creates the upstream "app" and a domain on the servers proxying to it.
func (f *fixture) site(t *testing.T, name string, servers ...int) *ent.Domain {
	t.Helper()
	ctx := context.Background()
	if n := f.db.Client.Upstream.Query().CountX(ctx); n == 0 {
		if _, err := f.svc.CreateUpstream(ctx, admin, proxyconf.UpstreamInput{Name: "app", Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 8080}}}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := f.svc.CreateDomain(ctx, admin, proxyconf.DomainInput{Name: name, Servers: servers,
		Routes: []proxyconf.RouteInput{{Path: "/", Kind: "proxy", Upstream: "app"}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
