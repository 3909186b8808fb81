package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func listen(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestTCPLoopback(t *testing.T) {
	t.Parallel()
	open, _ := listen(t)
	_, port, _ := net.SplitHostPort(open)
	closed := closedPort(t)
	got := Prober{}.TCP(context.Background(), []string{open, closed, "localhost:" + port})
	if len(got) != 3 {
		t.Fatalf("%d results", len(got))
	}
	for i, want := range []Result{{OK: true}, {Error: "connection refused"}, {OK: true}} {
		if got[i].OK != want.OK || got[i].Error != want.Error {
			t.Errorf("result %d = %+v, want ok=%v error=%q", i, got[i], want.OK, want.Error)
		}
		if got[i].Latency <= 0 {
			t.Errorf("result %d: latency %v, want the time the attempt took", i, got[i].Latency)
		}
	}
}

// blockingDialer answers only when its context ends.
type blockingDialer struct{}

func (blockingDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
}

func TestTCPTimeoutAndDeadline(t *testing.T) {
	t.Parallel()
	// Each attempt has its own timeout.
	got := Prober{Dialer: blockingDialer{}, Timeout: time.Millisecond}.TCP(context.Background(), []string{"a:1", "b:1"})
	for i, r := range got {
		if r.OK || r.Error != "timed out" {
			t.Errorf("result %d = %+v, want timed out", i, r)
		}
	}
	// The context bounds the whole run: with one attempt at a time, the
	// second never starts.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	got = Prober{Dialer: blockingDialer{}, Timeout: time.Hour, Concurrency: 1}.TCP(ctx, []string{"a:1", "b:1"})
	if got[0].Error != "timed out" || got[1].Error != NotProbed || got[1].Latency != 0 {
		t.Fatalf("results = %+v, want timed out then %q", got, NotProbed)
	}
	// An ended context probes nothing.
	done, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	got = Prober{Dialer: blockingDialer{}}.TCP(done, []string{"a:1"})
	if got[0].Error != NotProbed {
		t.Fatalf("results = %+v", got)
	}
}

// countingDialer records how many attempts run at once. Each attempt waits
// until full attempts are running (or its context ends), so a Prober that
// ran fewer at once would time out. Once full are running it lets them go
// only after a grace period, in which a Prober that starts more at once
// shows it in max; a correct one passes however short the period is.
type countingDialer struct {
	full      int32
	inflight  atomic.Int32
	max       atomic.Int32
	reached   chan struct{}
	closeOnce sync.Once
}

func (d *countingDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	for {
		m := d.max.Load()
		if n <= m || d.max.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= d.full {
		d.closeOnce.Do(func() {
			time.Sleep(50 * time.Millisecond)
			close(d.reached)
		})
	}
	select {
	case <-d.reached:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func TestTCPConcurrency(t *testing.T) {
	t.Parallel()
	addrs := make([]string, 50)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("h%d:1", i)
	}
	d := &countingDialer{full: DefaultConcurrency, reached: make(chan struct{})}
	got := Prober{Dialer: d, Timeout: time.Minute}.TCP(context.Background(), addrs)
	if m := d.max.Load(); m != DefaultConcurrency {
		t.Fatalf("%d attempts at once, want %d", m, DefaultConcurrency)
	}
	for i, r := range got {
		if r.Error != "connection refused" {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	sys := func(e syscall.Errno) error { return op(os.NewSyscallError("connect", e)) }
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{sys(syscall.ECONNREFUSED), "connection refused"},
		{sys(syscall.ECONNRESET), "connection reset"},
		{sys(syscall.ENETUNREACH), "network unreachable"},
		{sys(syscall.EHOSTUNREACH), "host unreachable"},
		{sys(syscall.ETIMEDOUT), "timed out"},
		{sys(syscall.EADDRNOTAVAIL), "address not available"},
		{sys(syscall.EACCES), "not permitted"},
		{op(&net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}), "no such host"},
		{op(&net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true}), "name lookup timed out"},
		{op(&net.DNSError{Err: "server misbehaving", Name: "x.example"}), "name lookup failed: server misbehaving"},
		{op(context.DeadlineExceeded), "timed out"},
		{op(os.ErrDeadlineExceeded), "timed out"},
		{op(context.Canceled), "canceled"},
		{errors.New("odd\nfailure\x00"), "odd failure "},
		{errors.New(long), strings.Repeat("é", 100)},
		{errors.New(strings.Repeat("x", 199) + "é"), strings.Repeat("x", 199)},
		{errors.New("bad \xff byte"), "bad ? byte"},
	}
	for _, tt := range tests {
		got := Reason(tt.err)
		if got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if len(got) > MaxErrorLen || !utf8.ValidString(got) {
			t.Errorf("Reason(%v) = %q: over %d bytes or not UTF-8", tt.err, got, MaxErrorLen)
		}
	}
}

// fakeResolver answers from a table and fails the test for names it does
// not know, so nothing is looked up for real.
type fakeResolver struct {
	t     *testing.T
	hosts map[string][]string
}

func (r fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	addrs, ok := r.hosts[host]
	if !ok {
		if host == "gone.test" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		r.t.Errorf("unexpected lookup of %q", host)
		return nil, &net.DNSError{Err: "unexpected", Name: host}
	}
	return addrs, nil
}

// recordingDialer dials for real and records every address it was asked for.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// With a Resolver every address of a host name is dialled, as nginx sends
// requests to each: one refusing address fails the server and is named.
func TestTCPEveryAddressOfAName(t *testing.T) {
	t.Parallel()
	open, _ := listen(t)
	_, port, _ := net.SplitHostPort(open)
	// A port open on both 127.0.0.1 and 127.0.0.2.
	both, _ := listen(t)
	_, bothPort, _ := net.SplitHostPort(both)
	ln2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", bothPort))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { ln2.Close() })
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	many := make([]string, 12)
	for i := range many {
		many[i] = fmt.Sprintf("127.0.1.%d", i+1)
	}
	r := fakeResolver{t: t, hosts: map[string][]string{
		"half.test": {"127.0.0.1", "127.0.0.2"},
		"both.test": {"127.0.0.1", "127.0.0.2"},
		"one.test":  {"127.0.0.1"},
		"dup.test":  {"127.0.0.1", "127.0.0.1", "not-an-address"},
		"none.test": {"not-an-address"},
		"many.test": many,
	}}
	d := &recordingDialer{}
	closed := closedPort(t)
	_, closedP, _ := net.SplitHostPort(closed)
	addrs := []string{
		"half.test:" + port, "both.test:" + bothPort, "one.test:" + closedP, "dup.test:" + port,
		"none.test:" + port, "gone.test:" + port, open, "many.test:" + closedP,
	}
	got := Prober{Dialer: d, Resolver: r, Timeout: 5 * time.Second}.TCP(context.Background(), addrs)
	want := []Result{
		{Error: "127.0.0.2:" + port + ": connection refused (1 of 2 addresses)"},
		{OK: true},
		{Error: "connection refused"},
		{OK: true},
		{Error: "no such host"},
		{Error: "no such host"},
		{OK: true},
		{Error: "127.0.1.1:" + closedP + ": connection refused (8 of 8 addresses)"},
	}
	for i := range want {
		if got[i].OK != want[i].OK || got[i].Error != want[i].Error {
			t.Errorf("%s: %+v, want ok=%v error=%q", addrs[i], got[i], want[i].OK, want[i].Error)
		}
	}
	// The IP literal was dialled as it is, the duplicate once, and no more
	// than MaxHostAddrs addresses of one name.
	counts := map[string]int{}
	for _, a := range d.addrs {
		counts[a]++
	}
	if counts[open] != 3 { // for half.test, once for dup.test, once as the literal
		t.Errorf("%s dialled %d times, want 3", open, counts[open])
	}
	n := 0
	for a := range counts {
		if strings.HasPrefix(a, "127.0.1.") {
			n++
		}
	}
	if n != MaxHostAddrs {
		t.Errorf("%d addresses of many.test dialled, want %d", n, MaxHostAddrs)
	}
}
