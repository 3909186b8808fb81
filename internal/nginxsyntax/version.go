package nginxsyntax

import "strings"

// ValidVersion reports whether v names server software and its version the
// way `nginx -V` does, "name/1.2.3": a name of lower-case letters, digits and
// '-', and two to four numeric parts; at most 48 bytes in all.
func ValidVersion(v string) bool {
	if len(v) > 48 {
		return false
	}
	name, num, ok := strings.Cut(v, "/")
	if !ok || name == "" || len(name) > 32 || !(name[0] >= 'a' && name[0] <= 'z') {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	parts := strings.Split(num, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 4 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}
