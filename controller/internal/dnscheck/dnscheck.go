// Package dnscheck answers the questions an operator asks about a domain
// before and after pointing it at Gatehouse: does it resolve to one of our
// nodes, which nameservers is it delegated to, and does its CAA policy let
// our certificate authority issue for it.
//
// Results are plain Go values with a message a person can read; the caller
// stores them.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultResolvers are asked when a Checker names none.
var DefaultResolvers = []string{"8.8.8.8:53", "1.1.1.1:53"}

// DefaultTimeout bounds one exchange with one resolver.
const DefaultTimeout = 5 * time.Second

// Checker asks recursive resolvers about names. The zero value uses
// DefaultResolvers and DefaultTimeout.
type Checker struct {
	// Resolvers are host:port addresses of recursive resolvers, tried in order.
	Resolvers []string
	// Timeout bounds each exchange with a resolver.
	Timeout time.Duration
}

// Status classifies where a name points.
type Status int

const (
	// StatusError means no resolver gave an answer (timeout or failure).
	StatusError Status = iota
	// StatusPointsHere means every address of the name is one we expected.
	StatusPointsHere
	// StatusPointsElsewhere means the name has addresses we did not expect.
	StatusPointsElsewhere
	// StatusNotResolving means the name does not exist or has no A/AAAA records.
	StatusNotResolving
)

func (s Status) String() string {
	switch s {
	case StatusPointsHere:
		return "points here"
	case StatusPointsElsewhere:
		return "points elsewhere"
	case StatusNotResolving:
		return "does not resolve"
	default:
		return "timeout / resolver error"
	}
}

// Result is the outcome of Check.
type Result struct {
	Name   string
	Status Status
	// Addrs are every A and AAAA address the name resolves to, sorted.
	Addrs []netip.Addr
	// Elsewhere are the resolved addresses that are not among the expected ones.
	Elsewhere []netip.Addr
	// Message says in plain language what was found.
	Message string
	// Err is the resolver failure when Status is StatusError.
	Err error
}

func (c Checker) resolvers() []string {
	if len(c.Resolvers) == 0 {
		return DefaultResolvers
	}
	return c.Resolvers
}

func (c Checker) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// errNXDomain marks an authoritative "no such domain" answer.
var errNXDomain = errors.New("no such domain")

// query asks the resolvers in turn and returns the first usable answer:
// NOERROR, or NXDOMAIN as errNXDomain. Timeouts and other rcodes move on to
// the next resolver; if none answers, the errors of all are joined.
func (c Checker) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var errs []error
	for _, r := range c.resolvers() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, m, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			return resp, nil
		case dns.RcodeNameError:
			return resp, errNXDomain
		default:
			errs = append(errs, fmt.Errorf("%s answered %s", r, dns.RcodeToString[resp.Rcode]))
		}
	}
	return nil, errors.Join(errs...)
}

func (c Checker) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	udp := &dns.Client{Net: "udp", Timeout: c.timeout()}
	resp, _, err := udp.ExchangeContext(ctx, m, server)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, errors.New("timed out")
		}
		return nil, err
	}
	if resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: c.timeout()}
		resp, _, err = tcp.ExchangeContext(ctx, m, server)
		if err != nil {
			return nil, fmt.Errorf("retry over tcp: %w", err)
		}
	}
	return resp, nil
}

// Check resolves name's A and AAAA records and compares them with expected,
// the addresses of the nodes that serve it.
func (c Checker) Check(ctx context.Context, name string, expected []netip.Addr) Result {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	res := Result{Name: name}
	nx := 0
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := c.query(ctx, name, qtype)
		if errors.Is(err, errNXDomain) {
			nx++
			continue
		}
		if err != nil {
			res.Status = StatusError
			res.Err = err
			res.Message = fmt.Sprintf("could not look up %s (%s record): %v; check that the DNS resolvers are reachable and try again", name, dns.TypeToString[qtype], err)
			return res
		}
		for _, rr := range resp.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
					res.Addrs = append(res.Addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
					res.Addrs = append(res.Addrs, a)
				}
			}
		}
	}
	slices.SortFunc(res.Addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	res.Addrs = slices.Compact(res.Addrs)

	if len(res.Addrs) == 0 {
		res.Status = StatusNotResolving
		if nx > 0 {
			res.Message = fmt.Sprintf("%s does not resolve: the name does not exist (NXDOMAIN); create an A or AAAA record pointing to your node", name)
		} else {
			res.Message = fmt.Sprintf("%s does not resolve: the name exists but has no A or AAAA record; add one pointing to your node", name)
		}
		return res
	}
	for _, a := range res.Addrs {
		if !slices.ContainsFunc(expected, func(e netip.Addr) bool { return e.Unmap() == a.Unmap() }) {
			res.Elsewhere = append(res.Elsewhere, a)
		}
	}
	if len(res.Elsewhere) > 0 {
		res.Status = StatusPointsElsewhere
		res.Message = fmt.Sprintf("%s points elsewhere: %s", name, joinAddrs(res.Elsewhere))
		if len(expected) > 0 {
			res.Message += fmt.Sprintf(" (expected %s)", joinAddrs(expected))
		} else {
			res.Message += " (no node serves it)"
		}
		return res
	}
	res.Status = StatusPointsHere
	res.Message = fmt.Sprintf("%s points here (%s)", name, joinAddrs(res.Addrs))
	return res
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Delegation is the zone that holds a name and the nameservers it is
// delegated to.
type Delegation struct {
	Name        string
	Zone        string
	Nameservers []string
	Message     string
}

// Delegation finds the zone apex of name (the closest enclosing name with an
// SOA record) and its NS records.
func (c Checker) Delegation(ctx context.Context, name string) (Delegation, error) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimPrefix(name, "*.")), ".")
	d := Delegation{Name: name}
	labels := dns.SplitDomainName(name)
	for i := range labels {
		candidate := strings.Join(labels[i:], ".")
		resp, err := c.query(ctx, candidate, dns.TypeSOA)
		if errors.Is(err, errNXDomain) {
			continue
		}
		if err != nil {
			return d, fmt.Errorf("look up the zone of %s: %w", name, err)
		}
		if !hasSOAFor(resp, candidate) {
			continue
		}
		d.Zone = candidate
		ns, err := c.query(ctx, candidate, dns.TypeNS)
		if err != nil {
			return d, fmt.Errorf("look up the nameservers of %s: %w", candidate, err)
		}
		for _, rr := range ns.Answer {
			if n, ok := rr.(*dns.NS); ok {
				d.Nameservers = append(d.Nameservers, strings.TrimSuffix(strings.ToLower(n.Ns), "."))
			}
		}
		slices.Sort(d.Nameservers)
		if len(d.Nameservers) == 0 {
			d.Message = fmt.Sprintf("%s is in zone %s, which lists no nameservers", name, candidate)
		} else {
			d.Message = fmt.Sprintf("%s is in zone %s, served by %s", name, candidate, strings.Join(d.Nameservers, ", "))
		}
		return d, nil
	}
	return d, fmt.Errorf("no zone found for %s: no enclosing name has an SOA record; check the domain is registered and delegated", name)
}

func hasSOAFor(m *dns.Msg, name string) bool {
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(strings.TrimSuffix(soa.Hdr.Name, "."), name) {
			return true
		}
	}
	return false
}

// DelegatedTo reports whether the zone is served by the nameserver host
// (case-insensitive, trailing dot ignored).
func (d Delegation) DelegatedTo(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return slices.Contains(d.Nameservers, host)
}
