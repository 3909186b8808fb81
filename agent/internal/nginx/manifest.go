package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// manifest records what a release contains, written as .manifest.json in the
// release root.
type manifest struct {
	Revision uint64 `json:"revision"`
	// Previous is the revision that was current before this one, the
	// rollback target kept by pruning.
	Previous uint64          `json:"previous,omitempty"`
	Files    []manifestEntry `json:"files"`
}

type manifestEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

func parseMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v&^0o777 != 0 {
		return 0, fmt.Errorf("bad mode %q", s)
	}
	return fs.FileMode(v), nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// index maps path to entry.
func (m *manifest) index() map[string]manifestEntry {
	idx := make(map[string]manifestEntry, len(m.Files))
	for _, e := range m.Files {
		idx[e.Path] = e
	}
	return idx
}

// readManifest reads the manifest of the release open at dir.
func readManifest(dir int, rev uint64) (*manifest, error) {
	fd, err := unix.Openat(dir, manifestName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open manifest of release %d: %w", rev, err)
	}
	f := os.NewFile(uintptr(fd), manifestName)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read manifest of release %d: %w", rev, err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest of release %d: %w", rev, err)
	}
	if m.Revision != rev {
		return nil, fmt.Errorf("manifest of release %d names revision %d", rev, m.Revision)
	}
	for _, e := range m.Files {
		if msg := checkPath(e.Path); msg != "" {
			return nil, fmt.Errorf("manifest of release %d: path %q: %s", rev, e.Path, msg)
		}
		if _, err := parseMode(e.Mode); err != nil {
			return nil, fmt.Errorf("manifest of release %d: %q: %w", rev, e.Path, err)
		}
	}
	return &m, nil
}

// writeManifest writes .manifest.json in dir: in place when a recycled
// stage already has an unshared one, else as a new file.
func writeManifest(dir int, m *manifest) error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	st, err := readFileAt(dir, manifestName, statOnly)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err == nil && st.regular && st.nlink == 1 && st.uid == os.Geteuid():
		return rewriteAt(dir, manifestName, data, 0o644)
	default:
		if err := unix.Unlinkat(dir, manifestName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("replace manifest: %w", err)
		}
	}
	return writeNew(dir, manifestName, data, 0o644)
}

// writeNew creates name in dir (never following or replacing anything),
// writes data with the exact mode and checks the size landed. Syncing is
// left to the caller (see syncFS).
func writeNew(dir int, name string, data []byte, mode fs.FileMode) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return finishWrite(os.NewFile(uintptr(fd), name), name, data, mode)
}

// finishWrite writes data to the open, empty file, sets the exact mode (the
// umask must not change what the controller asked for), checks the size
// landed and closes it.
func finishWrite(f *os.File, name string, data []byte, mode fs.FileMode) error {
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode.Perm())
	}
	if werr == nil {
		var fi fs.FileInfo
		if fi, werr = f.Stat(); werr == nil && fi.Size() != int64(len(data)) {
			werr = fmt.Errorf("wrote %d bytes, file has %d", len(data), fi.Size())
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", name, werr)
	}
	return nil
}

// fileState is what is on disk at one path of a release.
type fileState struct {
	regular bool
	sha256  string
	mode    fs.FileMode
	nlink   uint64
	uid     int
	size    int64
	stat    *unix.Stat_t // as read, when regular
}

func modeBits(m uint32) fs.FileMode { return fs.FileMode(m & 0o777) }

// statOnly makes readFileAt skip the content.
const statOnly = -2

// readFileAt hashes the regular file name in dir without following a
// symlink (or blocking on a FIFO). When wantSize is not negative and the
// file's size differs, the content is not read: it cannot match. With
// statOnly it is never read.
func readFileAt(dir int, name string, wantSize int64) (fileState, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return fileState{}, nil // a symlink: present but not a regular file
	}
	if err != nil {
		return fileState{}, err
	}
	defer unix.Close(fd)
	var sys unix.Stat_t
	if err := unix.Fstat(fd, &sys); err != nil {
		return fileState{}, err
	}
	if sys.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileState{}, nil
	}
	st := fileState{regular: true, mode: modeBits(sys.Mode), nlink: uint64(sys.Nlink), uid: int(sys.Uid), size: sys.Size, stat: &sys}
	if wantSize == statOnly || wantSize >= 0 && sys.Size != wantSize || sys.Size > MaxFileSize {
		return st, nil // sha256 stays empty: a mismatch
	}
	buf := make([]byte, sys.Size+1)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fileState{}, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	if int64(n) != sys.Size {
		return st, nil // changed while reading
	}
	st.sha256 = sum(buf[:n])
	return st, nil
}

// Drift is how the files reached through `current` differ from its manifest.
type Drift struct {
	// Revision is the current release; zero when nothing is applied yet.
	Revision uint64
	// Added are paths on disk that the release does not have.
	Added []string
	// Removed are release paths missing on disk.
	Removed []string
	// Modified are release paths whose content, mode or type changed.
	Modified []string
}

// Clean reports whether nothing drifted.
func (d Drift) Clean() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Modified) == 0
}

// Drift compares the files of the current release with its manifest. It
// never follows symlinks: one planted in the release is reported as a change.
func (a *Applier) Drift() (Drift, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	root, err := a.openRoot()
	if err != nil {
		return Drift{}, err
	}
	defer unix.Close(root)
	rev, ok, err := readCurrent(root)
	if err != nil || !ok {
		return Drift{}, err
	}
	dir, err := openDirAt(root, releaseTarget(rev))
	if err != nil {
		return Drift{}, fmt.Errorf("open current release %d: %w", rev, err)
	}
	defer unix.Close(dir)
	m, err := readManifest(dir, rev)
	if err != nil {
		return Drift{}, fmt.Errorf("%w; reapply the release to restore it", err)
	}
	return diffTree(dir, m)
}

// diffTree walks the release open at dir and compares it with m.
func diffTree(dir int, m *manifest) (Drift, error) {
	d := Drift{Revision: m.Revision}
	want := m.index()
	seen := make(map[string]bool, len(want))
	var walk func(fd int, rel string) error
	walk = func(fd int, rel string) error {
		dup, err := unix.Dup(fd)
		if err != nil {
			return err
		}
		df := os.NewFile(uintptr(dup), rel)
		entries, err := df.ReadDir(-1)
		df.Close()
		if err != nil {
			return fmt.Errorf("list %q: %w", rel, err)
		}
		for _, e := range entries {
			name := e.Name()
			p := path.Join(rel, name)
			if rel == "" && name == manifestName {
				continue
			}
			if e.Type()&fs.ModeType == fs.ModeDir {
				sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("open %q: %w", p, err)
				}
				err = walk(sub, p)
				unix.Close(sub)
				if err != nil {
					return err
				}
				if _, isFile := want[p]; isFile {
					seen[p] = true
					d.Modified = append(d.Modified, p)
				}
				continue
			}
			exp, known := want[p]
			if !known {
				d.Added = append(d.Added, p)
				continue
			}
			seen[p] = true
			st, err := readFileAt(fd, name, exp.Size)
			if err != nil {
				return fmt.Errorf("read %q: %w", p, err)
			}
			if !st.regular || st.sha256 != exp.SHA256 || modeString(st.mode) != exp.Mode {
				d.Modified = append(d.Modified, p)
			}
		}
		return nil
	}
	if err := walk(dir, ""); err != nil {
		return Drift{}, err
	}
	for p := range want {
		if !seen[p] {
			d.Removed = append(d.Removed, p)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Modified)
	return d, nil
}
