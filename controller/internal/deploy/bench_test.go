package deploy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// BenchmarkResyncUnchanged is what the nginx.sync job costs per server and
// run when nothing changed: the server's configuration is read from SQLite,
// rendered and hashed, and no revision is stored. render-only is the
// renderer alone on the same configuration, the share of the work that is
// not the database.
//
//	go test -run '^$' -bench BenchmarkResyncUnchanged -benchtime 20x ./controller/internal/deploy/
func BenchmarkResyncUnchanged(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("domains=%d", n), func(b *testing.B) {
			ctx := context.Background()
			null := hclog.NewNullLogger()
			db, err := store.Open(ctx, "sqlite:"+b.TempDir()+"/gh.db", null)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			cert := func(context.Context, string) (*nginxconf.CertRef, error) {
				return &nginxconf.CertRef{CertPath: "/etc/ssl/site.pem", KeyPath: "/etc/ssl/site.key"}, nil
			}
			dep, err := New(db, newFakeSender(), Config{Debounce: time.Hour, Certificate: cert}, null)
			if err != nil {
				b.Fatal(err)
			}
			svc := proxyconf.New(db, proxyconf.Config{Notifier: dep, Certificate: cert}, null)
			srv := db.Client.Server.Create().SetName("edge-1").SaveX(ctx)
			if _, err := svc.CreateUpstream(ctx, admin, proxyconf.UpstreamInput{Name: "app", Keepalive: 16,
				Targets: []proxyconf.TargetInput{{Host: "10.0.0.1", Port: 8080}, {Host: "10.0.0.2", Port: 8080}}}); err != nil {
				b.Fatal(err)
			}
			for i := range n {
				name := fmt.Sprintf("tenant-%d.example.com", i)
				tls := i%2 == 0
				if _, err := svc.CreateDomain(ctx, admin, proxyconf.DomainInput{Name: name, Aliases: []string{"www." + name},
					ForceHTTPS: tls, HSTS: tls, HTTP2: tls, Servers: []int{srv.ID},
					Routes: []proxyconf.RouteInput{
						{Path: "/", Kind: "proxy", Upstream: "app", PreserveHost: true},
						{Path: "/socket/", Kind: "proxy", Upstream: "app", WebSocket: true},
						{Match: "exact", Path: "/old", Kind: "redirect", RedirectCode: 301, RedirectTarget: "https://" + name + "/new"},
					}}); err != nil {
					b.Fatal(err)
				}
			}
			if _, created, err := dep.Render(ctx, srv.ID); err != nil || !created {
				b.Fatalf("first render: %v %v", created, err)
			}
			cfg, err := dep.NodeConfig(ctx, srv.ID)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("render-only", func(b *testing.B) {
				for b.Loop() {
					if _, err := nginxconf.Render(cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("resync", func(b *testing.B) {
				for b.Loop() {
					if _, created, err := dep.Render(ctx, srv.ID); err != nil || created {
						b.Fatalf("resync: created=%v %v", created, err)
					}
				}
			})
		})
	}
}
