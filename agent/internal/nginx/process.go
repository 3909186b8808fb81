package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runNginx runs nginx with the configured arguments plus extra and returns
// its combined output (nginx writes its messages to stderr).
func (a *Applier) runNginx(ctx context.Context, extra ...string) (string, error) {
	args := append(append([]string(nil), a.cfg.NginxArgs...), extra...)
	cmd := exec.CommandContext(ctx, a.cfg.NginxBinary, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		return text, fmt.Errorf("nginx %s: %w", strings.Join(extra, " "), err)
	}
	return text, nil
}

// master is the running nginx master process.
type master struct {
	pid int
}

// findMaster reads the pid file and checks the process is an nginx master,
// so a stale pid file never makes us signal an unrelated process.
func (a *Applier) findMaster() (master, error) {
	data, err := os.ReadFile(a.cfg.PIDFile)
	if err != nil {
		return master{}, fmt.Errorf("read nginx pid file: %w; is nginx running?", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return master{}, fmt.Errorf("nginx pid file %s is empty; is nginx running?", a.cfg.PIDFile)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return master{}, fmt.Errorf("nginx pid file %s holds %q, not a process id", a.cfg.PIDFile, strings.TrimSpace(string(data)))
	}
	m := master{pid: pid}
	if !m.alive() {
		return master{}, fmt.Errorf("nginx master %d from %s is not running; is nginx running?", pid, a.cfg.PIDFile)
	}
	return m, nil
}

// alive reports whether the process exists, is not a zombie, and still
// carries nginx's master process title.
func (m master) alive() bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.pid))
	if err != nil {
		return false
	}
	return bytes.HasPrefix(cmdline, []byte("nginx: master process"))
}

// children lists the master's child processes (its workers, cache manager
// and loader).
func (m master) children() (map[int]bool, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", m.pid, m.pid))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(fmt.Sprintf("/proc/%d", m.pid)); serr == nil {
			return scanChildren(m.pid) // kernel without CONFIG_PROC_CHILDREN
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list children of nginx master %d: %w", m.pid, err)
	}
	kids := map[int]bool{}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			kids[pid] = true
		}
	}
	return kids, nil
}

// scanChildren finds the children of pid by reading every /proc/<n>/stat.
func scanChildren(pid int) (map[int]bool, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	kids := map[int]bool{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids[n] = true
		}
	}
	return kids, nil
}

// refusedError is a reload the master refused: it logged [emerg] and kept
// running the old configuration, so no rollback reload is needed.
type refusedError struct {
	lines string
}

func (e *refusedError) Error() string { return "nginx refused the new configuration: " + e.lines }

// logMark is a position in the error log.
type logMark struct {
	path   string
	offset int64
}

func (a *Applier) markErrorLog() logMark {
	if a.cfg.ErrorLog == "" {
		return logMark{}
	}
	fi, err := os.Stat(a.cfg.ErrorLog)
	if err != nil {
		return logMark{path: a.cfg.ErrorLog}
	}
	return logMark{path: a.cfg.ErrorLog, offset: fi.Size()}
}

// emergSince returns the [emerg] lines written after the mark.
func (l logMark) emergSince() string {
	if l.path == "" {
		return ""
	}
	f, err := os.Open(l.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := l.offset
	if fi.Size() < off {
		off = 0 // rotated
	}
	if fi.Size() == off {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, off, fi.Size()-off), 1<<20))
	if err != nil {
		return ""
	}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "[emerg]") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return strings.Join(lines, "\n")
}

// reload signals the master to load the configuration and waits for proof
// it did: new worker processes. This is what `nginx -s reload` does (read
// the pid file, send SIGHUP) without parsing the whole configuration once
// more first. signalled reports whether the master may have loaded the new
// configuration, which decides whether a rollback must reload again.
func (a *Applier) reload(ctx context.Context, rev uint64) (signalled bool, err error) {
	m, err := a.findMaster()
	if err != nil {
		return false, err
	}
	before, err := m.children()
	if err != nil {
		return false, err
	}
	mark := a.markErrorLog()
	if err := unix.Kill(m.pid, unix.SIGHUP); err != nil {
		return false, fmt.Errorf("signal nginx master %d to reload: %w", m.pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReloadTimeout)
	defer cancel()
	if err := a.waitGeneration(ctx, m, before, mark); err != nil {
		var refused *refusedError
		return !errors.As(err, &refused), err
	}
	if a.cfg.ReloadCheck != nil && rev != 0 {
		if err := a.cfg.ReloadCheck(ctx, rev); err != nil {
			return true, fmt.Errorf("reload check for revision %d: %w", rev, err)
		}
	}
	return true, nil
}

// waitGeneration polls until the master runs a worker it did not have
// before the signal: a successful reload always starts new workers, and
// only after loading the whole configuration. It stops early when the
// master logs [emerg] (it refused the configuration and keeps the old one)
// or dies, and fails when ctx ends.
//
// The old workers keep accepting for a short while (the master gives the
// new ones 100ms before it asks the old ones to finish), as with any nginx
// reload; a ReloadCheck that polls, like RevisionURLCheck, sees the switch.
func (a *Applier) waitGeneration(ctx context.Context, m master, before map[int]bool, mark logMark) error {
	// Poll finely while a reload of a small configuration may finish, then
	// back off for large ones.
	start := time.Now()
	for {
		if !m.alive() {
			return fmt.Errorf("nginx master %d exited during the reload", m.pid)
		}
		kids, err := m.children()
		if err != nil {
			return err
		}
		if newGeneration(kids, before) {
			return nil
		}
		if lines := mark.emergSince(); lines != "" && !retryingBind(lines) {
			return &refusedError{lines: lines}
		}
		interval := 500 * time.Microsecond
		if time.Since(start) > 20*time.Millisecond {
			interval = 2 * time.Millisecond
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("nginx master %d started no workers with the new configuration within %s: %w", m.pid, a.cfg.ReloadTimeout, ctx.Err())
		case <-t.C:
		}
	}
}

// retryingBind reports whether the master is still in its bind retry loop: a
// listen address in use is tried five times, half a second apart, each
// failure logged as [emerg], before it gives up with "still could not
// bind()". Until then it has not finished with the signal, so a verdict now
// would let the next reload's signal meet the same loop and its later lines
// be taken for that reload's refusal.
func retryingBind(emerg string) bool {
	return strings.Contains(emerg, "bind() to") && !strings.Contains(emerg, "still could not bind()")
}

// newGeneration reports whether kids holds a worker that was not in before.
// A freshly forked child carries the master's title until it finished its
// worker setup, so the title says when it is ready to accept.
func newGeneration(kids, before map[int]bool) bool {
	for pid := range kids {
		if before[pid] {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.HasPrefix(cmdline, []byte("nginx: worker process")) {
			return true
		}
	}
	return false
}
