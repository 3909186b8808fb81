package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports asked for in a row are distinct, and each can be bound.
func TestGetDistinctAndFree(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Get(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p := Get(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}
