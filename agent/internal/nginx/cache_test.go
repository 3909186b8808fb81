package nginx

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The hash cache must never vouch for content it did not see: an edit
// changes the stamp, and a stamp too fresh to trust is not kept.
func TestHashCacheSeesEdits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.conf")
	mustDo(t, os.WriteFile(p, []byte("one"), 0o644))
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	c := newHashCache()
	c.begin()
	st, err := c.state(fd, "a.conf", -1)
	if err != nil || st.sha256 != sum([]byte("one")) {
		t.Fatalf("state = %+v, %v", st, err)
	}

	// A stamp from just now is not recorded; an old one is.
	var sys unix.Stat_t
	mustDo(t, unix.Fstatat(fd, "a.conf", &sys, 0))
	fresh, stale := sys, sys
	fresh.Ino, stale.Ino = 1<<40, 1<<40+1
	fresh.Ctim = unix.NsecToTimespec(time.Now().Add(time.Minute).UnixNano()) // never older than the window
	stale.Ctim = unix.NsecToTimespec(time.Now().Add(-time.Hour).UnixNano())
	c.record(&fresh, "fresh")
	c.record(&stale, "stale")
	if _, ok := c.lookup(stampOf(&fresh)); ok {
		t.Fatal("recorded a stamp too recent to trust")
	}
	if h, ok := c.lookup(stampOf(&stale)); !ok || h != "stale" {
		t.Fatal("did not record an old stamp")
	}

	// A recorded hash is only served for the exact stamp it was taken with.
	other := sys
	other.Ctim = unix.NsecToTimespec(time.Now().Add(-time.Hour).UnixNano())
	c.record(&other, "pretend")
	if got, _ := c.state(fd, "a.conf", -1); got.sha256 == "pretend" {
		t.Fatal("a stamp with a different ctime was trusted")
	}

	// Rewriting the file changes its ctime, so the cache reads it again.
	id, s := stampOf(&sys)
	c.mu.Lock()
	c.next[id] = cachedHash{stamp: s, sha256: "cached"}
	c.mu.Unlock()
	if got, _ := c.state(fd, "a.conf", -1); got.sha256 != "cached" {
		t.Fatalf("unchanged inode not served from the cache: %q", got.sha256)
	}
	time.Sleep(20 * time.Millisecond) // let the coarse ctime clock tick
	mustDo(t, os.WriteFile(p, []byte("two"), 0o644))
	if got, _ := c.state(fd, "a.conf", -1); got.sha256 != sum([]byte("two")) {
		t.Fatalf("edited file served from the cache: %q", got.sha256)
	}
}
