package proxyweb

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

// An upstream's page and API show what the nodes found dialling each of its
// servers (servers marked down are not dialled and not listed).
func TestUpstreamHealthShown(t *testing.T) {
	bothDialects(t, func(t *testing.T, db *store.DB) {
		at := time.Now().UTC()
		var asked []string
		e := newEnv(t, db, func(d *Deps) {
			d.TargetHealth = func(addresses []string) map[string][]TargetState {
				asked = addresses
				return map[string][]TargetState{
					"10.0.0.1:8080": {{ServerID: 1, Server: "web-1", OK: true, LatencyMS: 4, At: at}, {ServerID: 2, Server: "web-2", OK: false, Error: "connection refused", At: at}},
				}
			}
		})
		admin := e.token(e.createUser("admin", auth.RoleAdmin))
		viewer := e.token(e.createUser("viewer", auth.RoleUser))
		r := e.do(admin, "POST", "/api/v1/upstreams", proxyconf.UpstreamInput{Name: "app", Targets: []proxyconf.TargetInput{
			{Host: "10.0.0.1", Port: 8080}, {Host: "2001:db8::7", Port: 9000}, {Host: "10.0.0.3", Port: 8080, Down: true}}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		id := decode[struct{ Upstream upstreamJSON }](t, r).Upstream.ID

		r = e.do(viewer, "GET", fmt.Sprintf("/api/v1/upstreams/%d/health", id), nil)
		got := decode[struct {
			Targets []struct {
				Address string        `json:"address"`
				Servers []TargetState `json:"servers"`
			} `json:"targets"`
		}](t, r)
		if r.StatusCode != http.StatusOK || len(got.Targets) != 2 || got.Targets[0].Address != "10.0.0.1:8080" || got.Targets[1].Address != "[2001:db8::7]:9000" ||
			len(got.Targets[0].Servers) != 2 || got.Targets[0].Servers[1].Error != "connection refused" || got.Targets[1].Servers == nil || len(got.Targets[1].Servers) != 0 {
			t.Fatalf("health API: %d %s", r.StatusCode, r.body)
		}
		if strings.Join(asked, ",") != "10.0.0.1:8080,[2001:db8::7]:9000" {
			t.Errorf("asked about %q, want the servers not marked down", asked)
		}
		if r := e.do(viewer, "GET", fmt.Sprintf("/api/v1/upstreams/%d/health", id+1000), nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("health of a missing upstream: %d", r.StatusCode)
		}

		list := e.do(e.login("viewer"), "GET", "/upstreams", nil)
		if list.StatusCode != http.StatusOK || !strings.Contains(list.body, `title="Probes from the nodes that failed, of all the newest ones">1 of 2 failed</span>`) {
			t.Errorf("upstream list: %d, the reachability summary is missing", list.StatusCode)
		}
		page := e.do(e.login("viewer"), "GET", fmt.Sprintf("/upstreams/%d", id), nil)
		if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "data-upstream-health") ||
			!strings.Contains(page.body, `status-pill-up" title="web-1 dialled it just now">web-1: 4 ms`) ||
			!strings.Contains(page.body, `>web-2: connection refused</span>`) || !strings.Contains(page.body, "not probed yet") {
			t.Errorf("upstream page: %d, reachability missing", page.StatusCode)
		}
	})
}
