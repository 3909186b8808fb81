package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/internal/nginxsyntax"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// The controller takes from an agent's probe only what the agent may dial.
func TestProbeAddressesAllowed(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"10.0.0.1:8080": true, "[2001:db8::1]:443": true, "backend.internal:80": true, "localhost:1": true,
		"": false, "10.0.0.1": false, "10.0.0.1:0": false, "10.0.0.1:65536": false, "10.0.0.1:080": false,
		"a b:80": false, "host;rm:80": false, "<script>:80": false, ":80": false, "host:80\n": false,
		strings.Repeat("a", 300) + ":80": false,
	} {
		if got := nginxsyntax.ValidServerAddress(addr); got != want {
			t.Errorf("ValidServerAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}

// An agent's probe result is taken with care: addresses that are not plain
// host:port are dropped, errors are made printable and short, a failure
// wins over a success for the same address, and old probes are not shown.
func TestUpstreamProbesRecordAndStates(t *testing.T) {
	t.Parallel()
	var p upstreamProbes
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	web1, web2 := &ent.Server{ID: 1, Name: "web-1"}, &ent.Server{ID: 2, Name: "web-2"}
	p.record(web2, now, &agentv1.UpstreamProbeResult{Revision: 3, Targets: []*agentv1.TargetProbe{
		{Upstream: "app", Address: "10.0.0.1:8080", Ok: true, LatencyMs: 3},
		{Upstream: "app", Address: "10.0.0.2:8080", Ok: false, Error: "connection refused\x1b[31m" + strings.Repeat("x", 500)},
		{Upstream: "gatehouse_stream_pg", Address: "10.0.0.2:8080", Ok: true, LatencyMs: 1},
		{Upstream: "evil", Address: "10.0.0.3:80\n<b>", Ok: true},
		{Upstream: "app", Address: "10.0.0.4:8080", Ok: false},
	}})
	p.record(web1, now.Add(-2*time.Minute), &agentv1.UpstreamProbeResult{Targets: []*agentv1.TargetProbe{
		{Upstream: "app", Address: "10.0.0.1:8080", Ok: false, Error: "timed out"},
	}})
	got := p.states([]string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:80\n<b>", "10.0.0.4:8080", "10.0.0.9:1"}, now)
	if s := got["10.0.0.1:8080"]; len(s) != 2 || s[0].Server != "web-1" || s[0].OK || s[1].Server != "web-2" || !s[1].OK || s[1].LatencyMS != 3 {
		t.Errorf("10.0.0.1:8080: %+v, want web-1 down then web-2 up", s)
	}
	if s := got["10.0.0.2:8080"]; len(s) != 1 || s[0].OK || !strings.HasPrefix(s[0].Error, "connection refused\uFFFD[31m") || len(s[0].Error) > 4*maxProbeErrorLen {
		t.Errorf("10.0.0.2:8080: %+v, want the failure kept, cleaned and short", s)
	}
	if s := got["10.0.0.4:8080"]; len(s) != 1 || s[0].Error != "unreachable" {
		t.Errorf("a failure without a reason: %+v", s)
	}
	if _, ok := got["10.0.0.3:80\n<b>"]; ok {
		t.Error("an address that is not host:port was kept")
	}
	if _, ok := got["10.0.0.9:1"]; ok {
		t.Error("an address nobody probed has states")
	}
	// Three minutes on, web-1's probe is too old to show; web-2's is not.
	later := p.states([]string{"10.0.0.1:8080"}, now.Add(upstreamProbeFresh-time.Second))
	if s := later["10.0.0.1:8080"]; len(s) != 1 || s[0].Server != "web-2" {
		t.Errorf("after a while: %+v, want only the fresh probe", s)
	}
	p.forget(2)
	if s := p.states([]string{"10.0.0.1:8080"}, now)["10.0.0.1:8080"]; len(s) != 1 || s[0].Server != "web-1" {
		t.Errorf("after forgetting web-2: %+v", s)
	}
}
