package controller

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The public status page exists only while a domain is listed, shows the
// listed domains' state and uptime to anyone, and nothing about the servers
// behind them.
func TestPublicStatusPage(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	anon := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, _, _ := anon("/status"); code != http.StatusNotFound {
		t.Fatalf("status page with nothing listed: %d", code)
	}
	if code, _, _ := anon("/api/v1/status"); code != http.StatusNotFound {
		t.Fatalf("status API with nothing listed: %d", code)
	}

	db := e.c.db.Client
	s1 := db.Server.Create().SetName("secret-node-7").SetAddress("10.1.2.3").SaveX(ctx)
	s2 := db.Server.Create().SetName("edge-2").SaveX(ctx)
	shop := db.Domain.Create().SetName("xn--bcher-kva.example").AddServers(s1, s2).SaveX(ctx)
	hidden := db.Domain.Create().SetName("internal.example").AddServers(s1).SaveX(ctx)
	path := "/api/v1/domains/" + strconv.Itoa(shop.ID) + "/health"
	if code, _ := e.api("PUT", path, e.user, map[string]any{"path": "/", "status_page": true}, nil); code != http.StatusForbidden {
		t.Fatalf("a user listed a domain: %d", code)
	}
	var hv struct {
		StatusPage bool `json:"status_page"`
	}
	if code, b := e.api("PUT", path, e.admin, map[string]any{"path": "/", "status_page": true}, &hv); code != http.StatusOK || !hv.StatusPage {
		t.Fatalf("list: %d %s", code, b)
	}
	e.api("PUT", "/api/v1/domains/"+strconv.Itoa(hidden.ID)+"/health", e.admin, map[string]any{"path": "/"}, nil)
	now := time.Now().UTC()
	for _, p := range []struct {
		srv int
		ok  bool
	}{{s1.ID, false}, {s2.ID, true}} {
		c := db.HealthProbe.Create().SetDomainID(shop.ID).SetServerID(p.srv).SetAt(now).SetOk(p.ok).SetStatus(200).
			SetURL("http://xn--bcher-kva.example/ via 10.1.2.3:80").SetMessage("answered 502 from 10.1.2.3")
		if !p.ok {
			c.SetStatus(502).SetFailingSince(now)
		}
		c.ExecX(ctx)
		db.HealthHour.Create().SetDomainID(shop.ID).SetServerID(p.srv).SetHour(now.Truncate(time.Hour)).SetUp(map[bool]int{true: 60, false: 57}[p.ok]).
			SetDown(map[bool]int{true: 0, false: 3}[p.ok]).ExecX(ctx)
	}
	db.HealthProbe.Create().SetDomainID(hidden.ID).SetServerID(s1.ID).SetAt(now).SetOk(false).SetStatus(500).SetFailingSince(now).ExecX(ctx)
	// Outages: two nodes down at overlapping times are one outage of the
	// domain; one ended long ago and the unlisted domain's are left out.
	// edge-1 from 120 to 90 minutes ago, edge-2 from 100 to 80: one outage of 40 minutes.
	ended := now.Add(-80 * time.Minute)
	db.HealthOutage.Create().SetDomainID(shop.ID).SetServerID(s1.ID).SetStartedAt(now.Add(-2 * time.Hour)).SetEndedAt(now.Add(-90 * time.Minute)).
		SetMessage("answered 502 from 10.1.2.3").ExecX(ctx)
	db.HealthOutage.Create().SetDomainID(shop.ID).SetServerID(s2.ID).SetStartedAt(now.Add(-100 * time.Minute)).SetEndedAt(ended).ExecX(ctx)
	db.HealthOutage.Create().SetDomainID(shop.ID).SetServerID(s1.ID).SetStartedAt(now.Add(-20 * 24 * time.Hour)).SetEndedAt(now.Add(-19 * 24 * time.Hour)).ExecX(ctx)
	db.HealthOutage.Create().SetDomainID(shop.ID).SetServerID(s1.ID).SetStartedAt(now.Add(-10 * time.Minute)).ExecX(ctx)
	db.HealthOutage.Create().SetDomainID(hidden.ID).SetServerID(s1.ID).SetStartedAt(now.Add(-time.Hour)).ExecX(ctx)

	code, body, hdr := anon("/status")
	if code != http.StatusOK || !strings.Contains(body, "<h1>Status</h1>") || !strings.Contains(body, "bücher.example") || !strings.Contains(body, "Some services are degraded") ||
		!strings.Contains(body, `status-pill-degraded`) || !strings.Contains(body, "24 h <strong>97.50 %</strong>") || !strings.Contains(body, `data-auto-refresh="60"`) {
		t.Fatalf("status page: %d\n%s", code, body)
	}
	for _, secret := range []string{"secret-node-7", "edge-2", "10.1.2.3", "answered 502", "internal.example", "/servers", "/domains"} {
		if strings.Contains(body, secret) {
			t.Errorf("the public page shows %q", secret)
		}
	}
	if hdr.Get("Cache-Control") != "public, max-age=15" {
		t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
	}
	var v struct {
		Outages []struct {
			Name      string     `json:"name"`
			StartedAt time.Time  `json:"started_at"`
			EndedAt   *time.Time `json:"ended_at"`
			Duration  string     `json:"duration"`
		} `json:"outages"`
		State   string `json:"state"`
		Domains []struct {
			Name   string `json:"name"`
			State  string `json:"state"`
			Every  string `json:"every"`
			Uptime map[string]struct {
				Percent *float64 `json:"percent"`
			} `json:"uptime"`
			Days []struct {
				Date  string `json:"date"`
				Class string `json:"class"`
			} `json:"days"`
		} `json:"domains"`
	}
	code, body, hdr = anon("/api/v1/status")
	if code != http.StatusOK || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("status API: %d %v %s", code, hdr, body)
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.State != "degraded" || len(v.Domains) != 1 || v.Domains[0].State != "degraded" || v.Domains[0].Uptime["24h"].Percent == nil ||
		*v.Domains[0].Uptime["24h"].Percent != 97.5 || len(v.Domains[0].Days) != 30 || v.Domains[0].Days[29].Class != "degraded" ||
		v.Domains[0].Days[29].Date != now.Format(time.DateOnly) || v.Domains[0].Every != every(e.c.cfg.HealthInterval) {
		t.Fatalf("status JSON: %+v", v)
	}
	for _, secret := range []string{"secret-node-7", "10.1.2.3", "answered 502", "internal.example", "server"} {
		if strings.Contains(body, secret) {
			t.Errorf("the public JSON shows %q", secret)
		}
	}
	if o := v.Outages; len(o) != 2 || o[0].EndedAt != nil || o[0].Name != "xn--bcher-kva.example" ||
		o[1].EndedAt == nil || !o[1].StartedAt.Equal(now.Add(-2*time.Hour)) || !o[1].EndedAt.Equal(ended) || o[1].Duration != "40m" {
		t.Fatalf("status outages: %+v", o)
	}

	// A listed monitor shows beside the domains, without its target or
	// message; an unlisted one does not show.
	var mon struct {
		ID int `json:"id"`
	}
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "billing api", "kind": "tcp", "target": "127.0.0.1:1",
		"status_page": true, "enabled": false, "interval_s": 300}, &mon); code != http.StatusCreated {
		t.Fatalf("monitor: %d %s", code, b)
	}
	e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "internal job", "kind": "tcp", "target": "127.0.0.1:2", "enabled": false}, nil)
	db.Monitor.UpdateOneID(mon.ID).SetEnabled(true).SetCheckedAt(now).SetOk(false).SetFailingSince(now).SetMessage("connection refused").ExecX(ctx)
	db.MonitorHour.Create().SetMonitorID(mon.ID).SetHour(now.Truncate(time.Hour)).SetUp(1).SetDown(3).ExecX(ctx)
	e.c.statusForget()
	code, body, _ = anon("/status")
	if code != http.StatusOK || !strings.Contains(body, `data-status-domain="billing api"`) || !strings.Contains(body, "Some services are down") ||
		!strings.Contains(body, "24 h <strong>25.00 %</strong>") || !strings.Contains(body, "checked every 5 minutes") {
		t.Fatalf("status page with a monitor: %d\n%s", code, body)
	}
	for _, secret := range []string{"127.0.0.1:1", "connection refused", "internal job"} {
		if strings.Contains(body, secret) {
			t.Errorf("the public page shows %q", secret)
		}
	}

	// Taking the last domain off ends the page at once, cache or not.
	e.api("PUT", path, e.admin, map[string]any{"path": "/", "status_page": false}, nil)
	e.api("PUT", "/api/v1/monitors/"+strconv.Itoa(mon.ID), e.admin, map[string]any{"name": "billing api", "kind": "tcp", "target": "127.0.0.1:1",
		"status_page": false, "enabled": false}, nil)
	if code, _, _ := anon("/status"); code != http.StatusNotFound {
		t.Fatalf("status page after the last domain and monitor were taken off: %d", code)
	}
	if ev := e.auditEvents("domain.status_page"); len(ev) != 2 {
		t.Errorf("audit: %q", ev)
	}
}

func TestEvery(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "minute", 30 * time.Second: "30 seconds", 5 * time.Minute: "5 minutes", time.Hour: "hour", 48 * time.Hour: "2 days"} {
		if got := every(d); got != want {
			t.Errorf("every(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestMergeIntervals(t *testing.T) {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	end := func(m int) *time.Time { e := at(m); return &e }
	now := at(1000)
	got := mergeIntervals([]interval{
		{at(50), end(60)}, // inside the next one's span once sorted
		{at(40), end(70)},
		{at(70), end(80)}, // touches the run's end: joins it
		{at(100), end(110)},
		{at(105), end(120)}, // overlaps: extends the run
		{at(200), end(210)},
		{at(300), nil},      // still open: the run stays open
		{at(305), end(310)}, // inside the open run
	}, now)
	want := []string{"40-80", "100-120", "200-210", "300-open"}
	if len(got) != len(want) {
		t.Fatalf("merged into %d: %+v", len(got), got)
	}
	for i, iv := range got {
		s := strconv.Itoa(int(iv.start.Sub(base)/time.Minute)) + "-"
		if iv.end == nil {
			s += "open"
		} else {
			s += strconv.Itoa(int(iv.end.Sub(base) / time.Minute))
		}
		if s != want[i] {
			t.Errorf("interval %d = %s, want %s", i, s, want[i])
		}
	}
	if outageWords(20*time.Second) != "under a minute" || outageWords(61*time.Minute) != "1h1m" {
		t.Errorf("outage words: %q %q", outageWords(20*time.Second), outageWords(61*time.Minute))
	}
}
