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
	if len(c.next) != 0 {
		t.Fatal("recorded a stamp written moments ago")
	}

	// An old stamp is recorded and then trusted without reading.
	old := time.Now().Add(-time.Hour)
	mustDo(t, os.Chtimes(p, old, old))
	var sys unix.Stat_t
	mustDo(t, unix.Fstatat(fd, "a.conf", &sys, 0))
	sys.Ctim = unix.NsecToTimespec(old.UnixNano())
	c.record(&sys, "pretend")
	if got, _ := c.state(fd, "a.conf", -1); got.sha256 == "pretend" {
		t.Fatal("a stamp with a different ctime was trusted")
	}

	// Rewriting the file changes its ctime, so the cache reads it again.
	mustDo(t, unix.Fstatat(fd, "a.conf", &sys, 0))
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
