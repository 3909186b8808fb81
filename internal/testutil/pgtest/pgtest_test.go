package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server started by a process that ends without Stop (a panic, a test
// timeout) goes with it instead of running on unowned.
func TestServerEndsWithItsProcess(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		s, err := Start(context.Background())
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		pidFile, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		pid, _, _ := strings.Cut(string(pidFile), "\n")
		fmt.Printf("server %s %s\n", pid, s.dir)
		os.Exit(0) // no Stop
	}
	if _, err := binDir(); err != nil || os.Getenv(EnvURL) != "" {
		if os.Getenv("CI") == "true" && err != nil {
			t.Fatal(err)
		}
		t.Skip("needs the PostgreSQL server binaries and no external server")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerEndsWithItsProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var pid int
	var dir string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "server %d %s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("child printed no server:\n%s", out)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	deadline := time.Now().Add(30 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			_ = exec.Command("kill", "-KILL", fmt.Sprint(pid)).Run()
			t.Fatalf("postmaster %d still runs after its starter exited", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
