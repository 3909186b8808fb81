package nginx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// source is the release a new one may share unchanged files with.
type source struct {
	dir int // open release directory, or -1
	idx map[string]manifestEntry
}

// writeStage makes the stage directory under releases hold exactly the
// release and its manifest, and verifies every file it keeps. The stage is
// either empty or a recycled old release that pruning would delete anyway;
// either way the result is the same tree:
//
//   - a file already there with the wanted content and mode is kept;
//   - a file there that no other release shares is rewritten in place;
//   - a file the source (current) release has, with the same content and
//     mode and still intact on disk, is hard-linked from it;
//   - anything else is created, and entries the release lacks are removed.
//
// Creating inodes is by far the most expensive part of an apply, and
// release directories are never edited once applied, so sharing them is
// safe; Drift would report any edit. Nothing is synced here: the apply
// syncs the filesystem once, while nginx tests the release.
func writeStage(ctx context.Context, releases int, stage string, rel Release, previous uint64, src source, cache *hashCache) (*manifest, error) {
	stageFD, err := unix.Openat(releases, stage, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open stage: %w", err)
	}
	defer unix.Close(stageFD)

	entries := make([]manifestEntry, len(rel.Files))
	want := make(map[string]int, len(rel.Files))
	wantDirs := map[string]bool{}
	for i, f := range rel.Files {
		entries[i] = manifestEntry{Path: f.Path, SHA256: sum(f.Content), Mode: modeString(fileMode(f.Mode)), Size: int64(len(f.Content))}
		want[f.Path] = i
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			wantDirs[d] = true
		}
	}

	// Clear out what the release does not have, and open the directories
	// it keeps.
	dst := map[string]int{".": stageFD}
	present := map[string]bool{}
	defer func() {
		for d, fd := range dst {
			if d != "." {
				unix.Close(fd)
			}
		}
	}()
	if err := sweep(stageFD, "", want, wantDirs, dst, present); err != nil {
		return nil, err
	}

	// Create missing directories, parents first.
	dirNames := make([]string, 0, len(wantDirs))
	for d := range wantDirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	srcDirs := map[string]int{".": src.dir}
	defer func() {
		for d, fd := range srcDirs {
			if d != "." && fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, d := range dirNames {
		if _, ok := dst[d]; !ok {
			parent, base := dst[path.Dir(d)], path.Base(d)
			if err := unix.Mkdirat(parent, base, 0o755); err != nil {
				return nil, fmt.Errorf("create directory %s: %w", d, err)
			}
			fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("open directory %s: %w", d, err)
			}
			dst[d] = fd
		}
		srcDirs[d] = -1
		if src.dir >= 0 {
			if sfd, err := openDirAt(src.dir, d); err == nil {
				srcDirs[d] = sfd
			}
		}
	}

	// The manifest is known up front, so it is written alongside the files.
	m := &manifest{Revision: rel.Revision, Previous: previous, Files: slices.Clone(entries)}
	manifestDone := make(chan error, 1)
	go func() { manifestDone <- writeManifest(stageFD, m) }()

	euid := os.Geteuid()
	jobs := make(chan int)
	errc := make(chan error, 1)
	workers := min(len(rel.Files), max(4, 2*runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f := rel.Files[i]
				dir, base := path.Dir(f.Path), path.Base(f.Path)
				if err := placeFile(cache, dst[dir], srcDirs[dir], base, f.Content, entries[i], present[f.Path], src.idx, euid); err != nil {
					select {
					case errc <- fmt.Errorf("file %s: %w", f.Path, err):
					default:
					}
				}
			}
		}()
	}
	var ctxErr error
feed:
	for i := range rel.Files {
		select {
		case jobs <- i:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		case err := <-errc:
			errc <- err
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	manifestErr := <-manifestDone
	if ctxErr != nil {
		return nil, ctxErr
	}
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	if manifestErr != nil {
		return nil, manifestErr
	}
	return m, nil
}

// sweep walks the stage below rel: it removes every entry the release does
// not want (and every symlink or special file), opens the directories it
// keeps into dst, and records the wanted files already present.
func sweep(fd int, rel string, want map[string]int, wantDirs map[string]bool, dst map[string]int, present map[string]bool) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	df := os.NewFile(uintptr(dup), rel)
	list, err := df.ReadDir(-1)
	df.Close()
	if err != nil {
		return fmt.Errorf("list stage %q: %w", rel, err)
	}
	for _, e := range list {
		name := e.Name()
		p := path.Join(rel, name)
		if rel == "" && name == manifestName {
			continue // rewritten by writeManifest
		}
		typ := e.Type() & fs.ModeType
		switch {
		case typ == fs.ModeDir && wantDirs[p]:
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open stage %q: %w", p, err)
			}
			dst[p] = sub
			if err := sweep(sub, p, want, wantDirs, dst, present); err != nil {
				return err
			}
		case typ == fs.ModeDir:
			if err := removeTreeAt(fd, name); err != nil {
				return fmt.Errorf("clear stage %q: %w", p, err)
			}
		case typ == 0 && hasKey(want, p):
			present[p] = true
		default:
			if err := unix.Unlinkat(fd, name, 0); err != nil {
				return fmt.Errorf("clear stage %q: %w", p, err)
			}
		}
	}
	return nil
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// removeTreeAt deletes name below dir without following symlinks.
func removeTreeAt(dir int, name string) error {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	sub, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dup, err := unix.Dup(sub)
	if err != nil {
		unix.Close(sub)
		return err
	}
	df := os.NewFile(uintptr(dup), name)
	names, err := df.Readdirnames(-1)
	df.Close()
	if err == nil {
		for _, n := range names {
			if err = removeTreeAt(sub, n); err != nil {
				break
			}
		}
	}
	unix.Close(sub)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}

// placeFile makes name in dstDir hold content with the wanted mode, in the
// cheapest way that leaves a verified, unshared-or-identical file.
func placeFile(cache *hashCache, dstDir, srcDir int, name string, content []byte, want manifestEntry, present bool, srcIdx map[string]manifestEntry, euid int) error {
	mode, err := parseMode(want.Mode)
	if err != nil {
		return err
	}
	if present {
		st, err := cache.state(dstDir, name, want.Size)
		if err == nil && st.regular && st.uid == euid {
			if st.sha256 == want.SHA256 && st.mode == mode {
				return nil // recycled and identical
			}
			if st.nlink == 1 {
				if err := rewriteAt(dstDir, name, content, mode); err != nil {
					return err
				}
				cache.remember(dstDir, name, want.SHA256)
				return nil
			}
		}
		if err := unix.Unlinkat(dstDir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("replace: %w", err)
		}
	}
	if srcDir >= 0 {
		if have, ok := srcIdx[want.Path]; ok && have.SHA256 == want.SHA256 && have.Mode == want.Mode {
			st, err := cache.state(srcDir, name, want.Size)
			if err == nil && st.regular && st.sha256 == want.SHA256 && st.mode == mode && st.uid == euid {
				err := unix.Linkat(srcDir, name, dstDir, name, 0)
				if err == nil {
					cache.remember(dstDir, name, want.SHA256) // linking changed its ctime
					return nil
				}
				if !errors.Is(err, unix.EMLINK) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EPERM) {
					return fmt.Errorf("link from current release: %w", err)
				}
			}
		}
	}
	if err := writeNew(dstDir, name, content, mode); err != nil {
		return err
	}
	cache.remember(dstDir, name, want.SHA256)
	return nil
}

// rewriteAt replaces the content of an existing, unshared file in place.
func rewriteAt(dir int, name string, data []byte, mode fs.FileMode) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	return finishWrite(f, name, data, mode)
}
