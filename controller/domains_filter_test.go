package controller

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The domain list's health filter reads the same summary the list shows,
// from the controller's health probes: up everywhere, down on any server,
// in maintenance, or never checked.
func TestDomainListHealthFilterUsesTheShownHealth(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	s1 := db.Server.Create().SetName("edge-1").SaveX(ctx)
	s2 := db.Server.Create().SetName("edge-2").SaveX(ctx)
	up := db.Domain.Create().SetName("up.example").AddServers(s1, s2).SaveX(ctx)
	partly := db.Domain.Create().SetName("partly.example").AddServers(s1, s2).SaveX(ctx)
	paused := db.Domain.Create().SetName("paused.example").SetMaintenance(true).AddServers(s1).SaveX(ctx)
	db.Domain.Create().SetName("new.example").AddServers(s2).ExecX(ctx)
	for _, d := range []int{up.ID, partly.ID, paused.ID} {
		db.HealthCheck.Create().SetDomainID(d).ExecX(ctx)
	}
	now := time.Now().UTC()
	for _, p := range []struct {
		domain, server int
		ok             bool
	}{
		{up.ID, s1.ID, true}, {up.ID, s2.ID, true},
		{partly.ID, s1.ID, true}, {partly.ID, s2.ID, false},
		{paused.ID, s1.ID, false},
	} {
		db.HealthProbe.Create().SetDomainID(p.domain).SetServerID(p.server).SetAt(now).SetOk(p.ok).ExecX(ctx)
	}
	names := func(q string) []string {
		t.Helper()
		var out struct {
			Domains []struct {
				Name string `json:"name"`
			} `json:"domains"`
		}
		if code, b := e.api("GET", "/api/v1/domains?"+q, e.user, nil, &out); code != http.StatusOK {
			t.Fatalf("?%s: %d %s", q, code, b)
		}
		var got []string
		for _, d := range out.Domains {
			got = append(got, d.Name)
		}
		return got
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"health=up", []string{"up.example"}},
		{"health=down", []string{"partly.example"}},
		{"health=maintenance", []string{"paused.example"}},
		{"health=unchecked", []string{"new.example"}},
		{"health=down&server=edge-1", []string{"partly.example"}},
		{"health=maintenance&server=edge-2", nil},
	} {
		if got := names(c.query); !slices.Equal(got, c.want) {
			t.Errorf("?%s: got %q, want %q", c.query, got, c.want)
		}
	}
	code, _, body := send(t, e.browser(e.userLogin), "GET", e.base+"/domains?health=down", nil)
	if code != http.StatusOK || !strings.Contains(body, "1 of 4 domains") || !strings.Contains(body, `data-domain="partly.example"`) ||
		!strings.Contains(body, "down on 1 of 2") || strings.Contains(body, `data-domain="up.example"`) {
		t.Errorf("health=down page: %d\n%s", code, body)
	}
}
