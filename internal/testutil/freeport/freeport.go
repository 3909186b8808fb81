// Package freeport hands tests TCP ports on loopback that were free a moment
// ago, never the same port twice in one test binary. The kernel often gives
// a just-closed port to the next bind, so two ports asked for in a row (an
// HTTP and an HTTPS listener) could otherwise be the same one.
package freeport

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Get returns a free port on 127.0.0.1 that no earlier call in this process
// returned, failing the test when none is found.
func Get(t testing.TB) int {
	t.Helper()
	p, err := next()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func next() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	// Hold every port tried until one is new, so the kernel cannot hand the
	// same one back on the next try.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 64 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if !handed[p] {
			handed[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("find a free port: 64 tries gave only ports handed out before")
}
