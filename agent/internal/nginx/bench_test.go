package nginx

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The target: an agent apply (write, verify, swap, nginx -t, reload and
// wait for the new workers, sync) costs at most 1.2 times a bare
// `nginx -t && nginx -s reload` of the same files.
//
// Each iteration starts on an idle master: after a reload nginx waits 100ms
// before it retires the old workers and takes no signal meanwhile, so
// back-to-back reloads are paced by nginx itself, and bare reload signals
// sent faster than that merge into one reload. Waiting (untimed) for the
// old workers to go makes both benchmarks measure one real reload each.
//
// Compare
//
//	go test -run '^$' -bench 'BenchmarkApply|BenchmarkBareTestReload' -benchtime 10x ./agent/internal/nginx/
//
// BenchmarkApply/S/domains=N against BenchmarkBareTestReload/S/domains=N,
// for each shape S of shape_test.go.

var (
	benchDomains = []int{100, 5000}
	benchShapes  = []string{shapeRendered, shapeRenderedNoTLS, shapeMinimal}
)

// BenchmarkApply applies a new revision per iteration in which one domain
// changed, the common case of an admin editing one site.
func BenchmarkApply(b *testing.B) {
	for _, shape := range benchShapes {
		for _, n := range benchDomains {
			b.Run(fmt.Sprintf("%s/domains=%d", shape, n), func(b *testing.B) {
				f := newFixture(b, nil)
				set := newDomainSet(b, shape, f.dir)
				files := set.release(n)
				first := len(files) - n
				change := func(rev uint64) int {
					k := set.changeable(n, rev)
					files[first+k] = set.domain(k, rev)
					return k
				}
				// Reach the steady state of a node that has applied a while:
				// Keep releases on disk, the oldest one recycled by each apply.
				var rev uint64
				for rev < DefaultKeep+1 {
					rev++
					change(rev)
					f.mustApply(Release{Revision: rev, Files: files})
					f.settle()
				}
				var k int
				for b.Loop() {
					rev++
					k = change(rev)
					o, err := f.a.Apply(context.Background(), Release{Revision: rev, Files: files})
					if err != nil || o.Code != Applied {
						b.Fatalf("apply %d: %+v, %v", rev, o, err)
					}
					b.StopTimer()
					f.settle()
					b.StartTimer()
				}
				b.StopTimer()
				set.wantRevision(b, k, rev)
			})
		}
	}
}

// BenchmarkBareTestReload runs only `nginx -t` then `nginx -s reload` on the
// same number of domain files already on disk. With wait=true it also waits
// (timed) for the master to start its new workers, as an apply does: the
// difference to BenchmarkApply is then the agent's own work.
func BenchmarkBareTestReload(b *testing.B) {
	for _, shape := range benchShapes {
		for _, wait := range []bool{false, true} {
			for _, n := range benchDomains {
				name := fmt.Sprintf("%s/domains=%d", shape, n)
				if wait {
					name += "/wait=true"
				}
				b.Run(name, func(b *testing.B) { benchBare(b, shape, n, wait) })
			}
		}
	}
}

func benchBare(b *testing.B, shape string, n int, wait bool) {
	ngx, _ := benchFiles(b, shape, n)
	run := func(extra ...string) {
		out, err := exec.Command(ngx.bin, append(ngx.args(), extra...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("nginx %v: %v: %s", extra, err, out)
		}
	}
	newWorkers := func(before map[int]bool) {
		for {
			kids, err := ngx.master().children()
			if err != nil {
				b.Fatal(err)
			}
			if newGeneration(kids, before) {
				return
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	for b.Loop() {
		before, err := ngx.master().children()
		if err != nil {
			b.Fatal(err)
		}
		run("-t")
		run("-s", "reload")
		if !wait {
			b.StopTimer()
		}
		newWorkers(before)
		b.StopTimer()
		ngx.settle(b)
		b.StartTimer()
	}
}

// BenchmarkNginxParts times the two halves an apply cannot avoid, on the same
// files: `nginx -t` (a fresh process parsing everything) and the master's own
// reload (SIGHUP until its new workers run). It also reports the master's
// minor page faults and system time per reload, read from /proc: the master
// builds the new configuration in memory it shares copy-on-write with the
// workers it forked before, which makes its reload slower than a fresh parse.
//
//	go test -run '^$' -bench BenchmarkNginxParts -benchtime 10x ./agent/internal/nginx/
func BenchmarkNginxParts(b *testing.B) {
	for _, shape := range benchShapes {
		for _, n := range benchDomains {
			b.Run(fmt.Sprintf("%s/domains=%d/test", shape, n), func(b *testing.B) {
				ngx, _ := benchFiles(b, shape, n)
				for b.Loop() {
					if out, err := exec.Command(ngx.bin, append(ngx.args(), "-t")...).CombinedOutput(); err != nil {
						b.Fatalf("nginx -t: %v: %s", err, out)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/domains=%d/master-reload", shape, n), func(b *testing.B) {
				ngx, _ := benchFiles(b, shape, n)
				var faults, sysTicks int64
				for b.Loop() {
					b.StopTimer()
					ngx.settle(b)
					m := ngx.master()
					before, err := m.children()
					if err != nil {
						b.Fatal(err)
					}
					f0, s0 := procFaultsAndSys(b, m.pid)
					b.StartTimer()
					if err := syscall.Kill(m.pid, syscall.SIGHUP); err != nil {
						b.Fatal(err)
					}
					for {
						kids, err := m.children()
						if err != nil {
							b.Fatal(err)
						}
						if newGeneration(kids, before) {
							break
						}
						time.Sleep(500 * time.Microsecond)
					}
					b.StopTimer()
					f1, s1 := procFaultsAndSys(b, m.pid)
					faults += f1 - f0
					sysTicks += s1 - s0
					b.StartTimer()
				}
				b.ReportMetric(float64(faults)/float64(b.N), "minflt/op")
				b.ReportMetric(float64(sysTicks)*1000/float64(clockTicks)/float64(b.N), "sys-ms/op")
			})
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTicks = 100

// benchFiles starts nginx on n domain files of a shape already on disk, in
// dir.
func benchFiles(b *testing.B, shape string, n int) (ngx *testNginx, dir string) {
	dir = readableTempDir(b)
	ngx = startNginx(b, filepath.Join(dir, "http", "*.conf"))
	if err := os.Mkdir(filepath.Join(dir, "http"), 0o755); err != nil {
		b.Fatal(err)
	}
	for _, f := range newDomainSet(b, shape, dir).release(n) {
		if err := os.WriteFile(filepath.Join(dir, f.Path), f.Content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// Load them once, untimed, so that every timed reload replaces a
	// configuration of the same size.
	m := ngx.master()
	before, err := m.children()
	if err != nil {
		b.Fatal(err)
	}
	if err := syscall.Kill(m.pid, syscall.SIGHUP); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		kids, err := m.children()
		if err != nil {
			b.Fatal(err)
		}
		if newGeneration(kids, before) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("nginx did not load the %s domains: %s", shape, readFile(b, ngx.errorLog))
		}
		time.Sleep(time.Millisecond)
	}
	ngx.settle(b)
	return ngx, dir
}

// procFaultsAndSys reads a process's minor faults and system time (ticks).
func procFaultsAndSys(b *testing.B, pid int) (minflt, stime int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+2:]))
	// After the command: state(0) ppid pgrp session tty tpgid flags minflt(7) cminflt majflt cmajflt utime(11) stime(12).
	minflt, _ = strconv.ParseInt(f[7], 10, 64)
	stime, _ = strconv.ParseInt(f[12], 10, 64)
	return minflt, stime
}
