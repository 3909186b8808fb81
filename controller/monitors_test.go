package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
)

func TestMonitorsAPI(t *testing.T) {
	e := newEditEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	body := map[string]any{"name": "billing", "kind": "http", "target": srv.URL + "/healthz", "timeout_ms": 2000}

	// A user reads but does not write; an anonymous caller does neither.
	if code, _ := e.api("POST", "/api/v1/monitors", e.user, body, nil); code != http.StatusForbidden {
		t.Errorf("a user's POST: %d, want 403", code)
	}
	if code, _ := e.api("GET", "/api/v1/monitors", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("an anonymous GET: %d, want 401", code)
	}
	var created monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, body, &created); code != http.StatusCreated || created.ID == 0 || !created.Enabled || created.State != "unchecked" {
		t.Fatalf("create: %d %s", code, b)
	}
	path := fmt.Sprintf("/api/v1/monitors/%d", created.ID)
	var checked monitorJSON
	if code, b := e.api("POST", path+"/check", e.admin, nil, &checked); code != http.StatusOK || checked.State != "up" || checked.Status != 200 ||
		// The scheduled job may have checked it too.
		checked.Uptime["24h"].Up < 1 || checked.Uptime["24h"].Down != 0 || len(checked.Hours) != hoursShown || len(checked.Days) != statusDays {
		t.Errorf("check: %d %s", code, b)
	}
	if code, _ := e.api("POST", path+"/check", e.user, nil, nil); code != http.StatusForbidden {
		t.Errorf("a user's check: %d, want 403", code)
	}
	var list struct{ Monitors []monitorJSON }
	if code, b := e.api("GET", "/api/v1/monitors", e.user, nil, &list); code != http.StatusOK || len(list.Monitors) != 1 || list.Monitors[0].Uptime["24h"].Label != "100 %" {
		t.Errorf("a user's list: %d %s", code, b)
	}
	var fail struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	bad := map[string]any{"name": "x\"><script>", "kind": "tcp", "target": "db:5432\r\n", "timeout_ms": 10, "interval_s": 5, "expect_body": "ok"}
	if code, b := e.api("PUT", path, e.admin, bad, &fail); code != http.StatusUnprocessableEntity || len(fail.Error.Fields) != 5 ||
		fail.Error.Fields["name"] == "" || fail.Error.Fields["target"] == "" || fail.Error.Fields["timeout_ms"] == "" ||
		fail.Error.Fields["interval_s"] == "" || fail.Error.Fields["expect_body"] == "" {
		t.Errorf("hostile update: %d %s", code, b)
	}
	badHTTP := map[string]any{"name": "billing", "kind": "http", "target": srv.URL + "/", "expect_status": "200;reboot", "expect_body": "ok\n"}
	fail.Error.Fields = nil
	if code, b := e.api("PUT", path, e.admin, badHTTP, &fail); code != http.StatusUnprocessableEntity || len(fail.Error.Fields) != 2 ||
		fail.Error.Fields["expect_status"] == "" || fail.Error.Fields["expect_body"] == "" {
		t.Errorf("hostile expectations: %d %s", code, b)
	}
	// The server answers 200 with an empty body: a monitor that asks for
	// 204 or for some text finds it down, and says why.
	strict := map[string]any{"name": "billing", "kind": "http", "target": srv.URL + "/", "interval_s": 300, "expect_status": "204, 200-201"}
	var got monitorJSON
	if code, b := e.api("PUT", path, e.admin, strict, &got); code != http.StatusOK || got.IntervalS != 300 || got.ExpectStatus != "204,200-201" {
		t.Errorf("expectations: %d %s", code, b)
	}
	if code, b := e.api("POST", path+"/check", e.admin, nil, &got); code != http.StatusOK || got.State != "up" {
		t.Errorf("check with 200 expected: %d %s", code, b)
	}
	strict["expect_body"] = "healthy"
	if code, b := e.api("PUT", path, e.admin, strict, nil); code != http.StatusOK {
		t.Errorf("expect a body: %d %s", code, b)
	}
	if code, b := e.api("POST", path+"/check", e.admin, nil, &got); code != http.StatusOK || got.State != "down" || !strings.Contains(got.Message, `do not contain "healthy"`) {
		t.Errorf("check of a body without the text: %d %s", code, b)
	}
	if len(got.Outages) != 1 || got.Outages[0].EndedAt != nil || got.Outages[0].Checks < 1 || !strings.Contains(got.Outages[0].Message, "healthy") {
		t.Errorf("outages after the failed check: %+v", got.Outages)
	}
	if code, _ := e.api("PUT", path, e.user, body, nil); code != http.StatusForbidden {
		t.Errorf("a user's PUT: %d, want 403", code)
	}
	off := map[string]any{"name": "billing-db", "kind": "tcp", "target": "127.0.0.1:1", "enabled": false}
	var updated monitorJSON
	if code, b := e.api("PUT", path, e.admin, off, &updated); code != http.StatusOK || updated.Name != "billing-db" || updated.State != "off" || updated.TimeoutMS != 10000 {
		t.Errorf("update: %d %s", code, b)
	}
	// An https target with a self-signed certificate: down unless any
	// certificate is accepted; its expiry is shown either way.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	var tlsMon monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "self-signed", "kind": "http", "target": tlsSrv.URL + "/", "enabled": false}, &tlsMon); code != http.StatusCreated {
		t.Fatalf("create an https monitor: %d %s", code, b)
	}
	tlsPath := fmt.Sprintf("/api/v1/monitors/%d", tlsMon.ID)
	if code, b := e.api("POST", tlsPath+"/check", e.admin, nil, &tlsMon); code != http.StatusOK || tlsMon.OK || !strings.Contains(tlsMon.Message, "certificate") ||
		tlsMon.CertExpiresAt == nil || !tlsMon.CertExpiresAt.Equal(tlsSrv.Certificate().NotAfter) {
		t.Errorf("check of a self-signed target: %d %s", code, b)
	}
	if code, b := e.api("PUT", tlsPath, e.admin, map[string]any{"name": "self-signed", "kind": "http", "target": tlsSrv.URL + "/", "enabled": false, "ignore_tls_errors": true}, nil); code != http.StatusOK {
		t.Errorf("accept any certificate: %d %s", code, b)
	}
	if code, b := e.api("POST", tlsPath+"/check", e.admin, nil, &tlsMon); code != http.StatusOK || !tlsMon.OK || !tlsMon.IgnoreTLSErrors || tlsMon.CertExpiresAt == nil {
		t.Errorf("check accepting any certificate: %d %s", code, b)
	}
	if _, _, page := send(t, e.browser(e.userLogin), "GET", fmt.Sprintf("%s/monitors/%d", e.base, tlsMon.ID), nil); !strings.Contains(page, "with any certificate") ||
		!regexp.MustCompile(`<dd data-monitor-cert>expires <time [^>]+>in [0-9]+ days</time>`).MatchString(page) {
		t.Error("the monitor page does not show the certificate's expiry")
	}
	// A TLS monitor of the same port: the handshake, without HTTP.
	var hs monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "handshake", "kind": "tls", "target": tlsSrv.Listener.Addr().String(),
		"ignore_tls_errors": true, "enabled": false}, &hs); code != http.StatusCreated {
		t.Fatalf("create a tls monitor: %d %s", code, b)
	}
	if code, b := e.api("POST", fmt.Sprintf("/api/v1/monitors/%d/check", hs.ID), e.admin, nil, &hs); code != http.StatusOK || !hs.OK ||
		hs.CertExpiresAt == nil || !hs.CertExpiresAt.Equal(tlsSrv.Certificate().NotAfter) {
		t.Errorf("check of a tls monitor: %d %s", code, b)
	}
	if _, _, page := send(t, e.browser(e.userLogin), "GET", fmt.Sprintf("%s/monitors/%d", e.base, hs.ID), nil); !strings.Contains(page, "must complete a TLS handshake (any certificate)") {
		t.Error("the tls monitor's page does not say what it checks")
	}
	// Retries: the first failure is tolerated, the second makes it down.
	var flaky monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "flaky", "kind": "tcp", "target": "127.0.0.1:1", "retries": 1, "enabled": false}, &flaky); code != http.StatusCreated || flaky.Retries != 1 {
		t.Fatalf("create with retries: %d %s", code, b)
	}
	for i, want := range []string{"retrying", "down"} {
		if code, b := e.api("POST", fmt.Sprintf("/api/v1/monitors/%d/check", flaky.ID), e.admin, nil, &flaky); code != http.StatusOK || flaky.Enabled || flaky.FailedChecks != i+1 {
			t.Fatalf("check %d: %d %s", i, code, b)
		}
		// A disabled monitor shows as off; its row carries the outcome.
		row, err := e.c.db.Client.Monitor.Get(context.Background(), flaky.ID)
		if err != nil || row.Ok != (want == "retrying") {
			t.Errorf("check %d: row ok %v, want %s (%v)", i, row.Ok, want, err)
		}
	}
	fail.Error.Fields = nil
	if code, _ := e.api("PUT", fmt.Sprintf("/api/v1/monitors/%d", flaky.ID), e.admin, map[string]any{"name": "flaky", "kind": "tcp", "target": "127.0.0.1:1", "retries": 11}, &fail); code != http.StatusUnprocessableEntity ||
		fail.Error.Fields["retries"] == "" {
		t.Errorf("eleven retries: %d %+v", code, fail)
	}
	if code, b := e.api("PUT", tlsPath, e.admin, map[string]any{"name": "self-signed", "kind": "tcp", "target": "127.0.0.1:1", "ignore_tls_errors": true}, &fail); code != http.StatusUnprocessableEntity ||
		fail.Error.Fields["ignore_tls_errors"] == "" {
		t.Errorf("any certificate of a tcp monitor: %d %s", code, b)
	}
	if code, _ := e.api("DELETE", path, e.user, nil, nil); code != http.StatusForbidden {
		t.Errorf("a user's DELETE: %d, want 403", code)
	}
	if code, _ := e.api("DELETE", path, e.admin, nil, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := e.api("GET", path, e.user, nil, nil); code != http.StatusNotFound {
		t.Errorf("get after delete: %d, want 404", code)
	}
	if got := e.auditEvents("monitor.create"); len(got) != 4 || len(e.auditEvents("monitor.update")) != 4 || len(e.auditEvents("monitor.delete")) != 1 {
		t.Errorf("audit: %v", got)
	}
}

func TestMonitorsPages(t *testing.T) {
	e := newEditEnv(t)
	admin, viewer, anon := e.browser(e.adminLogin), e.browser(e.userLogin), e.browser(nil)
	form := url.Values{"name": {"db"}, "kind": {"tcp"}, "target": {"127.0.0.1:1"}, "timeout_ms": {"1000"}, "enabled": {"1"}}

	if code, loc, _ := send(t, anon, "GET", e.base+"/monitors", nil); code != http.StatusSeeOther || !strings.Contains(loc, "/login") {
		t.Errorf("anonymous list: %d %s", code, loc)
	}
	if code, _, _ := send(t, viewer, "POST", e.base+"/monitors", form); code != http.StatusForbidden {
		t.Errorf("a user's create: %d, want 403", code)
	}
	code, _, page := send(t, viewer, "GET", e.base+"/monitors", nil)
	if code != http.StatusOK || !strings.Contains(page, ">Monitors<") || strings.Contains(page, "data-monitor-form") {
		t.Errorf("a user's list: %d, form shown: %v", code, strings.Contains(page, "data-monitor-form"))
	}
	if i, j := strings.Index(page, `href="/domains"`), strings.Index(page, `href="/monitors"`); i < 0 || j < i || j > strings.Index(page, `href="/upstreams"`) {
		t.Error("the nav does not list Monitors between Domains and Upstreams")
	}

	// A refused form comes back as typed, with messages at the fields and the hostile text escaped.
	hostile := url.Values{"name": {`<script>alert(1)</script>`}, "kind": {"http"}, "target": {`https://a.example/"><img src=x onerror=alert(1)>`}, "timeout_ms": {"soon"}}
	code, _, page = send(t, admin, "POST", e.base+"/monitors", hostile)
	if code != http.StatusUnprocessableEntity || strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") ||
		!strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, "whole number of milliseconds") {
		t.Errorf("hostile create: %d", code)
	}
	code, _, page = send(t, admin, "POST", e.base+"/monitors", url.Values{"name": {"ok"}, "kind": {"http"}, "target": {"ftp://a.example/"}, "timeout_ms": {"1000"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "must start with http:// or https://") || !strings.Contains(page, `value="ftp://a.example/"`) {
		t.Errorf("ftp target: %d", code)
	}

	code, loc, _ := send(t, admin, "POST", e.base+"/monitors", form)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/monitors/") {
		t.Fatalf("create: %d %s", code, loc)
	}
	detail := e.base + loc
	code, _, page = send(t, viewer, "GET", detail, nil)
	if code != http.StatusOK || !strings.Contains(page, `data-monitor-state="down"`) || !strings.Contains(page, "refused") ||
		strings.Count(page, "uptime-hour") != hoursShown+statusDays || strings.Contains(page, "data-monitor-check") {
		t.Errorf("a user's detail page: %d", code)
	}
	if _, _, page := send(t, viewer, "GET", e.base+"/", nil); !strings.Contains(page, `href="/monitors"><strong>1</strong> monitor down</a>`) {
		t.Error("the dashboard does not count the monitor that is down")
	}
	if !strings.Contains(page, "data-outage-open") || !strings.Contains(page, `<span class="status status-offline">ongoing</span>`) {
		t.Error("the detail page does not list the ongoing outage")
	}
	for _, p := range []string{"", "/check", "/delete"} {
		if code, _, _ := send(t, viewer, "POST", detail+p, form); code != http.StatusForbidden {
			t.Errorf("a user's POST %s: %d, want 403", p, code)
		}
	}
	code, _, page = send(t, admin, "GET", detail, nil)
	if code != http.StatusOK || !strings.Contains(page, "data-monitor-check") || !strings.Contains(page, "data-monitor-delete") {
		t.Errorf("admin's detail page: %d", code)
	}
	if code, _, page := send(t, admin, "POST", detail, url.Values{"name": {"db"}, "kind": {"tcp"}, "target": {"db.example:0"}, "timeout_ms": {"1000"}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(page, "port must be a number") || !strings.Contains(page, `value="db.example:0"`) {
		t.Errorf("refused update: %d", code)
	}
	if code, _, page := send(t, admin, "POST", detail, url.Values{"name": {"db"}, "kind": {"http"}, "target": {"http://127.0.0.1:1/"}, "timeout_ms": {"1000"},
		"interval_s": {"often"}, "expect_status": {"2xx"}, "expect_body": {"a\x00b"}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(page, "whole number of seconds") || !strings.Contains(page, `value="2xx"`) {
		t.Errorf("refused interval: %d", code)
	}
	if code, _, page := send(t, admin, "POST", detail, url.Values{"name": {"db"}, "kind": {"http"}, "target": {"http://127.0.0.1:1/"}, "timeout_ms": {"1000"},
		"interval_s": {"60"}, "expect_status": {"2xx"}, "expect_body": {"a\x00b"}}); code != http.StatusUnprocessableEntity ||
		!strings.Contains(page, "such as 200-299,301") || !strings.Contains(page, "without control characters") {
		t.Errorf("refused expectations: %d", code)
	}
	// A TCP monitor drops the HTTP-only fields the form hides.
	if code, _, _ := send(t, admin, "POST", detail, url.Values{"name": {"db-main"}, "kind": {"tcp"}, "target": {"127.0.0.1:1"}, "timeout_ms": {"1000"},
		"interval_s": {"120"}, "expect_status": {"200"}, "expect_body": {"ok"}}); code != http.StatusSeeOther {
		t.Errorf("update: %d", code)
	}
	if _, _, page := send(t, viewer, "GET", detail, nil); !strings.Contains(page, "checked every 120 s") {
		t.Error("the detail page does not say how often the monitor is checked")
	}
	if code, _, _ := send(t, admin, "POST", detail+"/check", nil); code != http.StatusSeeOther {
		t.Errorf("check: %d", code)
	}
	if _, _, page := send(t, viewer, "GET", e.base+"/monitors", nil); !strings.Contains(page, "db-main") || !strings.Contains(page, `data-monitor-state="off"`) {
		t.Error("the list does not show the monitor, off")
	}
	if code, loc, _ := send(t, admin, "POST", detail+"/delete", nil); code != http.StatusSeeOther || loc != "/monitors" {
		t.Errorf("delete: %d %s", code, loc)
	}
	if code, _, _ := send(t, viewer, "GET", detail, nil); code != http.StatusNotFound {
		t.Errorf("detail after delete: %d", code)
	}
}

func TestMonitorStates(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		m    ent.Monitor
		want string
	}{
		{ent.Monitor{Enabled: false, CheckedAt: &now, Ok: true}, "off"},
		{ent.Monitor{Enabled: true}, "unchecked"},
		{ent.Monitor{Enabled: true, CheckedAt: &now, Ok: true}, "up"},
		{ent.Monitor{Enabled: true, CheckedAt: &now, Ok: true, FailedChecks: 1, Retries: 2}, "retrying"},
		{ent.Monitor{Enabled: true, CheckedAt: &now, Ok: false, FailedChecks: 3, Retries: 2}, "down"},
	} {
		if got := toMonitorJSON(&tc.m, nil).State; got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.m, got, tc.want)
		}
	}
}
