package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// TestServerPageShowsNginxActivity: a server whose newest sample carries
// nginx's counters shows them and their charts; one without shows neither.
func TestServerPageShowsNginxActivity(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	withNginx := e.c.db.Client.Server.Create().SetName("edge-1").SaveX(ctx)
	without := e.c.db.Client.Server.Create().SetName("db-1").SaveX(ctx)
	now := time.Now()
	for id, nginx := range map[int]*agentv1.NginxStatus{
		withNginx.ID: {Active: 9, Reading: 1, Writing: 2, Waiting: 6, Requests: 1000, RequestsPerSecond: 12.5},
		without.ID:   nil,
	} {
		s := &agentv1.MetricSample{Time: timestamppb.New(now), Source: "proc", CpuPercent: 5, MemTotal: 100, MemUsed: 10, Nginx: nginx}
		if err := e.c.writer.Ingest(ctx, strconv.Itoa(id), []*agentv1.MetricSample{s}); err != nil {
			t.Fatal(err)
		}
	}
	cl := e.browser(e.userLogin)
	// Ingest returns once the samples are stored.
	_, _, page := send(t, cl, "GET", fmt.Sprintf("%s/servers/%d", e.base, withNginx.ID), nil)
	if !strings.Contains(page, "12.5 requests/s · 9 connections (1 reading, 2 writing, 6 idle)") || strings.Count(page, "data-nginx-chart") != 2 {
		t.Errorf("server with nginx figures: facts or charts missing:\n%s", page)
	}
	code, _, page := send(t, cl, "GET", fmt.Sprintf("%s/servers/%d", e.base, without.ID), nil)
	if code != 200 || strings.Contains(page, "data-nginx-now") || strings.Contains(page, "data-nginx-chart") {
		t.Errorf("server without nginx figures: %d, shows them anyway", code)
	}
	// The dashboard's tiles: the figures on the server that has them, a
	// hidden row on the one that does not (shown once live figures come).
	code, _, page = send(t, cl, "GET", e.base+"/", nil)
	if code != 200 || !strings.Contains(page, `<dd data-field="nginx">12.5 req/s · 9 conn</dd>`) || strings.Count(page, `<div hidden><dt>nginx</dt>`) != 1 {
		t.Errorf("dashboard tiles: %d, nginx figures or the hidden row missing", code)
	}
}
