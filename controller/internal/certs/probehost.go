package certs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gatehousehq/gatehouse/ent"
)

// ErrProbeRefused means the controller will not dial the address a server's
// agent reported for its nginx. Probes record it as the node's result.
var ErrProbeRefused = errors.New("not probed")

// ErrNoAddress means a server has no address to probe it at.
var ErrNoAddress = errors.New("the server has no address; enter one on its settings page")

// metadataAddrs are cloud instance metadata services outside the link-local
// range (AWS over IPv6).
var metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}

// ProbeHost is the address the controller dials to reach a server's nginx
// for health probes and the served-certificate watch, given the bind
// address its agent reports ("" when nginx listens on all addresses).
//
// Whatever an agent reports is untrusted: a compromised node must not aim
// the controller at the controller's own loopback, at link-local addresses
// such as a cloud metadata service, or at hosts by name. So:
//
//   - a reported bind address is used when it is the address an admin
//     entered for the server, or an IP address the controller may dial for
//     a node (not loopback, unspecified, link-local or multicast), or any
//     address of the controller's own host for its built-in agent;
//   - with nginx on all addresses, the address an admin entered is used,
//     loopback for the built-in agent, else the first address the agent
//     reports that may be dialled;
//   - anything else is refused (ErrProbeRefused) or unknown (ErrNoAddress).
func ProbeHost(srv *ent.Server, bind string) (string, error) {
	bind = strings.TrimSpace(bind)
	if bind != "" && !allAddresses(bind) {
		if srv.Address != "" && sameHost(bind, srv.Address) {
			return srv.Address, nil
		}
		ip, err := netip.ParseAddr(strings.Trim(bind, "[]"))
		if err != nil {
			return "", fmt.Errorf("%w: the agent of %s reports nginx on %q, which is not an IP address; the controller dials only names an admin entered", ErrProbeRefused, srv.Name, bind)
		}
		if srv.Local || Dialable(ip) {
			return ip.Unmap().String(), nil
		}
		return "", fmt.Errorf("%w: the agent of %s reports nginx only on %s, which the controller does not dial for a node (loopback, link-local or similar); if that really is the node's address, enter it as the server's address", ErrProbeRefused, srv.Name, ip)
	}
	if srv.Address != "" {
		return srv.Address, nil
	}
	if srv.Local {
		return "127.0.0.1", nil
	}
	for _, a := range srv.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil && Dialable(ip) {
			return ip.Unmap().String(), nil
		}
	}
	return "", fmt.Errorf("server %s: %w", srv.Name, ErrNoAddress)
}

// Dialable reports whether the controller may dial ip on a node's word:
// a unicast address off the controller's own host that is not link-local.
func Dialable(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.Zone() != "", ip.IsLoopback(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(),
		ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsMulticast():
		return false
	case ip.Is4() && ip.As4()[0] == 0: // 0.0.0.0/8 reaches this host on Linux
		return false
	case ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return false
		}
	}
	return true
}

// allAddresses reports whether a bind address means every address.
func allAddresses(bind string) bool {
	switch strings.Trim(bind, "[]") {
	case "*", "0.0.0.0", "::":
		return true
	}
	return false
}

// sameHost compares a reported bind address with an entered address: the
// same IP, or the same name.
func sameHost(bind, entered string) bool {
	b, errB := netip.ParseAddr(strings.Trim(bind, "[]"))
	e, errE := netip.ParseAddr(strings.Trim(entered, "[]"))
	if errB == nil && errE == nil {
		return b.Unmap() == e.Unmap()
	}
	return strings.EqualFold(strings.TrimSuffix(bind, "."), strings.TrimSuffix(entered, "."))
}
