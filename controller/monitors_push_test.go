package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/web"
)

// pushResult is what a push got back.
type pushResult struct {
	status int
	body   string
	header http.Header
}

// pushTo calls a push URL as a job would, with a plain client (no cookies,
// no redirects followed).
func pushTo(t *testing.T, method, u, body string) pushResult {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pushResult{resp.StatusCode, string(b), resp.Header}
}

// A push monitor over real HTTP: created with its push URL shown once,
// pushed to by a job, down after its missed intervals (the clock moved, the
// job run), back up at the next push; refusals answer 400, 404 and 429;
// the token never shows again, nor in the audit log or the log.
func TestPushMonitorOverHTTP(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Second)
	clock := start
	e.c.monitorsClock.set(clock)
	tick := func(d time.Duration) { clock = clock.Add(d); e.c.monitorsClock.set(clock) }
	var tokens []string
	var fail struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	// Settings a push monitor does not have are refused at their fields.
	for field, value := range map[string]any{"target": "https://a.example/", "timeout_ms": 5000, "expect_status": "200", "expect_body": "ok", "ignore_tls_errors": true} {
		fail.Error.Fields = nil
		body := map[string]any{"name": "backup", "kind": "push", field: value}
		if code, b := e.api("POST", "/api/v1/monitors", e.admin, body, &fail); code != http.StatusUnprocessableEntity || fail.Error.Fields[field] == "" || len(fail.Error.Fields) != 1 {
			t.Errorf("a push monitor with %s: %d %s", field, code, b)
		}
	}
	var created monitorJSON
	code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "backup", "kind": "push", "interval_s": 60, "retries": 1, "status_page": true}, &created)
	if code != http.StatusCreated || created.Kind != "push" || created.Target != "" || created.TimeoutMS != 0 || created.State != "unchecked" ||
		created.PushGraceS != 30 || created.PushDueAt == nil || !created.PushDueAt.Equal(start.Add(90*time.Second)) {
		t.Fatalf("create: %d %s", code, b)
	}
	token := created.PushToken
	tokens = append(tokens, token)
	if len(token) != 43 || created.PushURL != e.base+"/push/"+token {
		t.Fatalf("push token %q, URL %q", token, created.PushURL)
	}
	path := fmt.Sprintf("/api/v1/monitors/%d", created.ID)
	get := func() monitorJSON {
		t.Helper()
		var m monitorJSON
		if code, b := e.api("GET", path, e.user, nil, &m); code != http.StatusOK || strings.Contains(b, token) || strings.Contains(b, "push_token") || strings.Contains(b, "push_url") {
			t.Fatalf("get: %d %s", code, b)
		}
		return m
	}
	if _, b := e.api("GET", "/api/v1/monitors", e.user, nil, nil); strings.Contains(b, token) || !strings.Contains(b, `"kind":"push"`) {
		t.Errorf("the list shows the token or not the kind: %s", b)
	}

	// A push: 200 "ok" in plain text, no cookie, not cached; up at once.
	r := pushTo(t, "GET", created.PushURL, "")
	if r.status != http.StatusOK || r.body != "ok\n" || r.header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		r.header.Get("Cache-Control") != "no-store" || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("push: %d %q %v", r.status, r.body, r.header)
	}
	if m := get(); m.State != "up" || m.LastPushAt == nil || !m.LastPushAt.Equal(start) || m.CheckedAt == nil || !m.PushDueAt.Equal(start.Add(90*time.Second)) {
		t.Errorf("after a push: %+v", m)
	}
	// A second push in the same second: 429, and nothing written.
	seq := e.c.db.Client.Monitor.GetX(ctx, created.ID).Seq
	if r := pushTo(t, "POST", created.PushURL, ""); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("a second push in the second: %d %q", r.status, r.body)
	}
	if now := e.c.db.Client.Monitor.GetX(ctx, created.ID).Seq; now != seq {
		t.Errorf("a refused push was written (seq %d, then %d)", seq, now)
	}
	// A POST reporting a failure, with a body that is ignored.
	tick(time.Second)
	if r := pushTo(t, "POST", created.PushURL+"?status=down&msg=backup+failed%3A+disk+full", strings.Repeat("log line\n", 2000)); r.status != http.StatusOK {
		t.Fatalf("a push reporting down: %d %q", r.status, r.body)
	}
	if m := get(); m.State != "retrying" || m.Message != "backup failed: disk full" || m.FailedChecks != 1 {
		t.Errorf("after a push reporting down: %+v", m)
	}
	// Hostile reports are refused with a message, and record nothing.
	tick(time.Second)
	seq = e.c.db.Client.Monitor.GetX(ctx, created.ID).Seq
	for _, q := range []string{"msg=a%0Ab", "msg=a%0D%0ASet-Cookie:+x=1", "msg=a%00b", "msg=" + strings.Repeat("x", 201), "msg=%FF%FE", "status=maybe", "ping=-5", "stauts=down", "msg=%zz"} {
		r := pushTo(t, "GET", created.PushURL+"?"+q, "")
		if r.status != http.StatusBadRequest || !regexp.MustCompile(`^(msg|status|ping|query): .+\n$`).MatchString(r.body) || r.header.Get("Set-Cookie") != "" {
			t.Errorf("?%.40s: %d %q", q, r.status, r.body)
		}
	}
	if now := e.c.db.Client.Monitor.GetX(ctx, created.ID).Seq; now != seq {
		t.Error("a refused push was written")
	}
	// Unknown and malformed tokens: 404 with nothing more to say.
	for _, u := range []string{e.base + "/push/" + strings.Repeat("A", 43), e.base + "/push/" + token[:42], e.base + "/push/" + token + "x", e.base + "/push/..%2f"} {
		if r := pushTo(t, "GET", u, ""); r.status != http.StatusNotFound || (r.body != "not found\n" && !strings.Contains(r.body, "404 page not found")) {
			t.Errorf("%s: %d %q", u, r.status, r.body)
		}
	}
	if r := pushTo(t, "GET", created.PushURL+"?ping=250", ""); r.status != http.StatusOK {
		t.Fatalf("a good push: %d %q", r.status, r.body)
	}
	lastPush := clock
	if m := get(); m.State != "up" || m.LatencyMS != 250 {
		t.Errorf("after a good push: %+v", m)
	}

	// Time passes without a push: the first missed deadline is tolerated
	// (one retry), the second makes it down, from the first.
	jobAt := func(d time.Duration) monitorJSON {
		t.Helper()
		clock = lastPush.Add(d)
		e.c.monitorsClock.set(clock)
		_ = e.c.newMonitors().ProbeAll(ctx, func(string, ...any) {}) // fails while the monitor is down
		return get()
	}
	firstMiss := lastPush.Add(90 * time.Second)
	if m := jobAt(95 * time.Second); m.State != "retrying" || m.FailedChecks != 1 || !m.CheckedAt.Equal(firstMiss) {
		t.Errorf("after the first missed deadline: %+v", m)
	}
	m := jobAt(155 * time.Second)
	if m.State != "down" || m.DownSince == nil || !m.DownSince.Equal(firstMiss) || m.Message != "no push since "+lastPush.Format(time.RFC3339) {
		t.Errorf("after the second missed deadline: %+v", m)
	}
	if len(m.Outages) != 1 || !m.Outages[0].StartedAt.Equal(firstMiss) || m.Outages[0].EndedAt != nil {
		t.Errorf("outages: %+v", m.Outages)
	}
	// Down shows where down monitors show: the status page and the metrics.
	if _, b := e.api("GET", "/api/v1/status", "", nil, nil); !strings.Contains(b, `"name":"backup"`) || strings.Contains(b, token) {
		t.Errorf("status page: %s", b)
	}
	req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.user)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `gatehouse_monitor_up{monitor="backup",kind="push"} 0`) {
			t.Errorf("metrics do not show the push monitor down:\n%s", b)
		}
	}
	// The next push: up at once, the outage ended.
	tick(time.Second)
	if r := pushTo(t, "POST", created.PushURL, ""); r.status != http.StatusOK {
		t.Fatalf("push after the outage: %d %q", r.status, r.body)
	}
	if m := get(); m.State != "up" || len(m.Outages) != 1 || m.Outages[0].EndedAt == nil || !m.Outages[0].EndedAt.Equal(clock) {
		t.Errorf("after the push: %+v", m)
	}

	// An edit keeps the token; the answer does not repeat it.
	var edited monitorJSON
	if code, b := e.api("PUT", path, e.admin, map[string]any{"name": "nightly-backup", "kind": "push", "interval_s": 3600, "status_page": true}, &edited); code != http.StatusOK ||
		edited.PushToken != "" || strings.Contains(b, token) || edited.PushGraceS != 360 {
		t.Errorf("edit: %d %s", code, b)
	}
	tick(time.Second)
	if r := pushTo(t, "GET", created.PushURL, ""); r.status != http.StatusOK {
		t.Errorf("a push after an edit: %d %q", r.status, r.body)
	}

	// The pages: the list shows the kind and the last push, the monitor's
	// page the last push and the action, never the token.
	admin, viewer := e.browser(e.adminLogin), e.browser(e.userLogin)
	detail := fmt.Sprintf("%s/monitors/%d", e.base, created.ID)
	_, _, page := send(t, viewer, "GET", e.base+"/monitors", nil)
	if !strings.Contains(page, "<td>push</td>") || !strings.Contains(page, "last push <time") || strings.Contains(page, token) {
		t.Error("the list does not show the push monitor's kind and last push")
	}
	_, _, page = send(t, admin, "GET", detail, nil)
	if !strings.Contains(page, "<dt>Last push</dt>") || !strings.Contains(page, "data-monitor-push-token") || strings.Contains(page, "data-monitor-check") ||
		strings.Contains(page, token) || strings.Contains(page, "data-monitor-push-url") || !strings.Contains(page, `<option value="push" selected>`) {
		t.Error("the monitor page of a push monitor")
	}
	if _, _, page := send(t, viewer, "GET", detail, nil); strings.Contains(page, "data-monitor-push-token") {
		t.Error("a user is offered a new push URL")
	}
	if code, _, _ := send(t, viewer, "POST", detail+"/push-token", nil); code != http.StatusForbidden {
		t.Errorf("a user's new push URL: %d", code)
	}
	if code, b := e.api("POST", path+"/push-token", e.user, nil, nil); code != http.StatusForbidden {
		t.Errorf("a user's new push URL through the API: %d %s", code, b)
	}

	// A new push URL from the page: shown once with a command, not cached;
	// the old one stops working.
	req, _ = http.NewRequest("POST", detail+"/push-token", nil)
	resp, err := admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page = string(body)
	found := regexp.MustCompile(`id="push-url" readonly value="` + regexp.QuoteMeta(e.base) + `/push/([A-Za-z0-9_-]{43})"`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || found == nil || found[1] == token ||
		!strings.Contains(page, `value="curl -fsS -m 10 --retry 3 `+e.base+"/push/"+found[1]+`"`) {
		t.Fatalf("new push URL page: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), page)
	}
	newToken := found[1]
	tokens = append(tokens, newToken)
	tick(time.Second)
	if r := pushTo(t, "GET", created.PushURL, ""); r.status != http.StatusNotFound {
		t.Errorf("a push with the replaced token: %d", r.status)
	}
	if r := pushTo(t, "GET", e.base+"/push/"+newToken, ""); r.status != http.StatusOK {
		t.Errorf("a push with the new token: %d %q", r.status, r.body)
	}
	if _, _, page := send(t, admin, "GET", detail, nil); strings.Contains(page, newToken) {
		t.Error("the monitor page shows the token again")
	}
	// And from the API.
	var rotated monitorJSON
	if code, b := e.api("POST", path+"/push-token", e.admin, nil, &rotated); code != http.StatusOK || rotated.PushToken == "" || rotated.PushToken == newToken ||
		rotated.PushURL != e.base+"/push/"+rotated.PushToken {
		t.Fatalf("new push URL through the API: %d %s", code, b)
	}
	tokens = append(tokens, rotated.PushToken)
	tick(time.Second)
	if r := pushTo(t, "GET", e.base+"/push/"+newToken, ""); r.status != http.StatusNotFound {
		t.Errorf("a push with the token the API replaced: %d", r.status)
	}

	// Created from the form: the page answering the form shows the URL.
	code, _, page = send(t, admin, "POST", e.base+"/monitors", url.Values{"name": {"cron"}, "kind": {"push"}, "target": {"ignored.example:1"}, "timeout_ms": {"10000"},
		"interval_s": {"300"}, "retries": {"0"}, "enabled": {"1"}})
	found = regexp.MustCompile(`id="push-url" readonly value="[^"]*/push/([A-Za-z0-9_-]{43})"`).FindStringSubmatch(page)
	if code != http.StatusOK || found == nil || !strings.Contains(page, "data-monitor-push-url") {
		t.Fatalf("a push monitor made with the form: %d", code)
	}
	tokens = append(tokens, found[1])
	var list struct{ Monitors []monitorJSON }
	e.api("GET", "/api/v1/monitors", e.admin, nil, &list)
	var cron monitorJSON
	for _, m := range list.Monitors {
		if m.Name == "cron" {
			cron = m
		}
	}
	if cron.Target != "" || cron.IntervalS != 300 || cron.Kind != "push" {
		t.Errorf("the form's push monitor: %+v", cron)
	}
	// Turned off, its URL answers as an unknown one does.
	if code, b := e.api("PUT", fmt.Sprintf("/api/v1/monitors/%d", cron.ID), e.admin, map[string]any{"name": "cron", "kind": "push", "interval_s": 300, "enabled": false}, nil); code != http.StatusOK {
		t.Fatalf("turn off: %d %s", code, b)
	}
	if r := pushTo(t, "GET", e.base+"/push/"+found[1], ""); r.status != http.StatusNotFound || r.body != "not found\n" {
		t.Errorf("a push to a monitor that is off: %d %q", r.status, r.body)
	}
	// A new push URL for a monitor of another kind is refused.
	var tcp monitorJSON
	e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "db", "kind": "tcp", "target": "127.0.0.1:1", "enabled": false}, &tcp)
	if code, b := e.api("POST", fmt.Sprintf("/api/v1/monitors/%d/push-token", tcp.ID), e.admin, nil, &fail); code != http.StatusConflict || fail.Error.Code != "not_push" {
		t.Errorf("a push URL for a tcp monitor: %d %s", code, b)
	}

	// No token is in the audit log or the log, though each change is there.
	events := e.c.db.Client.AuditEvent.Query().AllX(ctx)
	actions := map[string]int{}
	for _, ev := range events {
		actions[ev.Action]++
		for _, tok := range tokens {
			if strings.Contains(ev.Detail, tok) || strings.Contains(ev.Target, tok) {
				t.Errorf("audit %s holds a token: %s", ev.Action, ev.Detail)
			}
		}
	}
	if actions["monitor.push_token"] != 2 || actions["monitor.create"] != 3 {
		t.Errorf("audit actions %v", actions)
	}
	logs := e.logs.String()
	for _, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Errorf("the log holds a token")
		}
	}
}

// The push URL is the only way past the guard that push monitors add: its
// two routes, without a session; nothing beside or beneath them answers an
// anonymous caller, and a push token is no API token.
func TestPushIsTheOnlyExemption(t *testing.T) {
	e := newEditEnv(t)
	var created monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "job", "kind": "push"}, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var push []string
	for _, rt := range e.c.webRoutes() {
		if rt.Policy == web.PolicyPublic && strings.Contains(rt.Pattern, "push") {
			push = append(push, rt.Method+" "+rt.Pattern)
			if !rt.NoSession {
				t.Errorf("%s %s loads a session", rt.Method, rt.Pattern)
			}
		}
		if strings.Contains(rt.Pattern, "push-token") && rt.Policy != web.PolicyAdmin {
			t.Errorf("%s %s: policy %s, want admin", rt.Method, rt.Pattern, rt.Policy)
		}
	}
	if strings.Join(push, ",") != "GET /push/{token},POST /push/{token}" {
		t.Errorf("public push routes %q", push)
	}
	anon := e.browser(nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/push", http.StatusNotFound},
		{"GET", "/push/", http.StatusNotFound},
		{"GET", "/push/" + created.PushToken + "/monitors", http.StatusNotFound},
		{"PUT", "/push/" + created.PushToken, http.StatusMethodNotAllowed},
		{"DELETE", "/push/" + created.PushToken, http.StatusMethodNotAllowed},
		{"GET", fmt.Sprintf("/monitors/%d", created.ID), http.StatusSeeOther},
		{"POST", fmt.Sprintf("/monitors/%d/push-token", created.ID), http.StatusSeeOther},
		{"POST", fmt.Sprintf("/api/v1/monitors/%d/push-token", created.ID), http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(tc.method, e.base+tc.path, nil)
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("anonymous %s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	// The push token opens nothing else.
	if code, _ := e.api("GET", "/api/v1/monitors", created.PushToken, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a push token as an API token: %d", code)
	}
}

// A client that keeps pushing to URLs that do not exist is turned away for
// the rest of the minute, before any database lookup; the next minute it
// may push again.
func TestPushGuessingIsTurnedAway(t *testing.T) {
	e := newEditEnv(t)
	clock := time.Now().UTC().Truncate(time.Minute)
	e.c.monitorsClock.set(clock)
	var created monitorJSON
	if code, b := e.api("POST", "/api/v1/monitors", e.admin, map[string]any{"name": "backup", "kind": "push", "interval_s": 60}, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	guess := e.base + "/push/" + strings.Repeat("B", 43)
	for i := range pushMissBurst {
		if r := pushTo(t, "GET", guess, ""); r.status != http.StatusNotFound {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	if r := pushTo(t, "GET", guess, ""); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "60" {
		t.Errorf("a guess past the limit: %d", r.status)
	}
	if r := pushTo(t, "GET", created.PushURL, ""); r.status != http.StatusTooManyRequests {
		t.Errorf("a real push from the guessing address within the minute: %d", r.status)
	}
	e.c.monitorsClock.set(clock.Add(time.Minute))
	if r := pushTo(t, "GET", created.PushURL, ""); r.status != http.StatusOK {
		t.Errorf("a real push the next minute: %d %q", r.status, r.body)
	}
}

func TestPushMissesShareOneCountBeyondTheirBound(t *testing.T) {
	var p pushMisses
	now := time.Now()
	for i := range pushMissAddrs {
		p.miss(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	for range pushMissBurst {
		p.miss("192.0.2.1", now) // one address too many: counted under the shared key
	}
	if !p.blocked("192.0.2.99", now) || p.blocked("10.0.0.1", now) || len(p.count) != pushMissAddrs+1 {
		t.Errorf("addresses beyond the bound: blocked %v, first address blocked %v, %d counts", p.blocked("192.0.2.99", now), p.blocked("10.0.0.1", now), len(p.count))
	}
	if p.blocked("192.0.2.99", now.Add(time.Minute)) {
		t.Error("the next minute starts afresh")
	}
}
