package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// CAARecord is one CAA property found for a name.
type CAARecord struct {
	// Name is the owner where the relevant record set was found, which may be
	// a parent of the name asked about.
	Name  string
	Flag  uint8
	Tag   string
	Value string
}

func (r CAARecord) String() string {
	return fmt.Sprintf("%s CAA %d %s %q", r.Name, r.Flag, r.Tag, r.Value)
}

// flagCritical is the Issuer Critical flag (RFC 8659 section 4.1).
const flagCritical = 128

// CAAAllows reports whether the CAA policy of name lets the CA identified by
// caIdentity (for example "letsencrypt.org") issue a certificate for it.
//
// It follows RFC 8659: the relevant record set is the first non-empty CAA
// set found at name or, climbing one label at a time, at its parents. A name
// starting with "*." is a wildcard request: "issuewild" properties govern it
// when present, "issue" otherwise. No relevant set, or a set without
// issue/issuewild properties, does not restrict issuance. An unknown property
// marked critical forbids it. A lookup that fails returns an error, because a
// CA must not issue when it cannot read the policy.
func (c Checker) CAAAllows(ctx context.Context, name, caIdentity string) (bool, []CAARecord, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	wildcard := strings.HasPrefix(name, "*.")
	target := strings.TrimPrefix(name, "*.")
	records, err := c.relevantCAA(ctx, target)
	if err != nil {
		return false, nil, err
	}
	return evaluateCAA(records, caIdentity, wildcard), records, nil
}

func (c Checker) relevantCAA(ctx context.Context, name string) ([]CAARecord, error) {
	labels := dns.SplitDomainName(name)
	for i := range labels {
		candidate := strings.Join(labels[i:], ".")
		resp, err := c.query(ctx, candidate, dns.TypeCAA)
		if errors.Is(err, errNXDomain) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up CAA records of %s: %w", candidate, err)
		}
		var out []CAARecord
		for _, rr := range resp.Answer {
			if caa, ok := rr.(*dns.CAA); ok {
				out = append(out, CAARecord{Name: candidate, Flag: caa.Flag, Tag: strings.ToLower(caa.Tag), Value: caa.Value})
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

func evaluateCAA(records []CAARecord, caIdentity string, wildcard bool) bool {
	var issue, issuewild []CAARecord
	for _, r := range records {
		switch r.Tag {
		case "issue":
			issue = append(issue, r)
		case "issuewild":
			issuewild = append(issuewild, r)
		case "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if r.Flag&flagCritical != 0 {
				return false
			}
		}
	}
	relevant := issue
	if wildcard && len(issuewild) > 0 {
		relevant = issuewild
	}
	if len(relevant) == 0 {
		return true
	}
	ca := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(caIdentity)), ".")
	for _, r := range relevant {
		domain, _, _ := strings.Cut(r.Value, ";")
		domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
		if domain != "" && domain == ca {
			return true
		}
	}
	return false
}

// DescribeCAA says in plain language what CAAAllows found.
func DescribeCAA(name, caIdentity string, allowed bool, records []CAARecord) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if len(records) == 0 {
		return fmt.Sprintf("%s has no CAA records, so any CA may issue for it", name)
	}
	list := make([]string, len(records))
	for i, r := range records {
		list[i] = r.String()
	}
	if allowed {
		return fmt.Sprintf("CAA records of %s permit %s to issue (%s)", name, caIdentity, strings.Join(list, "; "))
	}
	return fmt.Sprintf("CAA records of %s forbid %s to issue: %s; add a record such as `%s` at %s",
		name, caIdentity, strings.Join(list, "; "), caaHint(name, caIdentity), records[0].Name)
}

func caaHint(name, ca string) string {
	tag := "issue"
	if strings.HasPrefix(name, "*.") {
		tag = "issuewild"
	}
	return fmt.Sprintf("0 %s \"%s\"", tag, ca)
}
