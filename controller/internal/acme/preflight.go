package acme

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/dnscheck"
)

// Check names one preflight check.
type Check string

// Preflight checks.
const (
	CheckResolves Check = "resolves" // the name points at a node that serves it
	CheckHTTP     Check = "http"     // port 80 answers the challenge path
	CheckCAA      Check = "caa"      // CAA lets the CA issue
)

// Finding is the outcome of one preflight check for one name.
type Finding struct {
	Name    string
	Check   Check
	OK      bool
	Message string
}

// PreflightOptions say what to check before ordering.
type PreflightOptions struct {
	// ExpectedAddrs are the public addresses of the nodes serving the
	// names; empty skips the address check.
	ExpectedAddrs []netip.Addr
	// Probe checks that http://<name>/.well-known/acme-challenge/ reaches a
	// node that can answer challenges; nil skips it. The caller implements
	// it, typically by placing a probe token through the nodes and fetching it.
	Probe func(ctx context.Context, name string) error
	// CAIdentity is the CA's CAA identity (e.g. letsencrypt.org); empty
	// skips the CAA check.
	CAIdentity string
}

// Preflight checks names before an order is placed, so that a problem the
// admin can fix is reported in plain language instead of as a failed
// validation (which also counts against the CA's rate limits). Wildcard
// names skip the address and HTTP checks, which do not apply to them.
func (c *Client) Preflight(ctx context.Context, names []string, opts PreflightOptions) []Finding {
	var out []Finding
	for _, name := range names {
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		addrOK := true
		if len(opts.ExpectedAddrs) > 0 && !isWildcard(name) {
			f := resolvesFinding(c.checker.Check(ctx, name, opts.ExpectedAddrs))
			addrOK = f.OK
			out = append(out, f)
		}
		if opts.Probe != nil && !isWildcard(name) {
			f := Finding{Name: name, Check: CheckHTTP, OK: true,
				Message: fmt.Sprintf("http://%s/.well-known/acme-challenge/ answers from a node", name)}
			if !addrOK {
				f.OK = false
				f.Message = fmt.Sprintf("skipped the port 80 check of %s until it resolves to a node", name)
			} else if err := opts.Probe(ctx, name); err != nil {
				f.OK = false
				f.Message = fmt.Sprintf("http://%s/.well-known/acme-challenge/ does not reach a node serving it: %v; check that port 80 is open and forwarded to the node", name, err)
			}
			out = append(out, f)
		}
		if opts.CAIdentity != "" {
			out = append(out, c.caaFinding(ctx, name, opts.CAIdentity))
		}
	}
	return out
}

func resolvesFinding(r dnscheck.Result) Finding {
	f := Finding{Name: r.Name, Check: CheckResolves, OK: r.Status == dnscheck.StatusPointsHere, Message: r.Message}
	if r.Status == dnscheck.StatusPointsElsewhere {
		f.Message = fmt.Sprintf("%s resolves to %s, not to a node that serves it", r.Name, joinAddrs(r.Elsewhere))
	}
	return f
}

func (c *Client) caaFinding(ctx context.Context, name, ca string) Finding {
	allowed, records, err := c.checker.CAAAllows(ctx, name, ca)
	if err != nil {
		return Finding{Name: name, Check: CheckCAA, Message: fmt.Sprintf("could not read the CAA records of %s, and a CA will not issue without them: %v", name, err)}
	}
	return Finding{Name: name, Check: CheckCAA, OK: allowed, Message: dnscheck.DescribeCAA(name, ca, allowed, records)}
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// PreflightError lists the preflight checks that failed.
type PreflightError struct {
	Failed []Finding
}

func (e *PreflightError) Error() string {
	msgs := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		msgs[i] = f.Message
	}
	return "not ordering a certificate: " + strings.Join(msgs, "; ")
}

// Blocking returns a *PreflightError when any finding failed, else nil.
func Blocking(findings []Finding) error {
	var failed []Finding
	for _, f := range findings {
		if !f.OK {
			failed = append(failed, f)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &PreflightError{Failed: failed}
}

// IsPreflight reports whether err is a preflight refusal.
func IsPreflight(err error) bool {
	var pe *PreflightError
	return errors.As(err, &pe)
}
