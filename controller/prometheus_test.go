package controller

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
)

func TestWritePrometheus(t *testing.T) {
	var b strings.Builder
	writePrometheus(&b, promData{
		Version: "1.2.3",
		Servers: []promServer{
			{Name: "web-1", OS: "linux", Arch: "amd64", AgentVersion: "v\"1\\x\ny", Connected: true, LastSeen: 1700000000,
				Sample: &metrics.Summary{CPU: 12.5, MemUsed: 1 << 30, Load1: 0.25, Nginx: true, NginxRPS: 42.5, NginxConns: 7}, Desired: 4, Applied: 3},
			{Name: "web-2"},
			{Name: "db-1", Sample: &metrics.Summary{CPU: 3}},
		},
		Domains: []promDomain{{Name: "shop.example", Health: map[string]bool{"web-2": false, "web-1": true},
			Uptime: map[string]float64{"24h": 0.995, "7d": 1}, CertExpiry: 1800000000}},
		Monitors: []promMonitor{{Name: "billing \"api\"", Kind: "http", Checked: true, Up: true, LatencyMS: 125, Uptime: map[string]float64{"30d": 0.5}, CertExpiry: 1900000000},
			{Name: "new", Kind: "tcp"}},
		Incidents: map[[2]string]int{{"firing", "critical"}: 2, {"pending", "warning"}: 1},
	})
	out := b.String()
	for _, want := range []string{
		"# HELP gatehouse_build_info The controller's version, as a label.\n# TYPE gatehouse_build_info gauge\ngatehouse_build_info{version=\"1.2.3\"} 1\n",
		`gatehouse_server_info{server="web-1",os="linux",arch="amd64",agent_version="v\"1\\x\ny"} 1` + "\n",
		"gatehouse_server_connected{server=\"web-1\"} 1\ngatehouse_server_connected{server=\"web-2\"} 0\n",
		"gatehouse_server_last_seen_timestamp_seconds{server=\"web-1\"} 1.7e+09\n",
		"gatehouse_server_cpu_percent{server=\"web-1\"} 12.5\n",
		"gatehouse_server_memory_used_bytes{server=\"web-1\"} 1.073741824e+09\n",
		"gatehouse_nginx_revision_applied{server=\"web-1\"} 3\n",
		"gatehouse_server_nginx_requests_per_second{server=\"web-1\"} 42.5\n# HELP",
		"gatehouse_server_nginx_connections{server=\"web-1\"} 7\n# HELP",
		"gatehouse_domain_health_up{domain=\"shop.example\",server=\"web-1\"} 1\ngatehouse_domain_health_up{domain=\"shop.example\",server=\"web-2\"} 0\n",
		"gatehouse_domain_uptime_ratio{domain=\"shop.example\",window=\"24h\"} 0.995\ngatehouse_domain_uptime_ratio{domain=\"shop.example\",window=\"7d\"} 1\n",
		"gatehouse_certificate_expiry_timestamp_seconds{domain=\"shop.example\"} 1.8e+09\n",
		"gatehouse_monitor_up{monitor=\"billing \\\"api\\\"\",kind=\"http\"} 1\n# HELP gatehouse_monitor_latency_seconds",
		"gatehouse_monitor_latency_seconds{monitor=\"billing \\\"api\\\"\"} 0.125\n# HELP",
		"gatehouse_monitor_uptime_ratio{monitor=\"billing \\\"api\\\"\",window=\"30d\"} 0.5\n# HELP",
		"gatehouse_monitor_certificate_expiry_timestamp_seconds{monitor=\"billing \\\"api\\\"\"} 1.9e+09\n# HELP",
		"gatehouse_incidents_open{state=\"firing\",severity=\"critical\"} 2\ngatehouse_incidents_open{state=\"pending\",severity=\"warning\"} 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A server without a sample has no sample metrics; every line is a
	// comment or "name{labels} value" on one line.
	if strings.Contains(out, `cpu_percent{server="web-2"}`) {
		t.Error("a server without a sample has a CPU value")
	}
	if strings.Contains(out, `nginx_connections{server="db-1"}`) || strings.Contains(out, `nginx_requests_per_second{server="db-1"}`) {
		t.Error("a server whose agent read no nginx figures has nginx values")
	}
	if strings.Contains(out, `monitor="new"`) {
		t.Error("a monitor never checked has values")
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, "# HELP ") && !strings.HasPrefix(line, "# TYPE ") && !strings.HasPrefix(line, "gatehouse_") {
			t.Errorf("stray line %q", line)
		}
	}
	if got := strings.Count(out, "# TYPE "); got != strings.Count(out, "# HELP ") || got < 25 {
		t.Errorf("%d TYPE lines", got)
	}
}

// GET /metrics needs a user's token, and exports what the database holds.
func TestPrometheusEndpoint(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	s1 := db.Server.Create().SetName("web-1").SaveX(ctx)
	d := db.Domain.Create().SetName("shop.example").AddServers(s1).SaveX(ctx)
	db.HealthProbe.Create().SetDomainID(d.ID).SetServerID(s1.ID).SetAt(time.Now()).SetOk(true).ExecX(ctx)
	db.HealthHour.Create().SetDomainID(d.ID).SetServerID(s1.ID).SetHour(time.Now().UTC().Truncate(time.Hour)).SetUp(3).SetDown(1).ExecX(ctx)
	m := db.Monitor.Create().SetName("db").SetKind("tcp").SetTarget("127.0.0.1:1").SetCheckedAt(time.Now()).SetOk(false).SetLatencyMs(3).SaveX(ctx)
	db.MonitorHour.Create().SetMonitorID(m.ID).SetHour(time.Now().UTC().Truncate(time.Hour)).SetUp(1).SetDown(3).ExecX(ctx)
	db.Monitor.Create().SetName("off").SetKind("tcp").SetTarget("127.0.0.1:1").SetEnabled(false).SetCheckedAt(time.Now()).ExecX(ctx)
	get := func(token string) (int, string, string) {
		req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, _, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous scrape: %d", code)
	}
	code, ct, body := get(e.user)
	if code != http.StatusOK || ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("scrape: %d %q\n%s", code, ct, body)
	}
	for _, want := range []string{`gatehouse_server_connected{server="web-1"} 0`, `gatehouse_domain_health_up{domain="shop.example",server="web-1"} 1`,
		`gatehouse_domain_uptime_ratio{domain="shop.example",window="24h"} 0.75`, `gatehouse_monitor_up{monitor="db",kind="tcp"} 0`,
		`gatehouse_monitor_latency_seconds{monitor="db"} 0.003`, `gatehouse_monitor_uptime_ratio{monitor="db",window="7d"} 0.25`} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `monitor="off"`) {
		t.Error("a disabled monitor is exported")
	}
}
