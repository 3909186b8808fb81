package testnode

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartReachableAndDown(t *testing.T) {
	var n *Node
	t.Run("up", func(t *testing.T) {
		n = Start(t)
		if !strings.HasPrefix(n.Addr, "10.198.") || !strings.HasPrefix(n.HostAddr, "10.198.") {
			t.Fatalf("addresses %s / %s outside 10.198.0.0/16", n.Addr, n.HostAddr)
		}
		if !strings.HasPrefix(n.HostKeyFingerprint, "SHA256:") {
			t.Fatalf("fingerprint %q", n.HostKeyFingerprint)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.Addr, "22"), 5*time.Second)
		if err != nil {
			t.Fatalf("sshd not reachable: %v", err)
		}
		defer conn.Close()
		buf := make([]byte, 8)
		if _, err := conn.Read(buf); err != nil || !strings.HasPrefix(string(buf), "SSH-2.0-") {
			t.Fatalf("banner %q, %v", buf, err)
		}
		// Users exist inside the node only.
		if out := n.Exec(t, "id", "-u", "ghtest"); strings.TrimSpace(string(out)) != "64010" {
			t.Fatalf("ghtest inside node: %q", out)
		}
		// A controller listening on the host side is reachable from the node.
		ln, err := net.Listen("tcp", net.JoinHostPort(n.HostAddr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			accepted <- err
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		n.Exec(t, "bash", "-c", `exec 3<>"/dev/tcp/$1/$2"`, "probe", n.HostAddr, strconv.Itoa(port))
		if err := <-accepted; err != nil {
			t.Fatalf("accept from node: %v", err)
		}
		// up is idempotent: a second call returns the same node.
		again := *n
		if err := again.call("up", n.Name); err != nil {
			t.Fatal(err)
		}
		if again.Addr != n.Addr || again.HostKeyFingerprint != n.HostKeyFingerprint || again.RootPassword != n.RootPassword {
			t.Fatalf("second up changed the node: %+v vs %+v", again, *n)
		}
		before := n.HostKeyFingerprint
		n.Rekey(t)
		if n.HostKeyFingerprint == before {
			t.Fatal("rekey kept the host key")
		}
	})
	// t.Cleanup of the subtest ran "down": everything is gone.
	if _, err := os.Stat(n.StateDir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left behind: %v", n.StateDir, err)
	}
	if _, err := os.Stat("/etc/netns/" + n.Netns); !os.IsNotExist(err) {
		t.Errorf("/etc/netns/%s left behind: %v", n.Netns, err)
	}
	if err := n.Command("true").Run(); err == nil {
		t.Errorf("namespace %s still exists", n.Netns)
	}
	// down is idempotent.
	if out, err := exec.Command(n.script, "down", n.Name).CombinedOutput(); err != nil {
		t.Errorf("second down: %v: %s", err, out)
	}
}
