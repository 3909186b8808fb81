package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. Linux exposes
// USER_HZ = 100 to user space on every architecture Go supports.
const userHZ = 100

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	at     time.Time
	ticks  uint64 // utime + stime
	rssKB  uint64 // VmRSS
	hwmKB  uint64 // VmHWM, the peak resident set
	anonKB uint64 // RssAnon: the private part of VmRSS (heap, stacks), without mapped files
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status; pid 0 means self.
func readProc(pid int) (procSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("read process stat: %w", err)
	}
	if s.ticks, err = parseStatTicks(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("read process status: %w", err)
	}
	s.rssKB, s.hwmKB, s.anonKB, err = parseStatusMem(status)
	return s, err
}

// parseStatTicks returns utime+stime (fields 14 and 15) from a stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("process stat: no closing parenthesis after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("process stat: %d fields after the command name, want at least 13", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("process stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("process stat: stime: %w", err)
	}
	return u + st, nil
}

// parseStatusMem returns VmRSS, VmHWM and RssAnon in kB from a status file.
func parseStatusMem(status []byte) (rss, hwm, anon uint64, err error) {
	fields := map[string]*uint64{"VmRSS": &rss, "VmHWM": &hwm, "RssAnon": &anon}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		p := fields[k]
		if !ok || p == nil {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		n, perr := strconv.ParseUint(num, 10, 64)
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("process status: %s: %w", k, perr)
		}
		*p = n
		seen++
	}
	if seen != len(fields) {
		return 0, 0, 0, errors.New("process status: VmRSS, VmHWM or RssAnon missing (is the process a zombie?)")
	}
	return rss, hwm, anon, nil
}

// procWatch samples one process every second between Start and Stop.
type procWatch struct {
	pid int

	mu      sync.Mutex
	samples []procSample
	err     error
	stop    context.CancelFunc
	done    chan struct{}
}

func newProcWatch(pid int) *procWatch { return &procWatch{pid: pid} }

// Start begins sampling (taking one reading at once).
func (w *procWatch) Start(ctx context.Context) {
	ctx, w.stop = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			w.take()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (w *procWatch) take() {
	s, err := readProc(w.pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.samples = append(w.samples, s)
}

// Stop takes a final reading and returns the usage over the whole watch.
func (w *procWatch) Stop() (procUsage, error) {
	w.stop()
	<-w.done
	w.take()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return procUsage{}, w.err
	}
	return summarize(w.samples)
}

// procUsage is what a watch measured.
type procUsage struct {
	CPUPercent  float64 `json:"cpu_percent_of_one_core"`
	SteadyRSSMB float64 `json:"steady_rss_mb"` // median VmRSS over the second half of the window
	PeakRSSMB   float64 `json:"peak_rss_mb"`   // VmHWM at the end: the process's peak since it started
	// SteadyAnonMB is the median RssAnon over the second half: memory the
	// process owns, as opposed to pages of its executable mapped from the
	// page cache.
	SteadyAnonMB float64 `json:"steady_anon_rss_mb"`
	Seconds      float64 `json:"seconds"`
}

func summarize(s []procSample) (procUsage, error) {
	if len(s) < 2 {
		return procUsage{}, errors.New("fewer than two process readings")
	}
	first, last := s[0], s[len(s)-1]
	wall := last.at.Sub(first.at).Seconds()
	if wall <= 0 {
		return procUsage{}, errors.New("process readings span no time")
	}
	half := s[len(s)/2:]
	median := func(f func(procSample) uint64) float64 {
		v := make([]uint64, len(half))
		for i, x := range half {
			v[i] = f(x)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return float64(v[len(v)/2]) / 1024
	}
	return procUsage{
		CPUPercent:   float64(last.ticks-first.ticks) / userHZ / wall * 100,
		SteadyRSSMB:  median(func(x procSample) uint64 { return x.rssKB }),
		PeakRSSMB:    float64(last.hwmKB) / 1024,
		SteadyAnonMB: median(func(x procSample) uint64 { return x.anonKB }),
		Seconds:      wall,
	}, nil
}
