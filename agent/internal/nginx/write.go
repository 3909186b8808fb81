package nginx

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// source is the release a new one may share unchanged files with.
type source struct {
	dir int // open release directory, or -1
	idx map[string]manifestEntry
}

// writeStage writes a release into a fresh stage directory under releases
// and returns the stage's name. Files whose content and mode equal the
// source's, and whose on-disk copy there still matches its manifest, are
// hard-linked instead of rewritten: creating inodes is by far the most
// expensive part of an apply, and release directories are never edited.
// Everything new is synced before the stage is returned.
func writeStage(ctx context.Context, releases int, rel Release, previous uint64, src source) (string, error) {
	stage := stagePrefix + releaseName(rel.Revision) + "-" + randomSuffix()
	if err := unix.Mkdirat(releases, stage, 0o755); err != nil {
		return "", fmt.Errorf("create stage for release %d: %w", rel.Revision, err)
	}
	stageFD, err := unix.Openat(releases, stage, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return stage, fmt.Errorf("open stage: %w", err)
	}
	defer unix.Close(stageFD)

	// Directories first, parents before children.
	dirSet := map[string]bool{}
	for _, f := range rel.Files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			dirSet[d] = true
		}
	}
	dirNames := make([]string, 0, len(dirSet))
	for d := range dirSet {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	dst := map[string]int{".": stageFD}
	srcDirs := map[string]int{".": src.dir}
	defer func() {
		for d, fd := range dst {
			if d != "." {
				unix.Close(fd)
			}
		}
		for d, fd := range srcDirs {
			if d != "." && fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, d := range dirNames {
		parent := dst[path.Dir(d)]
		base := path.Base(d)
		if err := unix.Mkdirat(parent, base, 0o755); err != nil {
			return stage, fmt.Errorf("create directory %s: %w", d, err)
		}
		fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return stage, fmt.Errorf("open directory %s: %w", d, err)
		}
		dst[d] = fd
		srcDirs[d] = -1
		if src.dir >= 0 {
			if sfd, err := openDirAt(src.dir, d); err == nil {
				srcDirs[d] = sfd
			}
		}
	}

	entries := make([]manifestEntry, len(rel.Files))
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
				mode := fileMode(f.Mode)
				e := manifestEntry{Path: f.Path, SHA256: sum(f.Content), Mode: modeString(mode), Size: int64(len(f.Content))}
				entries[i] = e
				dir, base := path.Dir(f.Path), path.Base(f.Path)
				if err := placeFile(dst[dir], srcDirs[dir], base, f.Content, e, src.idx); err != nil {
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
	if ctxErr != nil {
		return stage, ctxErr
	}
	select {
	case err := <-errc:
		return stage, err
	default:
	}

	m := &manifest{Revision: rel.Revision, Previous: previous, Files: entries}
	if err := writeManifest(stageFD, m); err != nil {
		return stage, err
	}
	// New directory entries (files and hard links) become durable with
	// their directories.
	for d, fd := range dst {
		if err := unix.Fsync(fd); err != nil {
			return stage, fmt.Errorf("sync directory %s: %w", d, err)
		}
	}
	return stage, nil
}

// placeFile hard-links the file from the source release when it is known
// there with the same content and mode and still intact on disk; otherwise
// it writes the content fresh.
func placeFile(dstDir, srcDir int, name string, content []byte, want manifestEntry, srcIdx map[string]manifestEntry) error {
	if srcDir >= 0 {
		if have, ok := srcIdx[want.Path]; ok && have.SHA256 == want.SHA256 && have.Mode == want.Mode {
			st, err := readFileAt(srcDir, name)
			if err == nil && st.regular && st.sha256 == want.SHA256 && modeString(st.mode) == want.Mode {
				err := unix.Linkat(srcDir, name, dstDir, name, 0)
				if err == nil {
					return nil
				}
				if !errors.Is(err, unix.EMLINK) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EPERM) {
					return fmt.Errorf("link from previous release: %w", err)
				}
			}
		}
	}
	mode, err := parseMode(want.Mode)
	if err != nil {
		return err
	}
	return writeNew(dstDir, name, content, mode)
}
