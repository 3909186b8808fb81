package nginx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// rollbackTimeout bounds a rollback that runs after the caller's context
// has ended: putting nginx back matters more than the deadline.
const rollbackTimeout = time.Minute

// Apply makes rel the current release: write and verify its files, swap
// `current`, `nginx -t`, reload, confirm; on failure restore the previous
// release. A release that is already current and intact is a no-op.
//
// The error is non-nil only when nothing was changed: the release is
// invalid, or writing it failed before the swap. Every nginx result,
// including failures, is an Outcome with a nil error.
func (a *Applier) Apply(ctx context.Context, rel Release) (Outcome, error) {
	return a.apply(ctx, rel, false)
}

// Reapply restores the current release from the files the controller sent
// again, whatever was edited behind the agent's back, then tests and
// reloads nginx. rel must be the current revision (ErrNotCurrent otherwise).
func (a *Applier) Reapply(ctx context.Context, rel Release) (Outcome, error) {
	return a.apply(ctx, rel, true)
}

// state is the managed directory before an apply.
type state struct {
	has      bool
	rev      uint64
	manifest *manifest // nil when unreadable
}

func (a *Applier) apply(ctx context.Context, rel Release, force bool) (Outcome, error) {
	start := time.Now()
	if err := rel.Validate(); err != nil {
		return Outcome{}, fmt.Errorf("release %d: %w", rel.Revision, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	root, err := a.openRoot()
	if err != nil {
		return Outcome{}, err
	}
	defer unix.Close(root)
	releases, err := openDirAt(root, releasesDir)
	if err != nil {
		return Outcome{}, err
	}
	defer unix.Close(releases)

	var st state
	st.rev, st.has, err = readCurrent(root)
	if err != nil {
		// A current link we did not write: treat as no release, the apply repairs it.
		a.log.Warn("ignoring unexpected current link", "error", err)
		st = state{}
	}
	src := source{dir: -1}
	if st.has {
		if fd, err := openDirAt(releases, releaseName(st.rev)); err == nil {
			src.dir = fd
			defer unix.Close(fd)
			if m, err := a.cachedManifest(fd, st.rev); err == nil {
				st.manifest = m
				src.idx = m.index()
			} else {
				a.log.Warn("current release has no usable manifest", "revision", st.rev, "error", err)
			}
		} else {
			a.log.Warn("current release directory is unusable", "revision", st.rev, "error", err)
		}
	}
	if force && (!st.has || st.rev != rel.Revision) {
		return Outcome{}, fmt.Errorf("reapply release %d: %w (current is %d)", rel.Revision, ErrNotCurrent, st.rev)
	}
	sameRev := st.has && st.rev == rel.Revision
	if sameRev && !force && src.dir >= 0 && st.manifest != nil && sameFiles(st.manifest, rel) {
		d, err := diffTree(src.dir, st.manifest)
		if err == nil && d.Clean() {
			a.log.Debug("release already current and intact", "revision", rel.Revision)
			return Outcome{Code: Applied, Revision: rel.Revision, Duration: time.Since(start), Unchanged: true}, nil
		}
	}

	previous := st.rev
	if sameRev {
		previous = 0
		if st.manifest != nil {
			previous = st.manifest.Previous
		}
	}
	prepared0 := time.Since(start)
	phase := time.Now()
	// current.tmp can point at the release before it exists.
	prepared := make(chan error, 1)
	if sameRev {
		prepared <- nil
	} else {
		go func() { prepared <- prepareCurrent(root, rel.Revision) }()
	}
	// Keep what either outcome needs: the new release, the one it replaces
	// and that one's previous.
	var prevOfCur uint64
	if st.manifest != nil {
		prevOfCur = st.manifest.Previous
	}
	plan, err := a.planPrune(rel.Revision, []uint64{st.rev, prevOfCur})
	if err != nil {
		<-prepared
		return Outcome{}, err
	}
	var written *manifest
	stage, err := a.makeStage(releases, rel.Revision, plan.recycle)
	if err == nil {
		a.hashes.begin()
		written, err = writeStage(ctx, releases, stage, rel, previous, src, a.hashes)
	}
	if prepErr := <-prepared; err == nil && prepErr != nil {
		err = prepErr
	}
	if err != nil {
		if stage != "" {
			err = errors.Join(err, a.removeRelease(stage))
		}
		if !sameRev {
			_ = unix.Unlinkat(root, currentTemp, 0)
		}
		return Outcome{}, fmt.Errorf("write release %d: %w", rel.Revision, err)
	}
	displaced, err := install(releases, stage, rel.Revision)
	if err != nil {
		return Outcome{}, errors.Join(fmt.Errorf("install release %d: %w", rel.Revision, err), a.removeRelease(stage))
	}
	tx := &txn{a: a, root: root, releases: releases, st: st, rev: rel.Revision, displaced: displaced}
	if !sameRev {
		if err := commitCurrent(root); err != nil {
			if rbErr := tx.undoFiles(); rbErr != nil {
				return a.finish(start, rel.Revision, RollbackFailed, joinOutput(err.Error(), "rollback: "+rbErr.Error())), nil
			}
			return Outcome{}, fmt.Errorf("switch to release %d: %w", rel.Revision, err)
		}
	}
	writeTime := time.Since(phase)

	// While nginx tests and reloads the release: make it durable with one
	// filesystem flush, and prune old releases. Apply never returns before
	// both finished.
	synced := make(chan error, 1)
	go func() { synced <- syncFS(root) }()
	pruned := make(chan error, 1)
	go func() { pruned <- a.prune(plan, plan.recycle) }()
	waitSync := func() error {
		if synced == nil {
			return nil
		}
		err := <-synced
		synced = nil
		return err
	}
	waitPrune := func() {
		if pruned == nil {
			return
		}
		if err := <-pruned; err != nil {
			a.log.Warn("could not prune old releases", "error", err)
		}
		pruned = nil
	}
	// Before root is closed, on every path.
	defer waitSync()
	defer waitPrune()

	// From here on nginx is involved; a rollback must run even if the
	// caller gives up, so it gets its own context.
	phase = time.Now()
	testOut, err := a.runNginx(ctx, "-t")
	tested := time.Since(phase)
	if err != nil {
		waitPrune()
		_ = waitSync() // the rollback syncs again
		if rbErr := tx.rollback(context.WithoutCancel(ctx), false); rbErr != nil {
			return a.finish(start, rel.Revision, RollbackFailed, joinOutput(testOut, "rollback: "+rbErr.Error())), nil
		}
		if ctx.Err() != nil && testOut == "" {
			testOut = "nginx -t interrupted: " + ctx.Err().Error()
		}
		return a.finish(start, rel.Revision, TestFailed, testOut), nil
	}
	phase = time.Now()
	signalled, err := a.reload(ctx, rel.Revision)
	reloaded := time.Since(phase)
	if err != nil {
		reloadOut := err.Error()
		var refused *refusedError
		if errors.As(err, &refused) {
			reloadOut = refused.lines
		}
		waitPrune()
		_ = waitSync()
		if rbErr := tx.rollback(context.WithoutCancel(ctx), signalled); rbErr != nil {
			return a.finish(start, rel.Revision, RollbackFailed, joinOutput(reloadOut, "rollback: "+rbErr.Error())), nil
		}
		return a.finish(start, rel.Revision, ReloadFailedRolledBack, reloadOut), nil
	}
	phase = time.Now()
	waitPrune()
	if err := waitSync(); err != nil {
		// nginx runs the release, so it is applied; say it may not survive
		// a crash.
		a.log.Error("release applied but not synced to disk", "revision", rel.Revision, "error", err)
		testOut = joinOutput(testOut, "warning: "+err.Error()+"; the release may not survive a crash")
	}
	a.log.Debug("apply phases", "revision", rel.Revision, "prepare", prepared0, "write", writeTime, "test", tested, "reload", reloaded, "sync_wait", time.Since(phase))

	if displaced != "" {
		if err := a.removeRelease(displaced); err != nil {
			a.log.Warn("could not remove replaced release copy", "error", err)
		}
	}
	a.hashes.commit()
	if fd, err := openDirAt(releases, releaseName(rel.Revision)); err == nil {
		a.keepManifest(fd, written)
		unix.Close(fd)
	}
	return a.finish(start, rel.Revision, Applied, testOut), nil
}

func (a *Applier) finish(start time.Time, rev uint64, code Code, output string) Outcome {
	o := Outcome{Code: code, Revision: rev, Output: output, Duration: time.Since(start)}
	if code == Applied {
		a.log.Info("release applied", "revision", rev, "duration", o.Duration)
	} else {
		a.log.Warn("release not applied", "revision", rev, "outcome", code.String(), "output", output, "duration", o.Duration)
	}
	return o
}

func sameFiles(m *manifest, rel Release) bool {
	if len(m.Files) != len(rel.Files) {
		return false
	}
	idx := m.index()
	for _, f := range rel.Files {
		e, ok := idx[f.Path]
		if !ok || e.SHA256 != sum(f.Content) || e.Mode != modeString(fileMode(f.Mode)) {
			return false
		}
	}
	return true
}

func joinOutput(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "\n")
}

// txn undoes an apply that failed after the release was installed.
type txn struct {
	a         *Applier
	root      int
	releases  int
	st        state
	rev       uint64
	displaced string
}

// undoFiles puts `current` and the release directories back as they were.
func (t *txn) undoFiles() error {
	var errs []error
	sameRev := t.st.has && t.st.rev == t.rev
	switch {
	case sameRev:
		// current still names rev; exchanging the directories back is the swap.
	case t.st.has:
		if err := pointCurrent(t.root, t.st.rev); err != nil {
			errs = append(errs, err)
		}
	default:
		if err := clearCurrent(t.root); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	name := releaseName(t.rev)
	if t.displaced != "" {
		if err := exchange(t.releases, t.displaced, name); err != nil {
			return err
		}
		if err := t.a.removeRelease(t.displaced); err != nil {
			t.a.log.Warn("could not remove failed release", "error", err)
		}
		return nil
	}
	if err := t.a.removeRelease(name); err != nil {
		t.a.log.Warn("could not remove failed release", "error", err)
	}
	return nil
}

// rollback restores the files and, when nginx may have loaded the failed
// release, reloads it onto the previous one and confirms that.
func (t *txn) rollback(ctx context.Context, reload bool) error {
	ctx, cancel := context.WithTimeout(ctx, rollbackTimeout)
	defer cancel()
	if err := t.undoFiles(); err != nil {
		return err
	}
	if err := syncFS(t.root); err != nil {
		return err
	}
	if !reload {
		return nil
	}
	if !t.st.has {
		// Nothing was applied before: nginx runs without managed files now.
		if _, err := t.a.reload(ctx, 0); err != nil {
			return fmt.Errorf("reload without managed release: %w", err)
		}
		return nil
	}
	if _, err := t.a.reload(ctx, t.st.rev); err != nil {
		return fmt.Errorf("reload previous release %d: %w", t.st.rev, err)
	}
	return nil
}

// makeStage creates the directory a release is written into: the recycled
// old release renamed, when there is one, else a new empty directory.
func (a *Applier) makeStage(releases int, rev uint64, recycle string) (string, error) {
	stage := stagePrefix + releaseName(rev) + "-" + randomSuffix()
	if recycle != "" {
		err := unix.Renameat2(releases, recycle, releases, stage, unix.RENAME_NOREPLACE)
		if err == nil {
			return stage, nil
		}
		a.log.Warn("could not reuse old release directory", "release", recycle, "error", err)
	}
	if err := unix.Mkdirat(releases, stage, 0o755); err != nil {
		return "", fmt.Errorf("create stage for release %d: %w", rev, err)
	}
	return stage, nil
}
