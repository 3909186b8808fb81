package dnscheck

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

var (
	nodeV4 = netip.MustParseAddr("192.0.2.10")
	nodeV6 = netip.MustParseAddr("2001:db8::10")
	other  = netip.MustParseAddr("203.0.113.9")
)

func TestCheck(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "example.test")
	srv.SetAddrs("here.example.test", nodeV4, nodeV6)
	srv.SetAddrs("elsewhere.example.test", other)
	srv.SetAddrs("partly.example.test", nodeV4, other)
	srv.Add(t,
		"alias.example.test. 60 IN CNAME here.example.test.",
		"txtonly.example.test. 60 IN TXT \"hello\"",
		"*.apps.example.test. 60 IN A 192.0.2.10",
	)
	c := Checker{Resolvers: []string{srv.Addr()}, Timeout: 2 * time.Second}
	expected := []netip.Addr{nodeV4, nodeV6}

	tests := []struct {
		name      string
		status    Status
		addrs     []netip.Addr
		elsewhere []netip.Addr
		message   string
	}{
		{"here.example.test", StatusPointsHere, []netip.Addr{nodeV4, nodeV6}, nil, "here.example.test points here (192.0.2.10, 2001:db8::10)"},
		{"alias.example.test", StatusPointsHere, []netip.Addr{nodeV4, nodeV6}, nil, "alias.example.test points here"},
		{"x.apps.example.test", StatusPointsHere, []netip.Addr{nodeV4}, nil, "points here"},
		{"elsewhere.example.test", StatusPointsElsewhere, []netip.Addr{other}, []netip.Addr{other}, "elsewhere.example.test points elsewhere: 203.0.113.9 (expected 192.0.2.10, 2001:db8::10)"},
		{"partly.example.test", StatusPointsElsewhere, []netip.Addr{nodeV4, other}, []netip.Addr{other}, "points elsewhere: 203.0.113.9"},
		{"missing.example.test", StatusNotResolving, nil, nil, "does not exist (NXDOMAIN)"},
		{"txtonly.example.test", StatusNotResolving, nil, nil, "has no A or AAAA record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := c.Check(context.Background(), tc.name, expected)
			if got.Status != tc.status {
				t.Fatalf("status = %v (%s), want %v", got.Status, got.Message, tc.status)
			}
			if !slices.Equal(got.Addrs, tc.addrs) {
				t.Errorf("addrs = %v, want %v", got.Addrs, tc.addrs)
			}
			if !slices.Equal(got.Elsewhere, tc.elsewhere) {
				t.Errorf("elsewhere = %v, want %v", got.Elsewhere, tc.elsewhere)
			}
			if !strings.Contains(got.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", got.Message, tc.message)
			}
		})
	}
}

func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	c := Checker{Resolvers: []string{dnstest.Blackhole(t)}, Timeout: 200 * time.Millisecond}
	got := c.Check(context.Background(), "here.example.test", []netip.Addr{nodeV4})
	if got.Status != StatusError || got.Err == nil {
		t.Fatalf("status = %v, err = %v; want a resolver error", got.Status, got.Err)
	}
	if !strings.Contains(got.Message, "timed out") || !strings.Contains(got.Message, "could not look up here.example.test") {
		t.Fatalf("message = %q", got.Message)
	}
}

func TestCheckFallsBackToNextResolver(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "example.test")
	srv.SetAddrs("here.example.test", nodeV4)
	c := Checker{Resolvers: []string{dnstest.Blackhole(t), srv.Addr()}, Timeout: 200 * time.Millisecond}
	if got := c.Check(context.Background(), "here.example.test", []netip.Addr{nodeV4}); got.Status != StatusPointsHere {
		t.Fatalf("status = %v (%s), want points here", got.Status, got.Message)
	}
}

func TestDelegation(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "example.test", "sub.example.test")
	srv.Add(t,
		"sub.example.test. 60 IN NS ns-b.dns.test.",
		"sub.example.test. 60 IN NS NS-A.dns.test.",
	)
	c := Checker{Resolvers: []string{srv.Addr()}, Timeout: 2 * time.Second}

	d, err := c.Delegation(context.Background(), "*.www.sub.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Zone != "sub.example.test" {
		t.Fatalf("zone = %q", d.Zone)
	}
	if !slices.Equal(d.Nameservers, []string{"ns-a.dns.test", "ns-b.dns.test"}) {
		t.Fatalf("nameservers = %v", d.Nameservers)
	}
	if !d.DelegatedTo("NS-B.dns.test.") || d.DelegatedTo("ns1.example.test") {
		t.Fatalf("DelegatedTo disagrees with %v", d.Nameservers)
	}

	d, err = c.Delegation(context.Background(), "www.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Zone != "example.test" || !slices.Equal(d.Nameservers, []string{"ns1.example.test"}) {
		t.Fatalf("delegation = %+v", d)
	}
}

func TestCAAAllows(t *testing.T) {
	t.Parallel()
	const ca = "pebble.letsencrypt.org"
	srv := dnstest.New(t, "example.test")
	srv.Add(t,
		// Parent policy: only our CA; wildcards nobody.
		"example.test. 60 IN CAA 0 issue \"pebble.letsencrypt.org; validationmethods=dns-01\"",
		"example.test. 60 IN CAA 0 issuewild \";\"",
		// A child with its own policy naming another CA.
		"other.example.test. 60 IN CAA 0 issue \"ca.other.test\"",
		"other.example.test. 60 IN CAA 0 iodef \"mailto:sec@example.test\"",
		// Only iodef: no restriction.
		"report.example.test. 60 IN CAA 0 iodef \"mailto:sec@example.test\"",
		// Unknown critical property: nobody may issue.
		"critical.example.test. 60 IN CAA 128 futuretag \"x\"",
		// Wildcards allowed here through issuewild while issue forbids.
		"wild.example.test. 60 IN CAA 0 issue \";\"",
		"wild.example.test. 60 IN CAA 0 issuewild \"Pebble.LetsEncrypt.org\"",
		"aliased.example.test. 60 IN CNAME other.example.test.",
	)
	c := Checker{Resolvers: []string{srv.Addr()}, Timeout: 2 * time.Second}

	tests := []struct {
		name     string
		allowed  bool
		foundAt  string
		contains string
	}{
		{"example.test", true, "example.test", "permit"},
		{"deep.www.example.test", true, "example.test", "permit"},
		{"*.example.test", false, "example.test", `0 issuewild "pebble.letsencrypt.org"`},
		{"other.example.test", false, "other.example.test", "forbid pebble.letsencrypt.org to issue"},
		{"aliased.example.test", false, "aliased.example.test", "forbid"},
		{"report.example.test", true, "report.example.test", "permit"},
		{"critical.example.test", false, "critical.example.test", "forbid"},
		{"wild.example.test", false, "wild.example.test", `0 issue "pebble.letsencrypt.org"`},
		{"*.wild.example.test", true, "wild.example.test", "permit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			allowed, records, err := c.CAAAllows(context.Background(), tc.name, ca)
			if err != nil {
				t.Fatal(err)
			}
			if allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (records %v)", allowed, tc.allowed, records)
			}
			if len(records) == 0 || records[0].Name != tc.foundAt {
				t.Fatalf("records = %v, want them found at %s", records, tc.foundAt)
			}
			if msg := DescribeCAA(tc.name, ca, allowed, records); !strings.Contains(msg, tc.contains) {
				t.Fatalf("message %q does not contain %q", msg, tc.contains)
			}
		})
	}
}

func TestCAANoRecords(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "example.test")
	c := Checker{Resolvers: []string{srv.Addr()}, Timeout: 2 * time.Second}
	allowed, records, err := c.CAAAllows(context.Background(), "*.nothing.example.test", "ca.test")
	if err != nil || !allowed || len(records) != 0 {
		t.Fatalf("allowed=%v records=%v err=%v; want allowed with no records", allowed, records, err)
	}
}

func TestCAALookupFailureIsAnError(t *testing.T) {
	t.Parallel()
	c := Checker{Resolvers: []string{dnstest.Blackhole(t)}, Timeout: 200 * time.Millisecond}
	allowed, _, err := c.CAAAllows(context.Background(), "example.test", "ca.test")
	if err == nil || allowed {
		t.Fatalf("allowed=%v err=%v; want a refusal with an error", allowed, err)
	}
}
