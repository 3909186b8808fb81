package proxyconf

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent/schema"
)

func TestUpstreamLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1 := newServer(t, db, "web1")

		u, err := svc.CreateUpstream(ctx, admin, UpstreamInput{
			Name: "app", Method: "least_conn", Keepalive: 16,
			Targets: []TargetInput{{Host: "Backend.EXAMPLE.", Port: 8080, Weight: 3}, {Host: "[2001:DB8::0001]", Port: 8081, Backup: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := []string{u.Edges.Targets[0].Host, u.Edges.Targets[1].Host}; !reflect.DeepEqual(got, []string{"backend.example", "2001:db8::1"}) {
			t.Errorf("targets stored as %q, want normalized host names and addresses", got)
		}
		if u.Method != "least_conn" || u.Keepalive != 16 || u.Edges.Targets[0].Weight != 3 || !u.Edges.Targets[1].Backup {
			t.Errorf("stored upstream %+v differs from input", u)
		}
		if calls := rec.take(); len(calls) != 0 {
			t.Errorf("a new upstream affects no server yet, but notified %v", calls)
		}

		// Once a domain on web1 uses it, an update re-renders web1.
		if _, err := svc.CreateDomain(ctx, admin, DomainInput{Name: "app.example.com", Servers: []int{web1.ID},
			Routes: []RouteInput{{Path: "/", Kind: "proxy", Upstream: "app"}}}); err != nil {
			t.Fatal(err)
		}
		rec.take()
		u, err = svc.UpdateUpstream(ctx, admin, u.ID, UpstreamInput{Name: "app", Targets: []TargetInput{{Host: "10.0.0.9", Port: 9000}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Edges.Targets) != 1 || u.Edges.Targets[0].Host != "10.0.0.9" || u.Method != "round_robin" {
			t.Errorf("update did not replace targets and method: %+v %+v", u, u.Edges.Targets)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web1.ID}}) {
			t.Errorf("update notified %v, want [[%d]]", calls, web1.ID)
		}

		// In use: refused, and says by what.
		err = svc.DeleteUpstream(ctx, admin, u.ID)
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "domain app.example.com") {
			t.Fatalf("delete of a used upstream: %v, want ErrInUse naming the domain", err)
		}
		d, err := svc.Domains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteDomain(ctx, admin, d[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteUpstream(ctx, admin, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Upstream(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted upstream: %v, want ErrNotFound", err)
		}
		want := []string{
			"alice upstream.create upstream:app",
			"alice domain.create domain:app.example.com",
			"alice upstream.update upstream:app",
			"alice domain.delete domain:app.example.com",
			"alice upstream.delete upstream:app",
		}
		if got := auditActions(t, db); !reflect.DeepEqual(got, want) {
			t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestHostileInputRefused feeds values that would escape nginx's quoting, reach outside
// the allowlists or collide with other objects, and checks that each is refused with a
// message on the field a form shows and that nothing at all is written.
func TestHostileInputRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1 := newServer(t, db, "web1")
		if _, err := svc.CreateUpstream(ctx, admin, webUpstream()); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateUpstream(ctx, admin, UpstreamInput{Name: "sticky", Method: "ip_hash", Targets: []TargetInput{{Host: "10.0.0.2", Port: 80}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateDomain(ctx, admin, DomainInput{Name: "taken.example.com", Aliases: []string{"www.taken.example.com"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateStream(ctx, admin, StreamInput{Name: "db", ListenPort: 5432, Upstream: "web", Servers: []int{web1.ID}}); err != nil {
			t.Fatal(err)
		}
		rec.take()
		before := auditActions(t, db)

		dom := func(f func(*DomainInput)) func() error {
			return func() error {
				in := DomainInput{Name: "site.example.com", Routes: []RouteInput{{Path: "/", Kind: "proxy", Upstream: "web"}}}
				f(&in)
				_, err := svc.CreateDomain(ctx, user, in)
				return err
			}
		}
		up := func(f func(*UpstreamInput)) func() error {
			return func() error {
				in := UpstreamInput{Name: "other", Targets: []TargetInput{{Host: "10.0.0.1", Port: 80}}}
				f(&in)
				_, err := svc.CreateUpstream(ctx, user, in)
				return err
			}
		}
		stream := func(f func(*StreamInput)) func() error {
			return func() error {
				in := StreamInput{Name: "mail", ListenPort: 25, Upstream: "web", Servers: []int{web1.ID}}
				f(&in)
				_, err := svc.CreateStream(ctx, user, in)
				return err
			}
		}
		cases := []struct {
			name  string
			do    func() error
			field string
		}{
			{"domain name with a brace", dom(func(d *DomainInput) { d.Name = "evil.com;}" }), "name"},
			{"domain name with a newline", dom(func(d *DomainInput) { d.Name = "a.com\nlisten 81" }), "name"},
			{"alias taken by another domain", dom(func(d *DomainInput) { d.Aliases = []string{"ok.example.com", "WWW.taken.example.com"} }), "aliases[1]"},
			{"name taken", dom(func(d *DomainInput) { d.Name = "taken.example.com" }), "name"},
			{"route path with a quote", dom(func(d *DomainInput) { d.Routes[0].Path = `/a"b` }), "routes[0].path"},
			{"route path inside ACME", dom(func(d *DomainInput) { d.Routes[0].Path = "/.well-known/acme-challenge/x" }), "routes[0].path"},
			{"unknown upstream", dom(func(d *DomainInput) { d.Routes[0].Upstream = "nope" }), "routes[0].upstream"},
			{"redirect to javascript", dom(func(d *DomainInput) {
				d.Routes[0] = RouteInput{Path: "/", Kind: "redirect", RedirectCode: 301, RedirectTarget: "javascript:alert(1)"}
			}), "routes[0].redirect_target"},
			{"redirect code", dom(func(d *DomainInput) {
				d.Routes[0] = RouteInput{Path: "/", Kind: "redirect", RedirectCode: 200, RedirectTarget: "https://example.org/"}
			}), "routes[0].redirect_code"},
			{"respond body with a variable", dom(func(d *DomainInput) {
				d.Routes[0] = RouteInput{Path: "/", Kind: "respond", RespondStatus: 200, RespondBody: "$remote_addr"}
			}), "routes[0].respond_body"},
			{"header value with a quote", dom(func(d *DomainInput) { d.ResponseHeaders = []HeaderInput{{Name: "X-A", Value: `a"; evil`}} }), "response_headers[0].value"},
			{"allow list entry", dom(func(d *DomainInput) { d.Allow = []string{"10.0.0.0/8", "all; deny"} }), "allow[1]"},
			{"body size", dom(func(d *DomainInput) { d.ClientMaxBodySize = "1m;" }), "client_max_body_size"},
			{"force https without a certificate", dom(func(d *DomainInput) { d.ForceHTTPS = true }), "force_https"},
			{"aliases redirected to a wildcard", dom(func(d *DomainInput) { d.Name, d.RedirectAliases = "*.example.com", true }), "redirect_aliases"},
			{"maintenance message with a quote", dom(func(d *DomainInput) { d.MaintenanceMessage = `back soon"; return 200 "x` }), "maintenance_message"},
			{"maintenance message with a variable", dom(func(d *DomainInput) { d.MaintenanceMessage = "back at $time_local" }), "maintenance_message"},
			{"rate unit with syntax", dom(func(d *DomainInput) { d.RateLimit, d.RateUnit = 10, "s burst=1" }), "rate_unit"},
			{"burst without a rate", dom(func(d *DomainInput) { d.RateBurst = 5 }), "rate_limit"},
			{"negative rate", dom(func(d *DomainInput) { d.RateLimit = -1 }), "rate_limit"},
			{"oversized burst", dom(func(d *DomainInput) { d.RateLimit, d.RateBurst = 1, 100001 }), "rate_burst"},
			{"cache for a year", dom(func(d *DomainInput) { d.Routes[0].CacheTTL = 365 * 86400 }), "routes[0].cache_ttl"},
			{"snippet from a non-admin", dom(func(d *DomainInput) { d.Snippet = "etag off;" }), "snippet"},
			{"unknown server", dom(func(d *DomainInput) { d.Servers = []int{web1.ID, web1.ID + 100} }), "servers[1]"},
			{"upstream name", up(func(u *UpstreamInput) { u.Name = "Web Farm" }), "name"},
			{"upstream name taken", up(func(u *UpstreamInput) { u.Name = "web" }), "name"},
			{"target host with a scheme", up(func(u *UpstreamInput) { u.Targets[0].Host = "http://x" }), "targets[0].host"},
			{"target port", up(func(u *UpstreamInput) { u.Targets[0].Port = 70000 }), "targets[0].port"},
			{"hash key with a directive", up(func(u *UpstreamInput) { u.Method, u.HashKey = "hash", "$uri; return 200" }), "hash_key"},
			{"consistent without hash", up(func(u *UpstreamInput) { u.Consistent = true }), "consistent"},
			{"no targets", up(func(u *UpstreamInput) { u.Targets = nil }), "targets"},
			{"method", up(func(u *UpstreamInput) { u.Method = "fastest" }), "method"},
			{"stream port clash on a shared server", stream(func(s *StreamInput) { s.ListenPort = 5432 }), "listen_port"},
			{"stream on the HTTP port", stream(func(s *StreamInput) { s.ListenPort = 80 }), "listen_port"},
			{"stream protocol", stream(func(s *StreamInput) { s.Protocol = "sctp" }), "protocol"},
			{"stream to ip_hash", stream(func(s *StreamInput) { s.Upstream = "sticky" }), "upstream"},
			{"stream name taken", stream(func(s *StreamInput) { s.Name = "db"; s.ListenPort = 26 }), "name"},
		}
		for _, c := range cases {
			err := c.do()
			var fe nginxconf.FieldErrors
			if !errors.As(err, &fe) {
				t.Errorf("%s: got %v, want field errors", c.name, err)
				continue
			}
			if fe[c.field] == "" {
				t.Errorf("%s: no message for %q in %v", c.name, c.field, fe)
			}
		}

		// Nothing of it reached the database.
		if n := db.Client.Domain.Query().CountX(ctx); n != 1 {
			t.Errorf("%d domains stored, want only the first", n)
		}
		if n := db.Client.Upstream.Query().CountX(ctx); n != 2 {
			t.Errorf("%d upstreams stored, want 2", n)
		}
		if n := db.Client.StreamProxy.Query().CountX(ctx); n != 1 {
			t.Errorf("%d streams stored, want 1", n)
		}
		if n := db.Client.Route.Query().CountX(ctx); n != 0 {
			t.Errorf("%d routes stored, want 0", n)
		}
		if got := auditActions(t, db); !reflect.DeepEqual(got, before) {
			t.Errorf("refused changes were audited: %v", got[len(before):])
		}
		if calls := rec.take(); len(calls) != 0 {
			t.Errorf("refused changes notified %v", calls)
		}
	})
}

func TestDomainLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1, web2 := newServer(t, db, "web1"), newServer(t, db, "web2")
		if _, err := svc.CreateUpstream(ctx, admin, webUpstream()); err != nil {
			t.Fatal(err)
		}
		in := DomainInput{
			Name:               "Bücher.Example",
			Aliases:            []string{"www.bücher.example", "alt.example"},
			Allow:              []string{"10.1.2.3/8", "2001:DB8::1"},
			ResponseHeaders:    []HeaderInput{{Name: "X-Frame-Options", Value: "DENY"}},
			Maintenance:        true,
			MaintenanceMessage: "Back at 14:00 UTC.",
			RedirectAliases:    true,
			RateLimit:          30,
			RateUnit:           "m",
			RateBurst:          10,
			Compress:           true,
			Servers:            []int{web2.ID, web1.ID},
			Routes: []RouteInput{
				{Path: "/api", Kind: "proxy", Upstream: "web", WebSocket: true, RewritePrefix: "/", CacheTTL: 600},
				{Match: "exact", Path: "/old", Kind: "redirect", RedirectCode: 308, RedirectTarget: "https://Bücher.example/new", CacheTTL: 60},
				{Path: "/health", Kind: "respond", RespondStatus: 200, RespondBody: "ok"},
			},
		}
		d, err := svc.CreateDomain(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		if rl := DomainConf(d).RateLimit; d.RateLimit != 30 || d.RateUnit != "m" || d.RateBurst != 10 || rl == nil || *rl != (nginxconf.RateLimit{Rate: 30, Unit: "m", Burst: 10}) {
			t.Errorf("rate limit stored as %d/%s burst %d, read back as %+v", d.RateLimit, d.RateUnit, d.RateBurst, rl)
		}
		if conf := DomainConf(d); !d.Compress || !conf.Compress || conf.Routes[0].CacheTTL != 600 || conf.Routes[1].CacheTTL != 0 {
			t.Errorf("compression stored as %v, cache lifetimes read back as %d and %d (want 600, and 0 on a redirect)", d.Compress, conf.Routes[0].CacheTTL, conf.Routes[1].CacheTTL)
		}
		if d.MaintenanceMessage != "Back at 14:00 UTC." || DomainConf(d).MaintenanceMessage != d.MaintenanceMessage {
			t.Errorf("maintenance message stored as %q", d.MaintenanceMessage)
		}
		if d.Name != "xn--bcher-kva.example" || !d.RedirectAliases || !DomainConf(d).RedirectAliases {
			t.Errorf("name stored as %q (want punycode), redirect aliases %v", d.Name, d.RedirectAliases)
		}
		if !reflect.DeepEqual(d.Aliases, []string{"alt.example", "www.xn--bcher-kva.example"}) {
			t.Errorf("aliases stored as %q", d.Aliases)
		}
		if !reflect.DeepEqual(d.Allow, []string{"10.0.0.0/8", "2001:db8::1"}) {
			t.Errorf("allow stored as %q, want canonical prefixes", d.Allow)
		}
		if !reflect.DeepEqual(d.ResponseHeaders, []schema.ResponseHeader{{Name: "X-Frame-Options", Value: "DENY"}}) {
			t.Errorf("headers stored as %+v", d.ResponseHeaders)
		}
		if len(d.Edges.Routes) != 3 {
			t.Fatalf("%d routes stored, want 3", len(d.Edges.Routes))
		}
		r0, r1, r2 := d.Edges.Routes[0], d.Edges.Routes[1], d.Edges.Routes[2]
		if r0.Path != "/api" || r0.Edges.Upstream == nil || r0.Edges.Upstream.Name != "web" || !r0.Websocket || r0.Match != "prefix" {
			t.Errorf("proxy route stored as %+v", r0)
		}
		if r1.RedirectTarget != "https://xn--bcher-kva.example/new" || r1.RedirectCode != 308 || r1.Match != "exact" || r1.UpstreamID != nil {
			t.Errorf("redirect route stored as %+v", r1)
		}
		if r2.ContentType != "text/plain" || r2.RespondBody != "ok" {
			t.Errorf("respond route stored as %+v (content type defaults to text/plain)", r2)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web2.ID, web1.ID}}) {
			t.Errorf("create notified %v", calls)
		}

		// Moving the domain re-renders the server it left and the one it joined.
		in.Servers = []int{web2.ID}
		web3 := newServer(t, db, "web3")
		in.Servers = append(in.Servers, web3.ID)
		in.Routes = in.Routes[2:]
		d, err = svc.UpdateDomain(ctx, user, d.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Edges.Routes) != 1 || d.Edges.Routes[0].Path != "/health" {
			t.Errorf("routes after update: %+v", d.Edges.Routes)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web1.ID, web2.ID, web3.ID}}) {
			t.Errorf("update notified %v, want old and new servers", calls)
		}

		// Snippets: admins only, but a user may edit a domain that has one.
		in.Snippet = "etag off;"
		if _, err := svc.UpdateDomain(ctx, user, d.ID, in); err == nil || !strings.Contains(err.Error(), "snippet") {
			t.Errorf("user set a snippet: %v", err)
		}
		if d, err = svc.UpdateDomain(ctx, admin, d.ID, in); err != nil || d.Snippet != "etag off;" {
			t.Fatalf("admin snippet: %v %q", err, d.Snippet)
		}
		in.Maintenance = false
		if d, err = svc.UpdateDomain(ctx, user, d.ID, in); err != nil || d.Maintenance || d.Snippet != "etag off;" {
			t.Errorf("user edit of a domain with a snippet: %v", err)
		}
		in.Snippet = ""
		if _, err := svc.UpdateDomain(ctx, user, d.ID, in); err == nil {
			t.Error("user removed an admin's snippet")
		}
		if _, err := svc.UpdateDomain(ctx, admin, d.ID+1000, in); !errors.Is(err, ErrNotFound) {
			t.Errorf("update of a missing domain: %v", err)
		}
	})
}

func TestBasicAuthUsers(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1 := newServer(t, db, "web1")
		d, err := svc.CreateDomain(ctx, admin, DomainInput{Name: "private.example.com", Servers: []int{web1.ID}})
		if err != nil {
			t.Fatal(err)
		}
		rec.take()
		u, err := svc.AddBasicAuthUser(ctx, admin, d.ID, "carol", "s3cret password")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$6$") || strings.Contains(u.PasswordHash, "s3cret") {
			t.Errorf("password stored as %q, want a SHA-512 crypt hash", u.PasswordHash)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web1.ID}}) {
			t.Errorf("add notified %v", calls)
		}
		for _, c := range []struct{ user, pw, field string }{
			{"carol", "another", "username"},
			{"dave:x", "pw", "username"},
			{"dave\n", "pw", "username"},
			{"dave", "", "password"},
		} {
			_, err := svc.AddBasicAuthUser(ctx, admin, d.ID, c.user, c.pw)
			var fe nginxconf.FieldErrors
			if !errors.As(err, &fe) || fe[c.field] == "" {
				t.Errorf("user %q password %q: %v, want a message on %s", c.user, c.pw, err, c.field)
			}
		}
		old := u.PasswordHash
		if err := svc.SetBasicAuthPassword(ctx, admin, u.ID, "new one"); err != nil {
			t.Fatal(err)
		}
		if got := db.Client.BasicAuthUser.GetX(ctx, u.ID).PasswordHash; got == old || !strings.HasPrefix(got, "$6$") {
			t.Errorf("password hash after change: %q", got)
		}
		if err := svc.DeleteBasicAuthUser(ctx, admin, u.ID); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.BasicAuthUser.Query().CountX(ctx); n != 0 {
			t.Errorf("%d users left", n)
		}
		page := auditActions(t, db)
		want := []string{"alice domain.create domain:private.example.com", "alice domain.auth_user.create domain:private.example.com",
			"alice domain.auth_user.password domain:private.example.com", "alice domain.auth_user.delete domain:private.example.com"}
		if !reflect.DeepEqual(page, want) {
			t.Errorf("audit: %q", page)
		}
		events, err := db.Client.AuditEvent.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if strings.Contains(e.Detail, "s3cret") || strings.Contains(e.Detail, "new one") || strings.Contains(e.Detail, "$6$") {
				t.Errorf("audit detail leaks a password: %q", e.Detail)
			}
		}
	})
}

// TestPurgeDomainCache: a purge counts the domain's cache generation up (so
// the rendered cache keys change), re-renders its servers, is audited, and
// survives later edits; a domain that caches nothing is refused.
func TestPurgeDomainCache(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1, web2 := newServer(t, db, "web1"), newServer(t, db, "web2")
		if _, err := svc.CreateUpstream(ctx, admin, webUpstream()); err != nil {
			t.Fatal(err)
		}
		in := DomainInput{Name: "assets.example.com", Servers: []int{web1.ID, web2.ID},
			Routes: []RouteInput{{Path: "/", Kind: "proxy", Upstream: "web"}}}
		d, err := svc.CreateDomain(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		rec.take()
		if _, err := svc.PurgeDomainCache(ctx, admin, d.ID); !errors.Is(err, ErrNothingCached) {
			t.Errorf("purge of a domain that caches nothing: %v", err)
		}
		if _, err := svc.PurgeDomainCache(ctx, admin, d.ID+1000); !errors.Is(err, ErrNotFound) {
			t.Errorf("purge of a missing domain: %v", err)
		}
		if calls := rec.take(); len(calls) != 0 {
			t.Errorf("refused purges notified %v", calls)
		}
		in.Routes[0].CacheTTL = 600
		if _, err := svc.UpdateDomain(ctx, admin, d.ID, in); err != nil {
			t.Fatal(err)
		}
		rec.take()
		for want := 1; want <= 2; want++ {
			d, err = svc.PurgeDomainCache(ctx, admin, d.ID)
			if err != nil || d.CacheGeneration != want || DomainConf(d).CacheGeneration != want {
				t.Fatalf("purge %d: %v, generation %d", want, err, d.CacheGeneration)
			}
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web1.ID, web2.ID}, {web1.ID, web2.ID}}) {
			t.Errorf("purges notified %v, want both servers twice", calls)
		}
		if d, err = svc.UpdateDomain(ctx, admin, d.ID, in); err != nil || d.CacheGeneration != 2 {
			t.Errorf("an edit reset the cache generation: %v %d", err, d.CacheGeneration)
		}
		got := auditActions(t, db)
		if want := "alice domain.cache_purge domain:assets.example.com"; len(got) < 2 || got[len(got)-2] != want {
			t.Errorf("audit: %q", got)
		}
	})
}

func TestStreamsAndUpstreamCompatibility(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, rec := newService(t, db)
		web1, web2 := newServer(t, db, "web1"), newServer(t, db, "web2")
		u, err := svc.CreateUpstream(ctx, admin, webUpstream())
		if err != nil {
			t.Fatal(err)
		}
		st, err := svc.CreateStream(ctx, admin, StreamInput{Name: "pg", ListenPort: 5432, Upstream: "web", Servers: []int{web1.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Protocol != "tcp" || st.Edges.Upstream.Name != "web" {
			t.Errorf("stream stored as %+v", st)
		}
		// The same port on another server is fine, and so is UDP beside TCP.
		if _, err := svc.CreateStream(ctx, admin, StreamInput{Name: "pg2", ListenPort: 5432, Upstream: "web", Servers: []int{web2.ID}}); err != nil {
			t.Errorf("same port on another server: %v", err)
		}
		if _, err := svc.CreateStream(ctx, admin, StreamInput{Name: "dns", ListenPort: 5432, Protocol: "udp", Upstream: "web", Servers: []int{web1.ID}}); err != nil {
			t.Errorf("udp beside tcp: %v", err)
		}
		rec.take()

		// Streams cannot balance with ip_hash: the upstream change is refused on "method".
		in := webUpstream()
		in.Method = "ip_hash"
		_, err = svc.UpdateUpstream(ctx, admin, u.ID, in)
		var fe nginxconf.FieldErrors
		if !errors.As(err, &fe) || !strings.Contains(fe["method"], `stream "pg"`) {
			t.Fatalf("ip_hash for an upstream used by streams: %v", err)
		}
		if got := db.Client.Upstream.GetX(ctx, u.ID).Method; got != "round_robin" {
			t.Errorf("refused change stored method %q", got)
		}

		// Moving a stream notifies the server it left too.
		if _, err := svc.UpdateStream(ctx, admin, st.ID, StreamInput{Name: "pg", ListenPort: 6432, Upstream: "web", Servers: []int{web2.ID}}); err != nil {
			t.Fatal(err)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web1.ID, web2.ID}}) {
			t.Errorf("stream update notified %v", calls)
		}
		if err := svc.DeleteUpstream(ctx, admin, u.ID); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "stream pg") {
			t.Errorf("delete of an upstream used by streams: %v", err)
		}
		if err := svc.DeleteStream(ctx, admin, st.ID); err != nil {
			t.Fatal(err)
		}
		if calls := rec.take(); !reflect.DeepEqual(calls, [][]int{{web2.ID}}) {
			t.Errorf("stream delete notified %v", calls)
		}
	})
}
