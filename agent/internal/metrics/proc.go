package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// maxProcFile bounds how much of one /proc or /sys file is read.
const maxProcFile = 4 << 20

// Proc samples the node from /proc and /sys directly. CPU usage and the
// network and disk rates are computed from the difference to the previous
// call, so the first call reports CPU usage since boot and zero rates. Safe
// for concurrent use.
type Proc struct {
	procRoot, sysRoot string
	log               hclog.Logger
	now               func() time.Time
	statfs            func(path string) (size, used uint64, err error)

	mu        sync.Mutex
	buf       bytes.Buffer
	prevAt    time.Time
	prevCPU   []cpuTimes // index 0 is the aggregate, then one per core
	prevNet   map[string]netCounters
	prevDisk  map[string]diskCounters
	nodev     map[string]struct{} // filesystem types without a block device
	nodevAt   time.Time
	sensors   []sensorFile // nil until the first scan
	sensorsAt time.Time
}

type cpuTimes struct{ busy, total uint64 }

// netCounters and diskCounters are keyed by the kernel's name and hold the
// cleaned name, so a steady set of devices costs no allocation per call.
type netCounters struct {
	name   string
	rx, tx uint64
	seen   bool
}

type diskCounters struct {
	name        string
	read, write uint64 // bytes
	seen        bool
}

// NewProc returns a sampler reading procRoot (normally "/proc") and sysRoot
// (normally "/sys").
func NewProc(procRoot, sysRoot string, log hclog.Logger) *Proc {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Proc{
		procRoot: procRoot,
		sysRoot:  sysRoot,
		log:      log,
		now:      time.Now,
		statfs:   statfsUsage,
		prevNet:  make(map[string]netCounters),
		prevDisk: make(map[string]diskCounters),
	}
}

// Name returns "proc".
func (p *Proc) Name() string { return SourceProc }

// Sample reads the node's current state. /proc/stat and /proc/meminfo are
// required; every other part is skipped with a debug log when unreadable.
func (p *Proc) Sample(ctx context.Context) (Sample, error) {
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	now := p.now()
	elapsed := 0.0
	if !p.prevAt.IsZero() {
		elapsed = now.Sub(p.prevAt).Seconds()
	}
	s := Sample{Time: now, Source: SourceProc}

	if err := p.readCPU(&s); err != nil {
		return Sample{}, err
	}
	if err := p.readMem(&s); err != nil {
		return Sample{}, err
	}
	for _, o := range procParts {
		if err := o.read(p, &s, elapsed); err != nil {
			p.log.Debug("proc sampler skipped a part", "part", o.what, "error", err)
		}
	}
	p.prevAt = now
	return s, nil
}

// procParts are the optional parts of a sample, in the order they are read.
var procParts = []struct {
	what string
	read func(p *Proc, s *Sample, elapsed float64) error
}{
	{"load", (*Proc).readLoad},
	{"filesystems", (*Proc).readMounts},
	{"network", (*Proc).readNet},
	{"disk io", (*Proc).readDisks},
	{"uptime", (*Proc).readUptime},
	{"processes", (*Proc).readProcesses},
	{"temperatures", (*Proc).readTemperatures},
}

// read returns the contents of name (relative to root) in p.buf.
func (p *Proc) read(root, name string) ([]byte, error) {
	f, err := os.Open(filepath.Join(root, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p.buf.Reset()
	n, err := p.buf.ReadFrom(io.LimitReader(f, maxProcFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if n > maxProcFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxProcFile)
	}
	return p.buf.Bytes(), nil
}

// fields splits a line on spaces and tabs into dst without allocating when
// dst has room.
func fields(dst [][]byte, line []byte) [][]byte {
	dst = dst[:0]
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\t' {
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

// nextLine returns the first line of b and the rest.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func parseFloat(b []byte) (float64, bool) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false
	}
	return v, true
}

func (p *Proc) readCPU(s *Sample) error {
	b, err := p.read(p.procRoot, "stat")
	if err != nil {
		return fmt.Errorf("proc sampler: %w", err)
	}
	var f [16][]byte
	cur := make([]cpuTimes, 0, len(p.prevCPU)+1)
	for len(b) > 0 && len(cur) <= MaxCPUs {
		var line []byte
		line, b = nextLine(b)
		if !bytes.HasPrefix(line, []byte("cpu")) {
			if len(cur) > 0 {
				break // the cpu lines come first and together
			}
			continue
		}
		fs := fields(f[:0], line)
		if len(fs) < 5 {
			continue
		}
		// user nice system idle iowait irq softirq steal; guest time is
		// already included in user and nice.
		var t cpuTimes
		var idle uint64
		for i := 1; i < len(fs) && i <= 8; i++ {
			v, ok := parseUint(fs[i])
			if !ok {
				return fmt.Errorf("proc sampler: stat: bad number %q", fs[i])
			}
			t.total += v
			if i == 4 || i == 5 {
				idle += v
			}
		}
		t.busy = t.total - idle
		cur = append(cur, t)
	}
	if len(cur) == 0 {
		return errors.New("proc sampler: stat has no cpu line")
	}
	usage := func(i int) float64 {
		c := cur[i]
		if i < len(p.prevCPU) && c.total >= p.prevCPU[i].total && c.busy >= p.prevCPU[i].busy {
			dt := c.total - p.prevCPU[i].total
			if dt > 0 {
				return percent(100 * float64(c.busy-p.prevCPU[i].busy) / float64(dt))
			}
			return 0
		}
		if c.total == 0 {
			return 0
		}
		return percent(100 * float64(c.busy) / float64(c.total))
	}
	s.CPUPercent = usage(0)
	s.PerCPU = make([]float64, len(cur)-1)
	for i := range s.PerCPU {
		s.PerCPU[i] = usage(i + 1)
	}
	p.prevCPU = cur
	return nil
}

func (p *Proc) readMem(s *Sample) error {
	b, err := p.read(p.procRoot, "meminfo")
	if err != nil {
		return fmt.Errorf("proc sampler: %w", err)
	}
	var total, free, avail, buffers, cached, reclaimable, swapTotal, swapFree uint64
	haveAvail := false
	var f [4][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		fs := fields(f[:0], line)
		if len(fs) < 2 {
			continue
		}
		v, ok := parseUint(fs[1])
		if !ok || v > math.MaxUint64/1024 {
			continue
		}
		if len(fs) > 2 && string(fs[2]) == "kB" {
			v *= 1024
		}
		switch string(fs[0]) {
		case "MemTotal:":
			total = v
		case "MemFree:":
			free = v
		case "MemAvailable:":
			avail, haveAvail = v, true
		case "Buffers:":
			buffers = v
		case "Cached:":
			cached = v
		case "SReclaimable:":
			reclaimable = v
		case "SwapTotal:":
			swapTotal = v
		case "SwapFree:":
			swapFree = v
		}
	}
	if total == 0 {
		return errors.New("proc sampler: meminfo has no MemTotal")
	}
	if !haveAvail { // kernels before 3.14
		avail = free + buffers + cached
	}
	s.MemTotal = total
	s.MemAvailable = min(avail, total)
	// The same definition as psutil, so both sources agree.
	if spent := free + buffers + cached + reclaimable; spent < total {
		s.MemUsed = total - spent
	} else {
		s.MemUsed = total - s.MemAvailable
	}
	s.SwapTotal = swapTotal
	if swapFree <= swapTotal {
		s.SwapUsed = swapTotal - swapFree
	}
	return nil
}

func (p *Proc) readLoad(s *Sample, _ float64) error {
	b, err := p.read(p.procRoot, "loadavg")
	if err != nil {
		return err
	}
	var f [6][]byte
	fs := fields(f[:0], bytes.TrimSpace(b))
	if len(fs) < 3 {
		return errors.New("loadavg has fewer than 3 fields")
	}
	var l [3]float64
	for i := range l {
		v, ok := parseFloat(fs[i])
		if !ok {
			return fmt.Errorf("loadavg: bad number %q", fs[i])
		}
		l[i] = v
	}
	s.Load1, s.Load5, s.Load15 = l[0], l[1], l[2]
	return nil
}

func (p *Proc) readUptime(s *Sample, _ float64) error {
	b, err := p.read(p.procRoot, "uptime")
	if err != nil {
		return err
	}
	var f [2][]byte
	fs := fields(f[:0], bytes.TrimSpace(b))
	if len(fs) < 1 {
		return errors.New("uptime is empty")
	}
	v, ok := parseFloat(fs[0])
	if !ok {
		return fmt.Errorf("uptime: bad number %q", fs[0])
	}
	s.UptimeSeconds = uint64(v)
	return nil
}

// readProcesses counts the numeric directories of procRoot.
func (p *Proc) readProcesses(s *Sample, _ float64) error {
	d, err := os.Open(p.procRoot)
	if err != nil {
		return err
	}
	defer d.Close()
	var n uint64
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if _, ok := parseUint([]byte(name)); ok {
				n++
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			break
		}
		if err != nil {
			return err
		}
	}
	s.Processes = uint32(min(n, math.MaxUint32))
	return nil
}

func (p *Proc) readNet(s *Sample, elapsed float64) error {
	b, err := p.read(p.procRoot, "net/dev")
	if err != nil {
		return err
	}
	for k, c := range p.prevNet {
		c.seen = false
		p.prevNet[k] = c
	}
	var f [20][]byte
	for len(b) > 0 && len(s.Interfaces) < MaxItems {
		var line []byte
		line, b = nextLine(b)
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // the two header lines
		}
		name := bytes.TrimSpace(line[:colon])
		fs := fields(f[:0], line[colon+1:])
		if len(name) == 0 || len(fs) < 16 {
			continue
		}
		rx, ok1 := parseUint(fs[0])
		tx, ok2 := parseUint(fs[8])
		if !ok1 || !ok2 {
			continue
		}
		prev, known := p.prevNet[string(name)]
		if known && prev.seen {
			continue // listed twice
		}
		if !known {
			prev.name = cleanName(string(name))
		}
		if prev.name == "" {
			continue
		}
		it := Interface{Name: prev.name, RxTotal: rx, TxTotal: tx}
		if known {
			it.RxBps = counterRate(prev.rx, rx, elapsed)
			it.TxBps = counterRate(prev.tx, tx, elapsed)
		}
		p.prevNet[string(name)] = netCounters{name: prev.name, rx: rx, tx: tx, seen: true}
		s.Interfaces = append(s.Interfaces, it)
	}
	for k, c := range p.prevNet {
		if !c.seen {
			delete(p.prevNet, k) // the interface went away
		}
	}
	return nil
}

func counterRate(prev, cur uint64, elapsed float64) float64 {
	if cur < prev || elapsed <= 0 {
		return 0 // counter reset or first reading
	}
	return rate(float64(cur-prev), elapsed)
}

// skipDisk reports block devices that only add noise: loop and ram disks,
// floppies, optical drives.
func skipDisk(name []byte) bool {
	for _, prefix := range []string{"loop", "ram", "fd", "sr"} {
		if bytes.HasPrefix(name, []byte(prefix)) {
			return true
		}
	}
	return false
}

func (p *Proc) readDisks(s *Sample, elapsed float64) error {
	b, err := p.read(p.procRoot, "diskstats")
	if err != nil {
		return err
	}
	for k, c := range p.prevDisk {
		c.seen = false
		p.prevDisk[k] = c
	}
	var f [24][]byte
	for len(b) > 0 && len(s.DiskIO) < MaxItems {
		var line []byte
		line, b = nextLine(b)
		fs := fields(f[:0], line)
		// major minor name reads merged sectors_read ms writes merged sectors_written ...
		if len(fs) < 10 || skipDisk(fs[2]) {
			continue
		}
		rs, ok1 := parseUint(fs[5])
		ws, ok2 := parseUint(fs[9])
		if !ok1 || !ok2 || rs > math.MaxUint64/512 || ws > math.MaxUint64/512 {
			continue
		}
		rd, wr := rs*512, ws*512 // diskstats counts 512-byte sectors
		prev, known := p.prevDisk[string(fs[2])]
		if known && prev.seen {
			continue // listed twice
		}
		if !known {
			prev.name = cleanName(string(fs[2]))
		}
		if prev.name == "" {
			continue
		}
		d := DiskIO{Name: prev.name}
		if known {
			d.ReadBps = counterRate(prev.read, rd, elapsed)
			d.WriteBps = counterRate(prev.write, wr, elapsed)
		}
		p.prevDisk[string(fs[2])] = diskCounters{name: prev.name, read: rd, write: wr, seen: true}
		s.DiskIO = append(s.DiskIO, d)
	}
	for k, c := range p.prevDisk {
		if !c.seen {
			delete(p.prevDisk, k)
		}
	}
	return nil
}

// nodevTypes returns the filesystem types the kernel marks "nodev" in
// /proc/filesystems (proc, sysfs, tmpfs, cgroup, overlay, ...), re-read once
// a minute since modules can register new ones.
func (p *Proc) nodevTypes(now time.Time) map[string]struct{} {
	if p.nodev != nil && now.Sub(p.nodevAt) < time.Minute {
		return p.nodev
	}
	b, err := p.read(p.procRoot, "filesystems")
	if err != nil {
		if p.nodev == nil {
			p.nodev = defaultNodev()
		}
		return p.nodev
	}
	set := defaultNodev()
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if rest, ok := bytes.CutPrefix(line, []byte("nodev")); ok {
			set[string(bytes.TrimSpace(rest))] = struct{}{}
		}
	}
	// zfs is listed as nodev but holds real data.
	delete(set, "zfs")
	p.nodev, p.nodevAt = set, now
	return set
}

func defaultNodev() map[string]struct{} {
	set := make(map[string]struct{})
	for _, t := range []string{
		"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
		"devpts", "devtmpfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay",
		"proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "sysfs", "tmpfs", "tracefs",
	} {
		set[t] = struct{}{}
	}
	return set
}

func (p *Proc) readMounts(s *Sample, _ float64) error {
	nodev := p.nodevTypes(p.now())
	b, err := p.read(p.procRoot, "mounts")
	if err != nil {
		return err
	}
	// statfs may be slow on network filesystems; keep the file's contents
	// out of p.buf, which later parts reuse.
	b = bytes.Clone(b)
	var f [6][]byte
	seen := make(map[string]struct{})
	for len(b) > 0 && len(s.Filesystems) < MaxItems {
		var line []byte
		line, b = nextLine(b)
		fs := fields(f[:0], line)
		if len(fs) < 3 {
			continue
		}
		device, mount, fstype := fs[0], fs[1], fs[2]
		// Pseudo filesystems are skipped, except the root filesystem,
		// whatever it is (overlay in containers, tmpfs on live systems).
		_, pseudo := nodev[string(fstype)]
		if pseudo && string(mount) != "/" || string(device) == "none" {
			continue
		}
		if _, dup := seen[string(device)]; dup {
			continue // bind mounts and the same device mounted twice
		}
		mnt := unescapeMount(mount)
		size, used, err := p.statfs(mnt)
		if err != nil {
			p.log.Debug("statfs failed", "mount", cleanName(mnt), "error", err)
			continue
		}
		if size == 0 {
			continue
		}
		seen[string(device)] = struct{}{}
		s.Filesystems = append(s.Filesystems, Filesystem{
			Mount:  cleanName(mnt),
			Device: cleanName(unescapeMount(device)),
			FSType: cleanName(string(fstype)),
			Size:   size,
			Used:   min(used, size),
		})
	}
	return nil
}

// unescapeMount decodes the octal escapes (\040 for space, ...) the kernel
// writes in /proc/mounts.
func unescapeMount(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) {
			if v, err := strconv.ParseUint(string(b[i+1:i+4]), 8, 8); err == nil {
				out.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		out.WriteByte(b[i])
	}
	return out.String()
}

func statfsUsage(path string) (size, used uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	size = st.Blocks * bs
	if st.Bfree <= st.Blocks {
		used = (st.Blocks - st.Bfree) * bs
	}
	return size, used, nil
}

// sensorFile is one temperature input found under sysRoot.
type sensorFile struct {
	rel, label string
}

// sensorRescan is how often the sensor files are looked for again; hot
// plugged devices (an NVMe drive, a USB sensor) show up within this time.
const sensorRescan = time.Minute

// readTemperatures reads hwmon sensors, or thermal zones when there are
// none. The list of sensor files is cached and refreshed every sensorRescan.
func (p *Proc) readTemperatures(s *Sample, _ float64) error {
	now := p.now()
	if p.sensors == nil || now.Sub(p.sensorsAt) >= sensorRescan {
		p.sensors = p.findHwmon()
		if len(p.sensors) == 0 {
			p.sensors = p.findThermalZones()
		}
		if p.sensors == nil {
			p.sensors = []sensorFile{}
		}
		p.sensorsAt = now
	}
	for _, f := range p.sensors {
		c, err := p.readMilliCelsius(f.rel)
		if err != nil {
			continue
		}
		s.Temperatures = append(s.Temperatures, Temperature{Label: f.label, Celsius: c})
	}
	return nil
}

func (p *Proc) findHwmon() []sensorFile {
	chips, err := os.ReadDir(filepath.Join(p.sysRoot, "class", "hwmon"))
	if err != nil {
		return nil
	}
	var found []sensorFile
	for _, chip := range chips {
		rel := filepath.Join("class", "hwmon", chip.Name())
		chipName := "hwmon"
		if b, err := p.read(p.sysRoot, filepath.Join(rel, "name")); err == nil {
			if n := cleanName(string(bytes.TrimSpace(b))); n != "" {
				chipName = n
			}
		}
		entries, err := os.ReadDir(filepath.Join(p.sysRoot, rel))
		if err != nil {
			continue
		}
		for _, e := range entries {
			idx, ok := strings.CutPrefix(e.Name(), "temp")
			if !ok {
				continue
			}
			idx, ok = strings.CutSuffix(idx, "_input")
			if !ok {
				continue
			}
			if _, num := parseUint([]byte(idx)); !num {
				continue
			}
			label := chipName + " " + idx
			if b, err := p.read(p.sysRoot, filepath.Join(rel, "temp"+idx+"_label")); err == nil {
				if l := cleanName(string(bytes.TrimSpace(b))); l != "" {
					label = l
				}
			}
			found = append(found, sensorFile{rel: filepath.Join(rel, e.Name()), label: label})
			if len(found) == MaxItems {
				return found
			}
		}
	}
	return found
}

func (p *Proc) findThermalZones() []sensorFile {
	zones, err := os.ReadDir(filepath.Join(p.sysRoot, "class", "thermal"))
	if err != nil {
		return nil
	}
	var found []sensorFile
	for _, z := range zones {
		if !strings.HasPrefix(z.Name(), "thermal_zone") {
			continue
		}
		rel := filepath.Join("class", "thermal", z.Name())
		label := cleanName(z.Name())
		if b, err := p.read(p.sysRoot, filepath.Join(rel, "type")); err == nil {
			if l := cleanName(string(bytes.TrimSpace(b))); l != "" {
				label = l
			}
		}
		found = append(found, sensorFile{rel: filepath.Join(rel, "temp"), label: label})
		if len(found) == MaxItems {
			return found
		}
	}
	return found
}

func (p *Proc) readMilliCelsius(rel string) (float64, error) {
	b, err := p.read(p.sysRoot, rel)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, err
	}
	c := float64(v) / 1000
	if !plausibleCelsius(c) {
		return 0, fmt.Errorf("%s: implausible temperature %v", rel, c)
	}
	return c, nil
}
