package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true}, {"/healthz", true}, {"/api/v1/status?full=1", true}, {"/%7Euser", true},
		{"", false}, {"healthz", false}, {"//evil.example/x", false}, {"/a b", false}, {"/a#b", false},
		{"/a\\b", false}, {"/a\nb", false}, {"/ä", false}, {"/" + strings.Repeat("a", 256), false},
		{"http://x/", false},
	} {
		if got := ValidatePath(tc.path) == ""; got != tc.ok {
			t.Errorf("ValidatePath(%q) ok = %v, want %v", tc.path, got, tc.ok)
		}
	}
}

// node is a stand-in for one server's nginx: it records what it was asked.
type node struct {
	mu     sync.Mutex
	hosts  []string
	snis   []string
	status int
}

func (n *node) handler(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts = append(n.hosts, r.Host+" "+r.URL.RequestURI())
	if r.TLS != nil {
		n.snis = append(n.snis, r.TLS.ServerName)
	}
	w.WriteHeader(n.status)
}

func (n *node) set(status int) { n.mu.Lock(); n.status = status; n.mu.Unlock() }

func port(t *testing.T, u string) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A domain is probed on each of its servers with its name as Host, over
// HTTPS with its name as SNI once it has a certificate; failures carry the
// start of their run; a 4xx, a 5xx and a refused connection are down.
func TestProbeDomain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		good, bad := &node{status: 200}, &node{status: 502}
		goodHTTP, badHTTP := httptest.NewServer(http.HandlerFunc(good.handler)), httptest.NewServer(http.HandlerFunc(bad.handler))
		goodTLS := httptest.NewTLSServer(http.HandlerFunc(good.handler))
		t.Cleanup(func() { goodHTTP.Close(); badHTTP.Close(); goodTLS.Close() })
		closed := httptest.NewServer(http.NotFoundHandler())
		closedPort := port(t, closed.URL)
		closed.Close()

		mk := func(name string) *ent.Server {
			s, err := db.Client.Server.Create().SetName(name).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s1, s2, s3 := mk("edge-1"), mk("edge-2"), mk("edge-3")
		ports := map[int]Endpoint{
			s1.ID: {Host: "127.0.0.1", HTTPPort: port(t, goodHTTP.URL), HTTPSPort: port(t, goodTLS.URL)},
			s2.ID: {Host: "127.0.0.1", HTTPPort: port(t, badHTTP.URL), HTTPSPort: port(t, badHTTP.URL)},
			s3.ID: {Host: "127.0.0.1", HTTPPort: closedPort, HTTPSPort: closedPort},
		}
		d, err := db.Client.Domain.Create().SetName("shop.example").AddServers(s1, s2, s3).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		var probed []string
		svc := New(db, Config{
			Endpoint: func(_ context.Context, srv *ent.Server) (Endpoint, error) { return ports[srv.ID], nil },
			Now:      func() time.Time { return clock },
			Audit:    audit.New(db.Client, hclog.NewNullLogger()),
			OnProbed: func(id, up, down int) { probed = append(probed, strconv.Itoa(up)+" up, "+strconv.Itoa(down)+" down") },
		}, hclog.NewNullLogger())

		if got, err := svc.ProbeDomain(ctx, d.ID); err != nil || got != nil {
			t.Fatalf("a domain without a check was probed: %v %v", got, err)
		}
		var fe *FieldError
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "no-slash", true); !errors.As(err, &fe) || fe.Field != "path" {
			t.Fatalf("a bad path: %v", err)
		}
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/healthz?deep=1", true); err != nil {
			t.Fatal(err)
		}
		first, err := svc.ProbeDomain(ctx, d.ID)
		if err != nil || len(first) != 3 {
			t.Fatalf("probes: %v %v", first, err)
		}
		byServer := map[int]*ent.HealthProbe{}
		for _, p := range first {
			byServer[p.ServerID] = p
		}
		if p := byServer[s1.ID]; !p.Ok || p.Status != 200 || p.FailingSince != nil || !strings.HasPrefix(p.URL, "http://shop.example/healthz?deep=1 via 127.0.0.1:") {
			t.Errorf("the good node: %+v", p)
		}
		if p := byServer[s2.ID]; p.Ok || p.Status != 502 || p.Message != "answered 502 Bad Gateway" || p.FailingSince == nil || !p.FailingSince.Equal(clock) {
			t.Errorf("the 502 node: %+v", p)
		}
		if p := byServer[s3.ID]; p.Ok || p.Status != 0 || !strings.Contains(p.Message, "connection refused") || strings.Contains(p.Message, "http://") {
			t.Errorf("the closed node: %+v", p)
		}
		if len(good.hosts) != 1 || good.hosts[0] != "shop.example /healthz?deep=1" {
			t.Errorf("the good node was asked %v", good.hosts)
		}
		if sums, err := svc.Summaries(ctx, []int{d.ID, d.ID + 1000}); err != nil || len(sums) != 1 || sums[d.ID] != (Summary{Up: 1, Down: 2}) {
			t.Errorf("summaries: %v %v", sums, err)
		}

		// A later failure continues the run; a recovery ends it.
		clock = clock.Add(time.Minute)
		bad.set(404)
		svc.ProbeDomain(ctx, d.ID)
		latest, _ := svc.Latest(ctx, d.ID)
		for _, p := range latest {
			if p.ServerID == s2.ID && (p.Ok || p.Status != 404 || !p.FailingSince.Equal(clock.Add(-time.Minute))) {
				t.Errorf("a second failure: %+v", p)
			}
		}
		clock = clock.Add(time.Minute)
		bad.set(301)
		svc.ProbeDomain(ctx, d.ID)
		latest, _ = svc.Latest(ctx, d.ID)
		for _, p := range latest {
			if p.ServerID == s2.ID && (!p.Ok || p.FailingSince != nil) {
				t.Errorf("a redirect after failures: %+v", p)
			}
		}
		if len(probed) != 3 || probed[0] != "1 up, 2 down" || probed[2] != "2 up, 1 down" {
			t.Errorf("OnProbed: %v", probed)
		}

		// With a certificate the probe speaks TLS with the name as SNI.
		if err := db.Client.Certificate.Create().SetDomainID(d.ID).SetNames([]string{d.Name}).SetNotBefore(clock).SetNotAfter(clock.Add(time.Hour)).
			SetFingerprint("x").SetCertPem("x").SetKeySealed([]byte("x")).SetSource(certificate.SourceUpload).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		db.Client.Domain.UpdateOneID(d.ID).ClearServers().AddServers(s1).ExecX(ctx)
		got, err := svc.ProbeDomain(ctx, d.ID)
		if err != nil || len(got) != 1 || !got[0].Ok || !strings.HasPrefix(got[0].URL, "https://shop.example/") {
			t.Fatalf("over TLS: %+v %v", got, err)
		}
		if len(good.snis) != 1 || good.snis[0] != "shop.example" {
			t.Errorf("SNI %v", good.snis)
		}
		// A node the controller will not dial gets a failing result that says
		// why; the others are probed as usual.
		db.Client.Domain.UpdateOneID(d.ID).AddServers(s3).ExecX(ctx)
		asked := len(good.hosts)
		svc.cfg.Endpoint = func(_ context.Context, srv *ent.Server) (Endpoint, error) {
			if srv.ID == s3.ID {
				return Endpoint{}, NotProbed(errors.New("not probed: the agent of edge-3 reports nginx only on 127.0.0.1"))
			}
			return ports[srv.ID], nil
		}
		got, err = svc.ProbeDomain(ctx, d.ID)
		if err != nil || len(got) != 2 {
			t.Fatalf("with a node not to be dialled: %+v %v", got, err)
		}
		for _, p := range got {
			if p.ServerID == s3.ID && (p.Ok || p.URL != "" || p.Message != "not probed: the agent of edge-3 reports nginx only on 127.0.0.1" || p.FailingSince == nil) {
				t.Errorf("the node not dialled: %+v", p)
			}
			if p.ServerID == s1.ID && !p.Ok {
				t.Errorf("the good node beside it: %+v", p)
			}
		}
		if len(good.hosts) != asked+1 {
			t.Errorf("the good node was asked %d times, want once more", len(good.hosts)-asked)
		}
		db.Client.Domain.UpdateOneID(d.ID).RemoveServers(s3).ExecX(ctx)
		svc.cfg.Endpoint = func(_ context.Context, srv *ent.Server) (Endpoint, error) { return ports[srv.ID], nil }
		if _, err := svc.ProbeDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}

		// One row per domain and server, and none for servers that stopped serving it.
		if n, _ := db.Client.HealthProbe.Query().Count(ctx); n != 1 {
			t.Fatalf("%d probe rows after four rounds on a domain now served by one server, want 1", n)
		}

		// Turned off, nothing is probed; old probes go with the job.
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", false); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.ProbeDomain(ctx, d.ID); got != nil {
			t.Fatal("probed while off")
		}
		if sums, _ := svc.Summaries(ctx, []int{d.ID}); len(sums) != 0 {
			t.Fatalf("a check turned off still summarised: %v", sums)
		}
		if err := svc.ProbeAll(ctx, func(string, ...any) {}); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.Client.HealthProbe.Query().Count(ctx); n != 1 {
			t.Fatalf("%d probe rows after a run with the check off", n)
		}
	})
}

func TestClip(t *testing.T) {
	if got := clip("ok\x1b[31m\xff\xfeé", 100); got != "ok [31m\uFFFDé" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("ééé", 3); got != "é" {
		t.Errorf("clip on a rune boundary = %q", got)
	}
}

// ProbeAll probes several domains at once, never more than Parallel.
func TestProbeAllInParallel(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		enough := inFlight == 3
		mu.Unlock()
		if enough {
			once.Do(func() { close(release) }) // three at once: let everyone finish
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second): // fewer ran at once: the check below fails
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	t.Cleanup(slow.Close)
	srv := db.Client.Server.Create().SetName("edge").SaveX(ctx)
	svc := New(db, Config{
		Endpoint: func(context.Context, *ent.Server) (Endpoint, error) {
			return Endpoint{Host: "127.0.0.1", HTTPPort: port(t, slow.URL)}, nil
		},
		Parallel: 3,
	}, hclog.NewNullLogger())
	for i := range 7 {
		d := db.Client.Domain.Create().SetName("d" + strconv.Itoa(i) + ".example").AddServers(srv).SaveX(ctx)
		if _, err := svc.Set(ctx, audit.System("test"), d.ID, "/", true); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.ProbeAll(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if most != 3 {
		t.Fatalf("at most %d probes ran at once, want 3", most)
	}
	if n := db.Client.HealthProbe.Query().CountX(ctx); n != 7 {
		t.Fatalf("%d probes recorded, want 7", n)
	}
}
