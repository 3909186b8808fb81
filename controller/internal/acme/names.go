package acme

import (
	"errors"
	"fmt"
	"strings"
)

// normalizeNames lowercases, checks and de-duplicates certificate names.
// A name is a DNS host name of at least two labels, optionally starting
// with "*." for a wildcard; IP addresses and bare labels are refused.
func normalizeNames(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("a certificate needs at least one name")
	}
	if len(names) > 100 {
		return nil, fmt.Errorf("%d names: a certificate can hold at most 100", len(names))
	}
	seen := map[string]bool{}
	var out []string
	for _, raw := range names {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
		host := strings.TrimPrefix(n, "*.")
		if !validHostname(host) || !strings.Contains(host, ".") || numericTLD(host) {
			return nil, fmt.Errorf("name %q: enter a domain such as www.example.com or *.example.com", raw)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// numericTLD reports whether the last label is all digits, as in an IPv4
// address; no top-level domain is.
func numericTLD(host string) bool {
	tld := host[strings.LastIndex(host, ".")+1:]
	return strings.Trim(tld, "0123456789") == ""
}
