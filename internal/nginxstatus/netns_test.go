package nginxstatus

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

// netnsLink is a network namespace joined to this one by a veth pair: the
// host end has HostIP, the namespace end PeerIP.
type netnsLink struct {
	name           string
	hostIP, peerIP string
}

// newNetnsLink creates a namespace and veth pair removed at cleanup. It
// skips unless running as root with ip(8).
func newNetnsLink(t *testing.T) *netnsLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("no ip(8): %v", err)
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	id := fmt.Sprintf("%d%03d", os.Getpid()%10000, rand.N(1000))
	l := &netnsLink{name: "ghst" + id}
	hostIf, peerIf := "ghsh"+id, "ghsp"+id
	sub := fmt.Sprintf("10.%d.%d", 200+rand.N(50), rand.N(256))
	base := rand.N(64) * 4
	l.hostIP, l.peerIP = fmt.Sprintf("%s.%d", sub, base+1), fmt.Sprintf("%s.%d", sub, base+2)

	ip("netns", "add", l.name)
	t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "del", l.name).Run() })
	ip("link", "add", hostIf, "type", "veth", "peer", "name", peerIf)
	t.Cleanup(func() { _ = exec.Command(ipBin, "link", "del", hostIf).Run() })
	ip("link", "set", peerIf, "netns", l.name)
	ip("addr", "add", l.hostIP+"/30", "dev", hostIf)
	ip("link", "set", hostIf, "up")
	ip("-n", l.name, "addr", "add", l.peerIP+"/30", "dev", peerIf)
	ip("-n", l.name, "link", "set", peerIf, "up")
	return l
}

// dial connects to addr from inside the namespace. The dialling goroutine
// holds its thread while it is in the namespace and returns it to this one
// before letting go; the socket keeps the namespace it was made in. (A thread
// must not simply end in the namespace: a child started from that thread
// with Pdeathsig, such as the test's nginx, would be killed with it.)
func (l *netnsLink) dial(addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer home.Close()
		f, err := os.Open(filepath.Join("/run/netns", l.name))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		// Back home before the thread is shared again; if that fails the
		// thread stays locked and ends with this goroutine.
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// getFrom asks addr for path on host from inside the namespace.
func (l *netnsLink) getFrom(t *testing.T, addr, host, path string) int {
	t.Helper()
	c, err := l.dial(addr)
	if err != nil {
		t.Fatalf("dial %s from the namespace: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Close = true
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("GET %s%s from the namespace: %v", host, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// With nginx bound to an address other hosts can reach, the status block
// answers the agent on the node and refuses everyone else.
func TestStatusBlockRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	l := newNetnsLink(t)
	port := strconv.Itoa(freePort(t))
	bind := net.JoinHostPort(l.hostIP, port)
	loop := net.JoinHostPort("127.0.0.1", port)
	listen := []string{bind, loop}
	nginxtest.Start(t, statusBlock(listen, l.hostIP)+siteBlocks(listen), loop)

	// The node itself: on its bind address (as the agent reads with
	// nginx_bind_address set) and on loopback.
	for _, addr := range []string{bind, loop} {
		if _, _, err := NewReader(addr, nil).Read(context.Background(), time.Now()); err != nil {
			t.Fatalf("reading on %s from the node: %v", addr, err)
		}
	}
	// Another host reaches the domains but not the counters.
	if code := l.getFrom(t, bind, "app.test", "/"); code != http.StatusOK {
		t.Fatalf("app.test from another host = %d, want 200", code)
	}
	if code := l.getFrom(t, bind, Host, Path); code != http.StatusForbidden {
		t.Fatalf("status from another host = %d, want 403", code)
	}
}
