package nginxconf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"github.com/gatehousehq/gatehouse/internal/nginxstatus"
)

const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// NormalizeDomainName converts a domain name given in Unicode or ASCII into the lowercase
// punycode form nginx and DNS use. A leading "*." (wildcard) is kept. The result has at least
// two labels, each 1..63 letters, digits or inner hyphens, and is at most 253 bytes long.
func NormalizeDomainName(name string) (string, error) {
	wildcard := false
	rest := name
	if strings.HasPrefix(rest, "*.") {
		wildcard = true
		rest = rest[2:]
	}
	ascii, err := toASCIIHost(rest)
	if err != nil {
		return "", err
	}
	if !strings.Contains(ascii, ".") {
		return "", errors.New("must be a fully qualified name such as example.com")
	}
	if ascii == nginxstatus.Host {
		return "", errors.New("is reserved for the status block Gatehouse renders on every node")
	}
	if wildcard {
		ascii = "*." + ascii
	}
	if len(ascii) > maxHostLen {
		return "", fmt.Errorf("must be at most %d bytes long in punycode form", maxHostLen)
	}
	return ascii, nil
}

// normalizeHostname accepts a host name of one or more labels (such as "backend" or
// "app.internal") and returns its lowercase punycode form.
func normalizeHostname(name string) (string, error) {
	if strings.HasPrefix(name, "*") {
		return "", errors.New("must not be a wildcard")
	}
	return toASCIIHost(name)
}

func toASCIIHost(name string) (string, error) {
	if name == "" {
		return "", errors.New("must not be empty")
	}
	if strings.Contains(name, "://") {
		return "", errors.New("must be a bare host name without a scheme such as https://")
	}
	if len(name) > 4*maxHostLen {
		return "", fmt.Errorf("must be at most %d bytes long", maxHostLen)
	}
	ascii := name
	if !isASCII(name) {
		var err error
		ascii, err = idna.Lookup.ToASCII(name)
		if err != nil {
			return "", errors.New("is not a valid internationalized domain name")
		}
	}
	ascii = strings.ToLower(strings.TrimSuffix(ascii, "."))
	if len(ascii) > maxHostLen {
		return "", fmt.Errorf("must be at most %d bytes long in punycode form", maxHostLen)
	}
	for label := range strings.SplitSeq(ascii, ".") {
		if err := checkLabel(label); err != nil {
			return "", err
		}
	}
	return ascii, nil
}

func checkLabel(label string) error {
	if label == "" {
		return errors.New("must not contain empty labels (\"..\" or a leading dot)")
	}
	if len(label) > maxLabelLen {
		return fmt.Errorf("labels must be at most %d bytes long", maxLabelLen)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-':
			if i == 0 || i == len(label)-1 {
				return errors.New("labels must not start or end with a hyphen")
			}
		default:
			return errors.New("must contain only letters, digits, hyphens and dots")
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// normalizeAddrOrCIDR accepts an IP address or a CIDR prefix and returns its canonical text.
func normalizeAddrOrCIDR(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return "", errors.New("must be an IP address or CIDR such as 192.0.2.0/24 or 2001:db8::/32")
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", errors.New("must be an IP address or CIDR such as 192.0.2.0/24 or 2001:db8::/32")
	}
	return a.String(), nil
}

// RequestName is the host name to ask a domain's server block for, as Host
// and SNI: the name itself, or for a wildcard a name it covers.
func RequestName(domain string) string {
	if rest, ok := strings.CutPrefix(domain, "*."); ok {
		return "gatehouse-check." + rest
	}
	return domain
}
