package nginx

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// inodeID names one inode.
type inodeID struct{ dev, ino uint64 }

// stamp is what changes whenever an inode's content, mode or owner does:
// any write or chmod sets ctime to now, and ctime cannot be set back.
type stamp struct {
	size         int64
	mode, uid    uint32
	mtime, ctime unix.Timespec
}

func stampOf(st *unix.Stat_t) (inodeID, stamp) {
	return inodeID{dev: st.Dev, ino: st.Ino}, stamp{size: st.Size, mode: st.Mode, uid: st.Uid, mtime: st.Mtim, ctime: st.Ctim}
}

// hashCache remembers the sha256 of files the applier wrote or read, by
// inode and stamp, so an apply re-reads only files that changed since (as
// git's index does). The applier updates the stamp after each of its own
// links, which change ctime too. Drift never uses it: it always reads.
type hashCache struct {
	mu   sync.Mutex
	old  map[inodeID]cachedHash // from the last successful apply
	next map[inodeID]cachedHash // files of the release being written
}

type cachedHash struct {
	stamp  stamp
	sha256 string
}

func newHashCache() *hashCache {
	return &hashCache{old: map[inodeID]cachedHash{}, next: map[inodeID]cachedHash{}}
}

// begin starts recording the files of a new release.
func (c *hashCache) begin() {
	c.mu.Lock()
	c.next = make(map[inodeID]cachedHash, len(c.old))
	c.mu.Unlock()
}

// commit makes the recorded files the reference, after a successful apply.
func (c *hashCache) commit() {
	c.mu.Lock()
	c.old, c.next = c.next, map[inodeID]cachedHash{}
	c.mu.Unlock()
}

// lookup returns the known hash of this version of the inode, carrying it
// over into the release being written.
func (c *hashCache) lookup(id inodeID, s stamp) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.next[id]; ok && h.stamp == s {
		return h.sha256, true
	}
	if h, ok := c.old[id]; ok && h.stamp == s {
		c.next[id] = h
		return h.sha256, true
	}
	return "", false
}

// racyWindow: a stamp this recent is not recorded. ctime comes from a
// coarse clock, so an edit right after ours could keep the same stamp (the
// "racy git" problem); such files are simply read again next time.
const racyWindow = 100 * time.Millisecond

func (c *hashCache) record(st *unix.Stat_t, sha string) {
	if time.Since(time.Unix(st.Ctim.Unix())) < racyWindow {
		return
	}
	id, s := stampOf(st)
	c.mu.Lock()
	c.next[id] = cachedHash{stamp: s, sha256: sha}
	c.mu.Unlock()
}

// state returns what is at name in dir, reading the content only when the
// cache does not know this version of the inode.
func (c *hashCache) state(dir int, name string, wantSize int64) (fileState, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileState{}, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		id, s := stampOf(&st)
		if sha, ok := c.lookup(id, s); ok {
			return fileState{regular: true, sha256: sha, mode: modeBits(st.Mode), nlink: uint64(st.Nlink), uid: int(st.Uid), size: st.Size}, nil
		}
	}
	fs, err := readFileAt(dir, name, wantSize)
	if err == nil && fs.sha256 != "" && fs.stat != nil {
		c.record(fs.stat, fs.sha256)
	}
	return fs, err
}

// remember records name in dir after the applier wrote or linked it.
func (c *hashCache) remember(dir int, name, sha string) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		c.record(&st, sha)
	}
}

// manifestCache keeps the parsed manifest of the current release.
type manifestCache struct {
	rev   uint64
	id    inodeID
	stamp stamp
	m     *manifest
}

// cachedManifest returns the manifest of the release open at dir from the
// cache when its file is unchanged, else reads it.
func (a *Applier) cachedManifest(dir int, rev uint64) (*manifest, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, manifestName, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		id, s := stampOf(&st)
		if c := a.manifests; c.m != nil && c.rev == rev && c.id == id && c.stamp == s {
			return c.m, nil
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	return readManifest(dir, rev)
}

// keepManifest caches m as the manifest of the release open at dir.
func (a *Applier) keepManifest(dir int, m *manifest) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, manifestName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		a.manifests = manifestCache{}
		return
	}
	id, s := stampOf(&st)
	a.manifests = manifestCache{rev: m.Revision, id: id, stamp: s, m: m}
}
