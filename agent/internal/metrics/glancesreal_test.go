package metrics

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/internal/testutil/glancestest"
)

func TestGlancesReal(t *testing.T) {
	t.Parallel()
	gs := glancestest.Start(t)
	g := NewGlances(gs.URL, nil, hclog.NewNullLogger())
	ctx := context.Background()

	s, err := g.Sample(ctx)
	if err != nil {
		t.Fatalf("Sample from real glances: %v", err)
	}
	if v := g.Version(); v != 3 && v != 4 {
		t.Errorf("Version() = %d", v)
	}
	if s.Source != "glances" || s.CPUPercent < 0 || s.CPUPercent > 100 || len(s.PerCPU) == 0 {
		t.Errorf("cpu: source %q total %v per-cpu %v", s.Source, s.CPUPercent, s.PerCPU)
	}
	if s.MemTotal == 0 || s.MemUsed == 0 || s.MemUsed > s.MemTotal || s.MemAvailable == 0 {
		t.Errorf("memory: total %d used %d available %d", s.MemTotal, s.MemUsed, s.MemAvailable)
	}
	if len(s.Filesystems) == 0 || len(s.Interfaces) == 0 || s.UptimeSeconds == 0 || s.Processes == 0 {
		t.Errorf("filesystems %v interfaces %v uptime %d processes %d", s.Filesystems, s.Interfaces, s.UptimeSeconds, s.Processes)
	}

	// Both sources read the same kernel: the totals must agree.
	ps, err := NewProc("/proc", "/sys", nil).Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.MemTotal != s.MemTotal || ps.SwapTotal != s.SwapTotal || len(ps.PerCPU) != len(s.PerCPU) {
		t.Errorf("glances and proc disagree: mem %d/%d swap %d/%d cpus %d/%d",
			s.MemTotal, ps.MemTotal, s.SwapTotal, ps.SwapTotal, len(s.PerCPU), len(ps.PerCPU))
	}
	rootSize := func(fs []Filesystem) uint64 {
		for _, f := range fs {
			if f.Mount == "/" {
				return f.Size
			}
		}
		return 0
	}
	if r := rootSize(s.Filesystems); r == 0 || r != rootSize(ps.Filesystems) {
		t.Errorf("root filesystem size: glances %d, proc %d", r, rootSize(ps.Filesystems))
	}

	raw, err := g.Plugin(ctx, "processlist")
	if err != nil {
		t.Fatalf("Plugin(processlist): %v", err)
	}
	var procs []map[string]any
	if err := json.Unmarshal(raw, &procs); err != nil || len(procs) == 0 || procs[0]["pid"] == nil {
		t.Errorf("processlist: %d processes, err %v", len(procs), err)
	}
	if _, err := g.Plugin(ctx, "../etc"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf(`Plugin("../etc") err = %v, want refusal`, err)
	}
}

func TestFallbackWithRealGlances(t *testing.T) {
	t.Parallel()
	gs := glancestest.Start(t)
	glances := NewGlances(gs.URL, nil, hclog.NewNullLogger())
	f := NewFallback(glances, NewProc("/proc", "/sys", nil), hclog.NewNullLogger())
	ctx := context.Background()

	sample := func() Sample {
		t.Helper()
		s, err := f.Sample(ctx)
		if err != nil {
			t.Fatalf("Sample: %v", err)
		}
		if s.MemTotal == 0 || s.Time.IsZero() {
			t.Fatalf("empty sample from %s: %+v", s.Source, s)
		}
		return s
	}
	if s := sample(); s.Source != "glances" || f.Current() != "glances" {
		t.Fatalf("with glances up: source %q, current %q", s.Source, f.Current())
	}

	gs.Stop()
	for i := range 3 {
		if s := sample(); s.Source != "proc" || f.Current() != "proc" {
			t.Fatalf("sample %d with glances stopped: source %q, current %q", i, s.Source, f.Current())
		}
	}

	gs.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := sample()
		if s.Source == "glances" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still on %q after glances came back", s.Source)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f.Current() != "glances" {
		t.Errorf("Current() = %q after recovery", f.Current())
	}
}
