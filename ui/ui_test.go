package ui

import (
	"strings"
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	var nilTime *time.Time
	future := now.Add(3 * 24 * time.Hour)
	tests := []struct {
		in   any
		want string
	}{
		{nilTime, "never"},
		{time.Time{}, "never"},
		{now.Add(-10 * time.Second), "just now"},
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-89 * time.Minute), "89 minutes ago"},
		{now.Add(-5 * time.Hour), "5 hours ago"},
		{now.Add(-72 * time.Hour), "3 days ago"},
		{&future, "in 3 days"},
	}
	for _, tc := range tests {
		if got := ago(now, tc.in); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEveryPageRenders(t *testing.T) {
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"login", "dashboard", "users", "tokens", "audit", "forbidden", "error"} {
		if !r.Has(p) {
			t.Fatalf("no %s page", p)
		}
	}
	var b strings.Builder
	err = r.Render(&b, "forbidden", Page{Title: "Forbidden", Viewer: &Viewer{Username: "x<y"}, Nav: []NavItem{{Label: "Dashboard", Path: "/", Current: true}}, Active: "/"})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"<title>Forbidden · Gatehouse</title>", "x&lt;y", `href="/" aria-current="page"`, "/static/app.css?v=" + r.Asset()} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// CSP forbids inline script and style; the templates must not rely on them.
	for _, bad := range []string{"<script>", "style=", "onclick="} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q, which the CSP blocks", bad)
		}
	}
	if err := r.Render(&b, "missing", Page{}); err == nil {
		t.Fatal("rendering a missing page succeeded")
	}
}
