package nginx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Names inside the managed root.
const (
	releasesDir  = "releases"
	currentLink  = "current"
	currentTemp  = "current.tmp"
	manifestName = ".manifest.json"
	stagePrefix  = ".stage-"
	acmeDir      = "acme"
	challengeRel = acmeDir + "/.well-known/acme-challenge"
)

// ensureLayout creates the managed directories and refuses any that is not a
// real directory (a symlink there could send writes outside Dir).
func (a *Applier) ensureLayout() error {
	if err := os.MkdirAll(a.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create managed dir: %w", err)
	}
	for _, rel := range []string{releasesDir, acmeDir, acmeDir + "/.well-known", challengeRel} {
		p := filepath.Join(a.cfg.Dir, rel)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", p, err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (%s); remove it so the agent can manage it", p, fi.Mode().Type())
		}
	}
	return nil
}

// openRoot opens the managed root directory.
func (a *Applier) openRoot() (int, error) {
	fd, err := unix.Open(a.cfg.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open managed dir %s: %w", a.cfg.Dir, err)
	}
	return fd, nil
}

// openDirAt opens the directory rel below parent without following any
// symlink on the way.
func openDirAt(parent int, rel string) (int, error) {
	fd := parent
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." {
			continue
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != parent {
			unix.Close(fd)
		}
		if err != nil {
			return -1, fmt.Errorf("open directory %s: %w", rel, err)
		}
		fd = next
	}
	if fd == parent {
		return unix.Dup(parent)
	}
	return fd, nil
}

func releaseName(rev uint64) string { return strconv.FormatUint(rev, 10) }

func releaseTarget(rev uint64) string { return releasesDir + "/" + releaseName(rev) }

// parseReleaseName accepts only canonical decimal revision names.
func parseReleaseName(name string) (uint64, bool) {
	if name == "" || name[0] == '0' || len(name) > 20 {
		return 0, false
	}
	rev, err := strconv.ParseUint(name, 10, 64)
	return rev, err == nil
}

// readCurrent returns the revision `current` points to; ok is false when
// there is no current release yet.
func readCurrent(root int) (rev uint64, ok bool, err error) {
	buf := make([]byte, 256)
	n, err := unix.Readlinkat(root, currentLink, buf)
	if errors.Is(err, unix.ENOENT) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s symlink: %w", currentLink, err)
	}
	target := string(buf[:n])
	name, found := strings.CutPrefix(target, releasesDir+"/")
	if found {
		if rev, ok := parseReleaseName(name); ok {
			return rev, true, nil
		}
	}
	return 0, false, fmt.Errorf("%s symlink points to %q, not to a managed release; reapply the release to repair it", currentLink, target)
}

// pointCurrent atomically points `current` at a release: a fresh
// current.tmp symlink renamed over current. Durability comes from the
// filesystem sync the apply ends with.
func pointCurrent(root int, rev uint64) error {
	if err := prepareCurrent(root, rev); err != nil {
		return err
	}
	return commitCurrent(root)
}

// prepareCurrent creates current.tmp pointing at the release, which need
// not exist yet, so it can be done while the release is written.
func prepareCurrent(root int, rev uint64) error {
	if err := unix.Unlinkat(root, currentTemp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove stale %s: %w", currentTemp, err)
	}
	if err := unix.Symlinkat(releaseTarget(rev), root, currentTemp); err != nil {
		return fmt.Errorf("create %s: %w", currentTemp, err)
	}
	return nil
}

// commitCurrent renames current.tmp over current.
func commitCurrent(root int) error {
	if err := unix.Renameat(root, currentTemp, root, currentLink); err != nil {
		return fmt.Errorf("swap %s: %w", currentLink, err)
	}
	return nil
}

// clearCurrent removes `current`, for a rollback to "nothing applied yet".
func clearCurrent(root int) error {
	if err := unix.Unlinkat(root, currentLink, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", currentLink, err)
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// install moves a written stage directory to releases/<rev>. When that name
// is taken, the two are exchanged atomically and the old content is left
// under the stage name (displaced) so a rollback can put it back.
func install(releases int, stage string, rev uint64) (displaced string, err error) {
	name := releaseName(rev)
	err = unix.Renameat2(releases, stage, releases, name, unix.RENAME_NOREPLACE)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, unix.EEXIST) {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			return installFallback(releases, stage, name)
		}
		return "", fmt.Errorf("install release %s: %w", name, err)
	}
	if err := exchange(releases, stage, name); err != nil {
		return "", err
	}
	return stage, nil
}

// exchange swaps two entries of one directory atomically.
func exchange(dir int, a, b string) error {
	err := unix.Renameat2(dir, a, dir, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Filesystems without RENAME_EXCHANGE: three renames through a
		// temporary name.
		tmp := stagePrefix + "swap-" + randomSuffix()
		if err := unix.Renameat(dir, b, dir, tmp); err != nil {
			return fmt.Errorf("exchange %s and %s: %w", a, b, err)
		}
		if err := unix.Renameat(dir, a, dir, b); err != nil {
			return errors.Join(fmt.Errorf("exchange %s and %s: %w", a, b, err), unix.Renameat(dir, tmp, dir, b))
		}
		if err := unix.Renameat(dir, tmp, dir, a); err != nil {
			return fmt.Errorf("exchange %s and %s: %w", a, b, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("exchange %s and %s: %w", a, b, err)
	}
	return nil
}

func installFallback(releases int, stage, name string) (string, error) {
	if err := unix.Renameat(releases, stage, releases, name); err == nil {
		return "", nil
	}
	if err := exchange(releases, stage, name); err != nil {
		return "", err
	}
	return stage, nil
}

// syncFS flushes the filesystem holding the managed directory: every file,
// directory entry and symlink written by an apply, in one flush. One call
// costs about what a single fsync does, where syncing each new file and
// directory in turn would dominate an apply.
func syncFS(root int) error {
	if err := unix.Syncfs(root); err != nil {
		return fmt.Errorf("sync managed filesystem: %w", err)
	}
	return nil
}

// removeEntry deletes a directory tree below releases without following symlinks.
func (a *Applier) removeRelease(name string) error {
	root, err := os.OpenRoot(filepath.Join(a.cfg.Dir, releasesDir))
	if err != nil {
		return fmt.Errorf("open releases: %w", err)
	}
	defer root.Close()
	if err := root.RemoveAll(name); err != nil {
		return fmt.Errorf("remove release %s: %w", name, err)
	}
	return nil
}

// prunePlan is what pruning removes once an apply is done.
type prunePlan struct {
	remove []string
	// recycle is the newest release among those to remove; its directory
	// is reused as the stage of the new release.
	recycle string
}

// planPrune keeps the newest Keep releases (counting the new one) and the
// revisions in keep; every other release and every stage directory left by
// an interrupted apply is to go.
func (a *Applier) planPrune(newRev uint64, keep []uint64) (prunePlan, error) {
	entries, err := os.ReadDir(filepath.Join(a.cfg.Dir, releasesDir))
	if err != nil {
		return prunePlan{}, fmt.Errorf("list releases: %w", err)
	}
	var plan prunePlan
	revs := []uint64{newRev}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, stagePrefix) {
			plan.remove = append(plan.remove, name)
			continue
		}
		if rev, ok := parseReleaseName(name); ok && e.IsDir() && rev != newRev {
			revs = append(revs, rev)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] > revs[j] })
	for i, rev := range revs {
		if i < a.cfg.Keep || rev == newRev || slices.Contains(keep, rev) {
			continue
		}
		if plan.recycle == "" {
			plan.recycle = releaseName(rev)
		}
		plan.remove = append(plan.remove, releaseName(rev))
	}
	return plan, nil
}

// prune removes the planned entries, except skip (already reused).
func (a *Applier) prune(plan prunePlan, skip string) error {
	var errs []error
	for _, name := range plan.remove {
		if name == skip {
			continue
		}
		if err := a.removeRelease(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Current returns the revision the `current` link points at; ok is false
// when no release is current. It reads one symlink, which an apply replaces
// atomically, so it does not wait for an apply in progress.
func (a *Applier) Current() (rev uint64, ok bool, err error) {
	root, err := a.openRoot()
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(root)
	return readCurrent(root)
}
