// Package testnode starts throwaway SSH nodes for tests: a network namespace
// with its own sshd, made by scripts/testnode.sh.
//
// A node shares the host's filesystem but has its own network and its own
// users (root with a password and a key, ghtest with password-less sudo,
// ghpass whose sudo needs a password). It can reach only HostAddr, the host
// end of its veth pair: an agent running inside a node must dial a controller
// listening on HostAddr (or 0.0.0.0).
package testnode

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Node is a running test node.
type Node struct {
	Name     string
	Netns    string
	Addr     string // node address; sshd listens on Addr:Port
	HostAddr string // host side of the veth pair, reachable from the node
	Port     int

	HostKeyPath        string // sshd's public host key file
	HostKeyType        string // "ssh-ed25519"
	HostKeyFingerprint string // "SHA256:..."

	ClientKeyPath string // private key accepted for root and ghtest
	ClientKeyPEM  []byte
	RootPassword  string

	SudoUser         string // "ghtest": key login, password-less sudo
	PasswordUser     string // "ghpass": password login, sudo asks for a password
	PasswordUserPass string

	SSHDLog  string
	StateDir string

	script string
}

// Script returns the path of scripts/testnode.sh in this checkout.
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module github.com/gatehousehq/gatehouse\n")) {
			return filepath.Join(dir, "scripts", "testnode.sh"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testnode: go.mod of github.com/gatehousehq/gatehouse not found above the working directory")
		}
		dir = parent
	}
}

// Unavailable says why nodes cannot be made here, or "" if they can.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "test nodes need root (network namespaces)"
	}
	for _, bin := range []string{"ip", "ssh-keygen", "openssl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed"
		}
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return "sshd (openssh-server) is not installed"
	}
	return ""
}

// Start creates a node, registers its removal with t.Cleanup and returns it.
// Without root, ip or sshd the test is skipped, unless CI=true, where it
// fails.
func Start(t testing.TB) *Node {
	t.Helper()
	if why := Unavailable(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testnode: %s", why)
		}
		t.Skipf("testnode: %s", why)
	}
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "t" + hex.EncodeToString(b[:])
	n := &Node{script: script}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down", name).CombinedOutput(); err != nil {
			t.Errorf("testnode down %s: %v: %s", name, err, out)
		}
	})
	if err := n.call("up", name); err != nil {
		t.Fatal(err)
	}
	return n
}

// Rekey gives the node's sshd a fresh host key and restarts it; the new
// fingerprint is in HostKeyFingerprint.
func (n *Node) Rekey(t testing.TB) {
	t.Helper()
	if err := n.call("rekey", n.Name); err != nil {
		t.Fatal(err)
	}
}

// Exec runs argv inside the node's network namespace (as root, directly,
// without SSH) and returns its combined output; it fails the test on error.
func (n *Node) Exec(t testing.TB, argv ...string) []byte {
	t.Helper()
	out, err := n.Command(argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("in node %s: %q: %v: %s", n.Name, argv, err, out)
	}
	return out
}

// Command returns an exec.Cmd that runs argv inside the node's namespace.
func (n *Node) Command(argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Netns}, argv...)...)
}

// SSHDLogText returns what sshd has logged so far.
func (n *Node) SSHDLogText(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(n.SSHDLog)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func (n *Node) call(cmd, name string) error {
	var stderr bytes.Buffer
	c := exec.Command(n.script, cmd, name)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return fmt.Errorf("testnode %s %s: %v: %s", cmd, name, err, stderr.String())
	}
	return n.parse(out)
}

func (n *Node) parse(out []byte) error {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			kv[k] = v
		}
	}
	for _, k := range []string{"NAME", "NETNS", "ADDR", "HOST_ADDR", "PORT", "HOST_KEY", "HOST_KEY_TYPE",
		"HOST_KEY_FINGERPRINT", "CLIENT_KEY", "ROOT_PASSWORD", "GHTEST_USER", "GHPASS_USER", "GHPASS_PASSWORD",
		"SSHD_LOG", "STATE_DIR"} {
		if kv[k] == "" {
			return fmt.Errorf("testnode: output lacks %s:\n%s", k, out)
		}
	}
	port, err := strconv.Atoi(kv["PORT"])
	if err != nil {
		return fmt.Errorf("testnode: PORT %q: %w", kv["PORT"], err)
	}
	key, err := os.ReadFile(kv["CLIENT_KEY"])
	if err != nil {
		return fmt.Errorf("testnode: %w", err)
	}
	*n = Node{
		Name: kv["NAME"], Netns: kv["NETNS"], Addr: kv["ADDR"], HostAddr: kv["HOST_ADDR"], Port: port,
		HostKeyPath: kv["HOST_KEY"], HostKeyType: kv["HOST_KEY_TYPE"], HostKeyFingerprint: kv["HOST_KEY_FINGERPRINT"],
		ClientKeyPath: kv["CLIENT_KEY"], ClientKeyPEM: key, RootPassword: kv["ROOT_PASSWORD"],
		SudoUser: kv["GHTEST_USER"], PasswordUser: kv["GHPASS_USER"], PasswordUserPass: kv["GHPASS_PASSWORD"],
		SSHDLog: kv["SSHD_LOG"], StateDir: kv["STATE_DIR"], script: n.script,
	}
	return nil
}
