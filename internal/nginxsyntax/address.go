package nginxsyntax

import (
	"net/netip"
	"strings"
)

// ValidServerAddress reports whether addr is host:port as an upstream
// server address may be dialled: host an IPv4 address, a bracketed IPv6
// address without zone, or a DNS name made of letters, digits, '-' and '.'
// (labels of 1 to 63 bytes neither starting nor ending with '-', at most
// 253 bytes, its last label not all digits); port a decimal number from 1
// to 65535.
func ValidServerAddress(addr string) bool {
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 {
		return false
	}
	host, port := addr[:i], addr[i+1:]
	if !validPort(port) {
		return false
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return false
		}
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && ip.Is6() && ip.Zone() == ""
	}
	if strings.ContainsAny(host, ":[]") {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Is4()
	}
	return validDNSName(host)
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

func validDNSName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// A name whose last label is all digits is a malformed IPv4 address
	// ("10.1", "300.1.1.1"), never a host name.
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}
