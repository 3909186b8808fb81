package certs

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/ent"
)

func TestProbeHost(t *testing.T) {
	node := func(address string, addrs ...string) *ent.Server {
		return &ent.Server{Name: "web1", Address: address, Addresses: addrs}
	}
	local := &ent.Server{Name: "here", Local: true}
	for _, tc := range []struct {
		name string
		srv  *ent.Server
		bind string
		want string
		err  error
	}{
		{"all addresses: the entered address", node("web1.example.com"), "", "web1.example.com", nil},
		{"wildcard bind is all addresses", node("192.0.2.10"), "0.0.0.0", "192.0.2.10", nil},
		{"v6 wildcard", node("192.0.2.10"), "::", "192.0.2.10", nil},
		{"reported public bind", node("192.0.2.10"), "198.51.100.7", "198.51.100.7", nil},
		{"reported private bind", node(""), "10.0.0.7", "10.0.0.7", nil},
		{"mapped v4 is unmapped", node(""), "::ffff:10.0.0.7", "10.0.0.7", nil},
		{"bind equal to the entered address", node("127.0.0.1"), "127.0.0.1", "127.0.0.1", nil},
		{"entered v6 in another spelling", node("::1"), "0:0:0:0:0:0:0:1", "::1", nil},
		{"loopback bind refused", node("192.0.2.10"), "127.0.0.1", "", ErrProbeRefused},
		{"other loopback refused", node(""), "127.8.9.1", "", ErrProbeRefused},
		{"v6 loopback refused", node(""), "::1", "", ErrProbeRefused},
		{"mapped loopback refused", node(""), "::ffff:127.0.0.1", "", ErrProbeRefused},
		{"this-network refused", node(""), "0.1.2.3", "", ErrProbeRefused},
		{"metadata refused", node(""), "169.254.169.254", "", ErrProbeRefused},
		{"v6 metadata refused", node(""), "fd00:ec2::254", "", ErrProbeRefused},
		{"link-local v6 refused", node(""), "fe80::1", "", ErrProbeRefused},
		{"multicast refused", node(""), "224.0.0.1", "", ErrProbeRefused},
		{"broadcast refused", node(""), "255.255.255.255", "", ErrProbeRefused},
		{"names from agents refused", node(""), "internal.example", "", ErrProbeRefused},
		{"built-in agent may use loopback", local, "127.0.0.1", "127.0.0.1", nil},
		{"built-in agent on all addresses", local, "", "127.0.0.1", nil},
		{"no entered address: first dialable reported", node("", "127.0.0.1", "fe80::1", "169.254.169.254", "10.1.2.3"), "", "10.1.2.3", nil},
		{"nothing dialable", node("", "127.0.0.1", "::1"), "", "", ErrNoAddress},
		{"nothing at all", node(""), "", "", ErrNoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProbeHost(tc.srv, tc.bind)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || got != "" {
					t.Fatalf("ProbeHost(%q) = %q, %v; want %v", tc.bind, got, err, tc.err)
				}
				if errors.Is(err, ErrProbeRefused) && !strings.Contains(err.Error(), tc.srv.Name) {
					t.Errorf("message does not name the server: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ProbeHost(%q) = %q, %v; want %q", tc.bind, got, err, tc.want)
			}
		})
	}
}

func TestDialable(t *testing.T) {
	for addr, want := range map[string]bool{
		"192.0.2.1": true, "10.0.0.1": true, "2001:db8::1": true, "fd12::1": true,
		"127.0.0.1": false, "::1": false, "0.0.0.0": false, "::": false, "169.254.1.1": false,
		"fe80::1%eth0": false, "ff02::1": false, "::ffff:169.254.169.254": false,
	} {
		if got := Dialable(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Dialable(%s) = %v, want %v", addr, got, want)
		}
	}
}
