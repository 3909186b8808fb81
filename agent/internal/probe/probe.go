// Package probe checks that TCP servers accept connections: it opens one
// connection to each address, closes it at once and reports how long that
// took or, in a few words, why it failed.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Defaults for a zero Prober.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultConcurrency = 16
	// MaxErrorLen bounds Result.Error in bytes.
	MaxErrorLen = 200
)

// NotProbed is the Error of an address whose turn never came before the
// context ended.
const NotProbed = "not probed: out of time"

// Dialer opens connections; *net.Dialer is one. Host names are resolved by
// the dialer: net.Dialer uses the system's resolver configuration
// (/etc/hosts, /etc/resolv.conf), as nginx does when it loads its
// configuration.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Resolver finds the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// MaxHostAddrs bounds how many addresses of one host name are dialled.
const MaxHostAddrs = 8

// Prober dials addresses over TCP.
type Prober struct {
	// Dialer opens the connections; nil is a net.Dialer.
	Dialer Dialer
	// Resolver, when set, resolves host names first and every address
	// found is dialled: nginx resolves a server's name when it loads its
	// configuration and sends requests to each address, so one that refuses
	// makes a failing server even while another accepts. nil leaves names
	// to the Dialer, which settles for the first address that accepts.
	Resolver Resolver
	// Timeout bounds each attempt, resolution included; zero is
	// DefaultTimeout.
	Timeout time.Duration
	// Concurrency is how many attempts run at once; zero is
	// DefaultConcurrency.
	Concurrency int
}

// Result is what one attempt found.
type Result struct {
	OK bool
	// Latency is how long the connection took to open, or the attempt
	// until it failed.
	Latency time.Duration
	// Error says why it failed, in a few words (see Reason); empty when OK.
	Error string
}

// TCP opens a connection to each address and closes it at once. It returns
// one Result per address, in the same order, when every attempt is done;
// ctx bounds them all, and addresses not tried before it ends get
// NotProbed.
func (p Prober) TCP(ctx context.Context, addrs []string) []Result {
	d := p.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	conc := p.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	results := make([]Result, len(addrs))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, addr := range addrs {
		if ctx.Err() == nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			results[i] = Result{Error: NotProbed}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = p.dial(ctx, d, timeout, addr)
		}()
	}
	wg.Wait()
	return results
}

// dial tries one address under its own timeout: a host name with a
// Resolver is resolved and each of its addresses dialled at once.
func (p Prober) dial(ctx context.Context, d Dialer, timeout time.Duration, addr string) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, port, err := net.SplitHostPort(addr)
	if p.Resolver == nil || err != nil || net.ParseIP(host) != nil {
		return dialOne(ctx, d, addr)
	}
	start := time.Now()
	found, err := p.Resolver.LookupHost(ctx, host)
	if err != nil {
		return Result{Latency: time.Since(start), Error: Reason(err)}
	}
	var ips []string
	for _, ip := range found {
		if net.ParseIP(ip) != nil && !slices.Contains(ips, ip) && len(ips) < MaxHostAddrs {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return Result{Latency: time.Since(start), Error: "no such host"}
	}
	results := make([]Result, len(ips))
	var wg sync.WaitGroup
	for i, ip := range ips {
		wg.Go(func() { results[i] = dialOne(ctx, d, net.JoinHostPort(ip, port)) })
	}
	wg.Wait()
	took := time.Since(start)
	first, failed := -1, 0
	for i, r := range results {
		if !r.OK {
			failed++
			if first < 0 {
				first = i
			}
		}
	}
	switch {
	case failed == 0:
		return Result{OK: true, Latency: took}
	case len(ips) == 1:
		return Result{Latency: took, Error: results[0].Error}
	}
	return Result{Latency: took, Error: cut(fmt.Sprintf("%s: %s (%d of %d addresses)",
		net.JoinHostPort(ips[first], port), results[first].Error, failed, len(ips)))}
}

// dialOne opens and closes one connection to addr.
func dialOne(ctx context.Context, d Dialer, addr string) Result {
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", addr)
	took := time.Since(start)
	if err != nil {
		return Result{Latency: took, Error: Reason(err)}
	}
	conn.Close()
	return Result{OK: true, Latency: took}
}

// Reason says in a few words why a connection attempt failed: "connection
// refused", "timed out", "no such host" and the like for the common
// causes, else the error's own text cut to MaxErrorLen bytes.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return "no such host"
		case dnsErr.IsTimeout:
			return "name lookup timed out"
		case errors.Is(err, context.DeadlineExceeded):
			return "name lookup timed out"
		case errors.Is(err, context.Canceled):
			return "canceled"
		}
		return cut("name lookup failed: " + dnsErr.Err)
	}
	for _, m := range errnoReasons {
		if errors.Is(err, m.errno) {
			return m.reason
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return cut(err.Error())
}

var errnoReasons = []struct {
	errno  syscall.Errno
	reason string
}{
	{syscall.ECONNREFUSED, "connection refused"},
	{syscall.ECONNRESET, "connection reset"},
	{syscall.ETIMEDOUT, "timed out"},
	{syscall.ENETUNREACH, "network unreachable"},
	{syscall.EHOSTUNREACH, "host unreachable"},
	{syscall.EADDRNOTAVAIL, "address not available"},
	{syscall.EADDRINUSE, "no local port free"},
	{syscall.EAFNOSUPPORT, "address family not supported"},
	{syscall.EACCES, "not permitted"},
	{syscall.EPERM, "not permitted"},
	{syscall.EMFILE, "too many open files"},
	{syscall.ENFILE, "too many open files"},
}

// cut makes s valid UTF-8 on one line of at most MaxErrorLen bytes.
func cut(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= MaxErrorLen {
		return s
	}
	i := MaxErrorLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
