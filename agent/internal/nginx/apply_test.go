package nginx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

func TestApplyServesReleaseAndIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	o := f.mustApply(release(1, "http/a.conf", server(f.port, "a.test", "a one")))
	if o.Revision != 1 || o.Unchanged || !strings.Contains(o.Output, "test is successful") {
		t.Fatalf("outcome = %+v, want revision 1 with nginx -t output", o)
	}
	f.wantBody("a.test", "a one")

	rel2 := release(2,
		"http/a.conf", server(f.port, "a.test", "a two"),
		"http/b.conf", server(f.port, "b.test", "b two"))
	rel2.Files[1].Mode = 0o600
	f.mustApply(rel2)
	f.wantBody("a.test", "a two")
	f.wantBody("b.test", "b two")
	if got := f.currentTarget(); got != "releases/2" {
		t.Fatalf("current -> %q, want releases/2", got)
	}
	fi, err := os.Stat(filepath.Join(f.dir, "current", "http", "b.conf"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("b.conf mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "releases", "2", ".manifest.json")); err != nil {
		t.Fatalf("manifest missing: %v", err)
	}

	// Applying the current, intact revision again touches nothing: nginx
	// keeps the same workers.
	before, err := f.ngx.master().children()
	if err != nil {
		t.Fatal(err)
	}
	o = f.mustApply(rel2)
	if !o.Unchanged {
		t.Fatalf("re-applying the current revision: %+v, want Unchanged", o)
	}
	after, err := f.ngx.master().children()
	if err != nil {
		t.Fatal(err)
	}
	// Old workers may still be exiting; a reload would have added new ones.
	for pid := range after {
		if !before[pid] {
			t.Fatalf("nginx started process %d on a no-op apply (before %v, after %v)", pid, before, after)
		}
	}
	f.wantBody("b.test", "b two")
}

func TestApplyBrokenReleaseIsTestFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustApply(release(1, "http/a.conf", server(f.port, "a.test", "good")))

	o := f.apply(release(2,
		"http/a.conf", server(f.port, "a.test", "never served"),
		"http/broken.conf", "server { listen 127.0.0.1:1; bogus_directive on; }\n"))
	if o.Code != TestFailed {
		t.Fatalf("code = %s, want TEST_FAILED; output: %s", o.Code, o.Output)
	}
	if !strings.Contains(o.Output, `unknown directive "bogus_directive"`) || !strings.Contains(o.Output, "broken.conf") {
		t.Fatalf("output lacks nginx's message: %q", o.Output)
	}
	f.wantBody("a.test", "good")
	if got := f.currentTarget(); got != "releases/1" {
		t.Fatalf("current -> %q, want releases/1", got)
	}
	if names := f.releaseNames(); !slices.Equal(names, []string{"1"}) {
		t.Fatalf("releases = %v, want only the previous one", names)
	}
}

func TestApplyFirstReleaseBrokenLeavesNothingCurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	o := f.apply(release(1, "http/a.conf", "server { listen 127.0.0.1:1 }\n"))
	if o.Code != TestFailed {
		t.Fatalf("code = %s, want TEST_FAILED; output %s", o.Code, o.Output)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, "current")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("current exists after the first release failed: %v", err)
	}
	if names := f.releaseNames(); len(names) != 0 {
		t.Fatalf("releases = %v, want none", names)
	}
	// And the managed directory is usable afterwards.
	f.mustApply(release(2, "http/a.conf", server(f.port, "a.test", "fixed")))
	f.wantBody("a.test", "fixed")
}

// A port held by another socket passes `nginx -t` (which ignores
// EADDRINUSE) but makes the master's reload fail to bind.
func TestApplyReloadRefusedRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	f.mustApply(release(1, "http/a.conf", server(f.port, "a.test", "one")))
	o := f.apply(release(2,
		"http/a.conf", server(f.port, "a.test", "two"),
		"http/b.conf", server(takenPort, "b.test", "two")))
	if o.Code != ReloadFailedRolledBack {
		t.Fatalf("code = %s, want RELOAD_FAILED_ROLLED_BACK; output %s", o.Code, o.Output)
	}
	if !strings.Contains(o.Output, "bind()") || !strings.Contains(o.Output, fmt.Sprint(takenPort)) {
		t.Fatalf("output lacks nginx's bind error: %q", o.Output)
	}
	f.wantBody("a.test", "one")
	if got := f.currentTarget(); got != "releases/1" {
		t.Fatalf("current -> %q, want releases/1", got)
	}
	if d, err := f.a.Drift(); err != nil || !d.Clean() || d.Revision != 1 {
		t.Fatalf("after rollback Drift = %+v, %v; want clean revision 1", d, err)
	}
	// The master finished with the refused reload before the outcome was
	// reported, so the next release is judged on its own.
	f.mustApply(release(3, "http/a.conf", server(f.port, "a.test", "three")))
	f.wantBody("a.test", "three")
}

// The rendered configuration answers its revision; a release that answers
// the wrong one is loaded, found wrong, and rolled back.
func TestApplyRevisionCheckRollsBack(t *testing.T) {
	t.Parallel()
	// The URL needs the fixture's port, known only after it starts.
	var check func(context.Context, uint64) error
	f := newFixture(t, func(c *Config) {
		c.ReloadTimeout = 3 * time.Second
		c.ReloadCheck = func(ctx context.Context, rev uint64) error { return check(ctx, rev) }
	})
	port := f.port
	var err error
	check, err = RevisionURLCheck(fmt.Sprintf("http://127.0.0.1:%d/.gatehouse/revision", port))
	if err != nil {
		t.Fatal(err)
	}
	withRevision := func(name, body, rev string) string {
		return fmt.Sprintf("server {\n listen 127.0.0.1:%d;\n server_name %s;\n location = /.gatehouse/revision { return 200 %q; }\n location / { return 200 %q; }\n}\n", port, name, rev, body)
	}

	f.mustApply(release(1, "http/a.conf", withRevision("a.test", "one", "1")))
	f.wantBody("a.test", "one")
	o := f.apply(release(2, "http/a.conf", withRevision("a.test", "two", "1")))
	if o.Code != ReloadFailedRolledBack {
		t.Fatalf("code = %s, want RELOAD_FAILED_ROLLED_BACK; output %s", o.Code, o.Output)
	}
	if !strings.Contains(o.Output, `answered revision "1", want "2"`) {
		t.Fatalf("output = %q, want the failed check", o.Output)
	}
	f.wantBody("a.test", "one")
	f.mustApply(release(3, "http/a.conf", withRevision("a.test", "three", "3")))
	f.wantBody("a.test", "three")
}

func TestApplyRollbackFailed(t *testing.T) {
	t.Parallel()
	var unhealthy atomic.Bool
	f := newFixture(t, func(c *Config) {
		c.ReloadCheck = func(ctx context.Context, rev uint64) error {
			if unhealthy.Load() {
				return fmt.Errorf("upstream health check failed for revision %d", rev)
			}
			return nil
		}
	})
	f.mustApply(release(1, "http/a.conf", server(f.port, "a.test", "one")))
	unhealthy.Store(true)
	o := f.apply(release(2, "http/a.conf", server(f.port, "a.test", "two")))
	if o.Code != RollbackFailed {
		t.Fatalf("code = %s, want ROLLBACK_FAILED; output %s", o.Code, o.Output)
	}
	for _, want := range []string{"revision 2", "rollback: reload previous release 1", "revision 1"} {
		if !strings.Contains(o.Output, want) {
			t.Fatalf("output %q lacks %q", o.Output, want)
		}
	}
	// The files were put back and nginx reloaded them, even though the
	// check could not confirm it.
	if got := f.currentTarget(); got != "releases/1" {
		t.Fatalf("current -> %q, want releases/1", got)
	}
	f.wantBody("a.test", "one")
}

func TestApplyPrunesToKeep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil) // default Keep, 10
	for rev := uint64(1); rev <= 13; rev++ {
		f.mustApply(release(rev, "http/a.conf", server(f.port, "a.test", fmt.Sprint("r", rev))))
	}
	want := []string{"10", "11", "12", "13", "4", "5", "6", "7", "8", "9"}
	if got := f.releaseNames(); !slices.Equal(got, want) {
		t.Fatalf("releases = %v, want %v", got, want)
	}
	// A stage left by an interrupted apply is cleaned up by the next one.
	if err := os.Mkdir(filepath.Join(f.dir, "releases", ".stage-99-dead"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Going back to an old revision keeps it (current) and 13 (previous)
	// besides the newest ten.
	f.mustApply(release(2, "http/a.conf", server(f.port, "a.test", "r2")))
	want = []string{"10", "11", "12", "13", "2", "4", "5", "6", "7", "8", "9"}
	if got := f.releaseNames(); !slices.Equal(got, want) {
		t.Fatalf("releases = %v, want %v", got, want)
	}
	f.wantBody("a.test", "r2")
}

func TestPruneNeverDropsPrevious(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Keep = 1 })
	f.mustApply(release(5, "http/a.conf", server(f.port, "a.test", "five")))
	f.mustApply(release(3, "http/a.conf", server(f.port, "a.test", "three")))
	// Keep 1 keeps the newest (5) which is also previous, and current 3.
	if got := f.releaseNames(); !slices.Equal(got, []string{"3", "5"}) {
		t.Fatalf("releases = %v, want [3 5]", got)
	}
	f.mustApply(release(4, "http/a.conf", server(f.port, "a.test", "four")))
	// Newest 5 by number, current 4, previous 3.
	if got := f.releaseNames(); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Fatalf("releases = %v, want [3 4 5]", got)
	}
}

func TestDriftAndReapply(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rel := release(1,
		"http/a.conf", server(f.port, "a.test", "original"),
		"http/b.conf", server(f.port, "b.test", "bee"),
		"snippets/headers.inc", "add_header X-Test 1;\n")
	f.mustApply(rel)
	if d, err := f.a.Drift(); err != nil || !d.Clean() || d.Revision != 1 {
		t.Fatalf("fresh Drift = %+v, %v", d, err)
	}

	cur := filepath.Join(f.dir, "current")
	mustDo(t, os.WriteFile(filepath.Join(cur, "http", "a.conf"), []byte(server(f.port, "a.test", "edited by hand")), 0o644))
	mustDo(t, os.Remove(filepath.Join(cur, "http", "b.conf")))
	mustDo(t, os.WriteFile(filepath.Join(cur, "http", "c.conf"), []byte("# added\n"), 0o644))
	mustDo(t, os.Symlink("/etc/passwd", filepath.Join(cur, "http", "evil.conf")))
	mustDo(t, os.Chmod(filepath.Join(cur, "snippets", "headers.inc"), 0o666))

	d, err := f.a.Drift()
	if err != nil {
		t.Fatal(err)
	}
	want := Drift{
		Revision: 1,
		Added:    []string{"http/c.conf", "http/evil.conf"},
		Removed:  []string{"http/b.conf"},
		Modified: []string{"http/a.conf", "snippets/headers.inc"},
	}
	if !slices.Equal(d.Added, want.Added) || !slices.Equal(d.Removed, want.Removed) || !slices.Equal(d.Modified, want.Modified) || d.Revision != 1 {
		t.Fatalf("Drift = %+v, want %+v", d, want)
	}

	if _, err := f.a.Reapply(context.Background(), release(2)); !errors.Is(err, ErrNotCurrent) {
		t.Fatalf("Reapply of a revision that is not current: %v, want ErrNotCurrent", err)
	}
	o, err := f.a.Reapply(context.Background(), rel)
	if err != nil || o.Code != Applied || o.Unchanged {
		t.Fatalf("Reapply = %+v, %v", o, err)
	}
	if d, err := f.a.Drift(); err != nil || !d.Clean() {
		t.Fatalf("Drift after Reapply = %+v, %v", d, err)
	}
	f.wantBody("a.test", "original")
	f.wantBody("b.test", "bee")
}

// A file edited by hand in the current release must not leak into the next
// release that carries the same file unchanged.
func TestHandEditDoesNotLeakIntoNextRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := server(f.port, "a.test", "from controller")
	f.mustApply(release(1, "http/a.conf", a, "http/b.conf", server(f.port, "b.test", "b1")))
	mustDo(t, os.WriteFile(filepath.Join(f.dir, "current", "http", "a.conf"), []byte(server(f.port, "a.test", "hand edit")), 0o644))

	f.mustApply(release(2, "http/a.conf", a, "http/b.conf", server(f.port, "b.test", "b2")))
	f.wantBody("a.test", "from controller")
	f.wantBody("b.test", "b2")
	if d, err := f.a.Drift(); err != nil || !d.Clean() {
		t.Fatalf("Drift = %+v, %v", d, err)
	}
}

// Applying the current revision when its files drifted rewrites them.
func TestApplySameRevisionRepairsDrift(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	rel := release(7, "http/a.conf", server(f.port, "a.test", "seven"))
	f.mustApply(rel)
	mustDo(t, os.Remove(filepath.Join(f.dir, "current", "http", "a.conf")))
	o := f.mustApply(rel)
	if o.Unchanged {
		t.Fatal("drifted release reported unchanged")
	}
	f.wantBody("a.test", "seven")
	if d, err := f.a.Drift(); err != nil || !d.Clean() {
		t.Fatalf("Drift = %+v, %v", d, err)
	}
	if got := f.releaseNames(); !slices.Equal(got, []string{"7"}) {
		t.Fatalf("releases = %v, want [7]", got)
	}
}

// A same-revision rewrite that nginx refuses puts the old directory back.
func TestApplySameRevisionFailureRestoresOldFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustApply(release(7, "http/a.conf", server(f.port, "a.test", "seven")))
	o := f.apply(release(7, "http/a.conf", "server { nonsense; }\n"))
	if o.Code != TestFailed {
		t.Fatalf("code = %s, want TEST_FAILED", o.Code)
	}
	f.wantBody("a.test", "seven")
	if d, err := f.a.Drift(); err != nil || !d.Clean() {
		t.Fatalf("Drift = %+v, %v", d, err)
	}
	if got := f.releaseNames(); !slices.Equal(got, []string{"7"}) {
		t.Fatalf("releases = %v, want [7]", got)
	}
}

func TestConcurrentAppliesAreSerialised(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	outcomes := make([]Outcome, 4)
	errs := make([]error, 4)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rev := uint64(i + 1)
			outcomes[i], errs[i] = f.a.Apply(context.Background(), release(rev, "http/a.conf", server(f.port, "a.test", fmt.Sprint("r", rev))))
		}()
	}
	wg.Wait()
	for i := range outcomes {
		if errs[i] != nil || outcomes[i].Code != Applied {
			t.Fatalf("apply %d: %+v, %v", i+1, outcomes[i], errs[i])
		}
	}
	d, err := f.a.Drift()
	if err != nil || !d.Clean() {
		t.Fatalf("Drift = %+v, %v", d, err)
	}
	f.wantBody("a.test", fmt.Sprint("r", d.Revision))
}

func TestReloadWithoutRunningNginx(t *testing.T) {
	t.Parallel()
	bin := nginxtest.Binary(t)
	prefix := readableTempDir(t)
	dir := filepath.Join(prefix, "gatehouse")
	conf := filepath.Join(prefix, "nginx.conf")
	mustDo(t, os.WriteFile(conf, []byte(fmt.Sprintf("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path %s/body; include %s/current/http/*.conf; }\n", prefix, prefix, prefix, dir)), 0o644))
	a, err := New(nil, Config{Dir: dir, NginxBinary: bin, NginxArgs: []string{"-p", prefix, "-c", conf}, PIDFile: filepath.Join(prefix, "nginx.pid")})
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.Apply(context.Background(), release(1, "http/a.conf", server(freePort(t), "a.test", "x")))
	if err != nil {
		t.Fatal(err)
	}
	// The signal never reached a master, so restoring the files is the
	// whole rollback.
	if o.Code != ReloadFailedRolledBack || !strings.Contains(o.Output, "is nginx running?") {
		t.Fatalf("outcome = %+v, want RELOAD_FAILED_ROLLED_BACK naming the missing master", o)
	}
	if _, err := os.Lstat(filepath.Join(dir, "current")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("current exists: %v", err)
	}
}

func TestChildrenMatchesProcScan(t *testing.T) {
	t.Parallel()
	ngx := startNginx(t, filepath.Join(t.TempDir(), "*.conf"))
	m := ngx.master()
	fast, err := m.children()
	if err != nil {
		t.Fatal(err)
	}
	slow, err := scanChildren(m.pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(fast) == 0 || !maps.Equal(fast, slow) {
		t.Fatalf("children %v, scan %v; want the same non-empty set", fast, slow)
	}
	if (master{pid: os.Getpid()}).alive() {
		t.Fatal("the test process was taken for an nginx master")
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
