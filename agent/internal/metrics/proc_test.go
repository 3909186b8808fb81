package metrics

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeStatfs stands in for statfs(2) on the fixture's mount points.
func fakeStatfs(path string) (uint64, uint64, error) {
	switch path {
	case "/":
		return 500 << 30, 120 << 30, nil
	case "/boot/efi":
		return 512 << 20, 6 << 20, nil
	case "/mnt/my disk":
		return 2 << 40, 3 << 40, nil // used beyond size must be clamped
	case "/var/lib/docker":
		return 500 << 30, 120 << 30, nil
	}
	return 0, 0, errors.New("no such mount in the fixture")
}

func newFixtureProc(procDir, sysDir string, now *time.Time) *Proc {
	p := NewProc(filepath.Join("testdata", "proc", procDir), filepath.Join("testdata", sysDir), nil)
	p.statfs = fakeStatfs
	p.now = func() time.Time { return *now }
	return p
}

func TestProcFixtures(t *testing.T) {
	t.Parallel()
	now := fixedTime
	p := newFixtureProc("t0", "sys", &now)
	ctx := context.Background()

	wantFS := []Filesystem{
		{Mount: "/", Device: "/dev/nvme0n1p2", FSType: "ext4", Size: 500 << 30, Used: 120 << 30},
		{Mount: "/boot/efi", Device: "/dev/nvme0n1p1", FSType: "vfat", Size: 512 << 20, Used: 6 << 20},
		{Mount: "/mnt/my disk", Device: "/dev/sdb1", FSType: "ext4", Size: 2 << 40, Used: 2 << 40},
	}
	wantTemps := []Temperature{
		{Label: "Package id 0", Celsius: 45},
		{Label: "coretemp 2", Celsius: 43.5},
		{Label: "Composite", Celsius: 38.85},
	}
	const kB = 1024
	want0 := Sample{
		Time: fixedTime, Source: "proc",
		CPUPercent: 15, PerCPU: []float64{15, 15}, // since boot on the first call
		Load1: 0.52, Load5: 0.58, Load15: 0.59,
		MemTotal: 16000000 * kB, MemUsed: 7100000 * kB, MemAvailable: 9000000 * kB,
		SwapTotal: 2000000 * kB, SwapUsed: 500000 * kB,
		Filesystems: wantFS,
		Interfaces: []Interface{
			{Name: "lo", RxTotal: 10000, TxTotal: 10000},
			{Name: "eth0", RxTotal: 5000000, TxTotal: 1000000},
			{Name: "eth1", RxTotal: 9000, TxTotal: 9000},
		},
		DiskIO:        []DiskIO{{Name: "nvme0n1"}, {Name: "nvme0n1p1"}},
		UptimeSeconds: 93784,
		Processes:     3,
		Temperatures:  wantTemps,
	}
	got, err := p.Sample(ctx)
	if err != nil {
		t.Fatalf("first Sample: %v", err)
	}
	if !reflect.DeepEqual(got, want0) {
		t.Errorf("first sample\n got %+v\nwant %+v", got, want0)
	}

	// Ten seconds later the counters have moved.
	now = now.Add(10 * time.Second)
	p.procRoot = filepath.Join("testdata", "proc", "t1")
	want1 := want0
	want1.Time = now
	want1.CPUPercent, want1.PerCPU = 45, []float64{55, 35}
	want1.Interfaces = []Interface{
		{Name: "lo", RxBps: 1000, TxBps: 1000, RxTotal: 20000, TxTotal: 20000},
		{Name: "eth0", RxBps: 100000, TxBps: 50000, RxTotal: 6000000, TxTotal: 1500000},
		{Name: "eth1", RxTotal: 100, TxTotal: 100}, // counter reset: no rate
		{Name: "wg0", RxTotal: 500, TxTotal: 700},  // new: no rate yet
	}
	want1.DiskIO = []DiskIO{{Name: "nvme0n1", ReadBps: 1024000, WriteBps: 1024000}, {Name: "nvme0n1p1"}}
	want1.Processes = 2
	got, err = p.Sample(ctx)
	if err != nil {
		t.Fatalf("second Sample: %v", err)
	}
	if !reflect.DeepEqual(got, want1) {
		t.Errorf("second sample\n got %+v\nwant %+v", got, want1)
	}
}

func TestProcThermalZones(t *testing.T) {
	t.Parallel()
	now := fixedTime
	p := newFixtureProc("t0", "sys-thermal", &now)
	s, err := p.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Temperature{{Label: "x86_pkg_temp", Celsius: 52}}
	if !reflect.DeepEqual(s.Temperatures, want) {
		t.Errorf("temperatures = %+v, want %+v", s.Temperatures, want)
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestProcBrokenInputs(t *testing.T) {
	t.Parallel()
	const stat = "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\n"
	const meminfo = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\n"
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
		check   func(t *testing.T, s Sample)
	}{
		{
			name:    "no stat",
			files:   map[string]string{"meminfo": meminfo},
			wantErr: "stat",
		},
		{
			name:    "stat with garbage numbers",
			files:   map[string]string{"stat": "cpu  10 x 10 80\n", "meminfo": meminfo},
			wantErr: "bad number",
		},
		{
			name:    "stat without cpu lines",
			files:   map[string]string{"stat": "intr 1 2 3\n", "meminfo": meminfo},
			wantErr: "no cpu line",
		},
		{
			name:    "meminfo without MemTotal",
			files:   map[string]string{"stat": stat, "meminfo": "MemFree: 100 kB\n"},
			wantErr: "MemTotal",
		},
		{
			name:  "only the required files",
			files: map[string]string{"stat": stat, "meminfo": meminfo},
			check: func(t *testing.T, s Sample) {
				if s.CPUPercent != 20 || s.MemTotal != 1000*1024 || s.MemAvailable != 500*1024 {
					t.Errorf("sample = %+v", s)
				}
				if s.Filesystems != nil || s.Interfaces != nil || s.DiskIO != nil || s.Temperatures != nil || s.UptimeSeconds != 0 {
					t.Errorf("missing files produced data: %+v", s)
				}
			},
		},
		{
			name: "hostile optional files",
			files: map[string]string{
				"stat":      stat,
				"meminfo":   "MemTotal: 1000 kB\nMemFree: 99999999999999999999999 kB\nMemAvailable: 5000 kB\nSwapTotal: 10 kB\nSwapFree: 20 kB\n",
				"loadavg":   "NaN -1 3\n",
				"uptime":    "-5 0\n",
				"net/dev":   "h\nh\n  e\x1bvil\x07:  1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\nshort: 1 2\n",
				"diskstats": "8 0 sda 1 2 3\n8 1 sdb x x x x x x x\n",
				"mounts":    strings.Repeat("/dev/sda1 /x ext4 rw 0 0\n", 10),
			},
			check: func(t *testing.T, s Sample) {
				if s.MemAvailable != s.MemTotal {
					t.Errorf("available %d beyond total %d", s.MemAvailable, s.MemTotal)
				}
				if s.SwapUsed != 0 {
					t.Errorf("swap used %d from free > total", s.SwapUsed)
				}
				if s.Load1 != 0 || s.UptimeSeconds != 0 {
					t.Errorf("bad loadavg/uptime accepted: %v %v", s.Load1, s.UptimeSeconds)
				}
				want := []Interface{{Name: "evil", RxTotal: 1, TxTotal: 2}}
				if !reflect.DeepEqual(s.Interfaces, want) {
					t.Errorf("interfaces = %+v, want %+v", s.Interfaces, want)
				}
				if s.DiskIO != nil {
					t.Errorf("short diskstats lines accepted: %+v", s.DiskIO)
				}
			},
		},
		{
			name: "bounded item counts",
			files: map[string]string{
				"stat":    "cpu  1 0 0 1\n" + strings.Repeat("cpu9 1 0 0 1\n", 2000),
				"meminfo": meminfo,
				"net/dev": "h\nh\n" + func() string {
					var b strings.Builder
					for i := range 1000 {
						b.WriteString("if")
						b.WriteString(strings.Repeat("x", i%7))
						b.WriteString(string(rune('a' + i%26)))
						b.WriteString(": 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n")
					}
					return b.String()
				}(),
			},
			check: func(t *testing.T, s Sample) {
				if len(s.PerCPU) != MaxCPUs {
					t.Errorf("%d per-cpu values, want %d", len(s.PerCPU), MaxCPUs)
				}
				if len(s.Interfaces) > MaxItems {
					t.Errorf("%d interfaces, want at most %d", len(s.Interfaces), MaxItems)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := writeTree(t, tt.files)
			p := NewProc(root, filepath.Join(root, "nosys"), nil)
			p.statfs = func(string) (uint64, uint64, error) { return 100, 10, nil }
			s, err := p.Sample(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestProcLive(t *testing.T) {
	t.Parallel()
	p := NewProc("/proc", "/sys", nil)
	ctx := context.Background()
	if _, err := p.Sample(ctx); err != nil {
		t.Fatalf("first live sample: %v", err)
	}
	s, err := p.Sample(ctx)
	if err != nil {
		t.Fatalf("second live sample: %v", err)
	}
	if s.Source != "proc" || s.Time.IsZero() {
		t.Errorf("source %q time %v", s.Source, s.Time)
	}
	if len(s.PerCPU) == 0 || s.CPUPercent < 0 || s.CPUPercent > 100 {
		t.Errorf("cpu %v per-cpu %v", s.CPUPercent, s.PerCPU)
	}
	if s.MemTotal == 0 || s.MemUsed > s.MemTotal || s.MemAvailable > s.MemTotal || s.SwapUsed > s.SwapTotal {
		t.Errorf("memory total %d used %d available %d swap %d/%d", s.MemTotal, s.MemUsed, s.MemAvailable, s.SwapUsed, s.SwapTotal)
	}
	if s.UptimeSeconds == 0 || s.Processes == 0 {
		t.Errorf("uptime %d processes %d", s.UptimeSeconds, s.Processes)
	}
	hasRoot := false
	for _, f := range s.Filesystems {
		if f.Size == 0 || f.Used > f.Size {
			t.Errorf("filesystem %+v", f)
		}
		hasRoot = hasRoot || f.Mount == "/"
	}
	if !hasRoot {
		t.Errorf("root filesystem missing from %+v", s.Filesystems)
	}
	hasLo := false
	for _, i := range s.Interfaces {
		hasLo = hasLo || i.Name == "lo"
	}
	if !hasLo {
		t.Errorf("loopback interface missing from %+v", s.Interfaces)
	}
}

func BenchmarkProcSample(b *testing.B) {
	now := fixedTime
	p := newFixtureProc("t0", "sys", &now)
	ctx := context.Background()
	if _, err := p.Sample(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		if _, err := p.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestProcFindsNewSensors(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"proc/stat":    "cpu  1 0 1 8 0 0 0 0\n",
		"proc/meminfo": "MemTotal: 1000 kB\n",
	})
	now := fixedTime
	p := NewProc(filepath.Join(root, "proc"), filepath.Join(root, "sys"), nil)
	p.now = func() time.Time { return now }
	ctx := context.Background()
	if s, err := p.Sample(ctx); err != nil || s.Temperatures != nil {
		t.Fatalf("without sensors: %+v, %v", s.Temperatures, err)
	}
	// A drive with a sensor is hot-plugged.
	chip := filepath.Join(root, "sys", "class", "hwmon", "hwmon3")
	if err := os.MkdirAll(chip, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"name": "drivetemp\n", "temp1_input": "31000\n"} {
		if err := os.WriteFile(filepath.Join(chip, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(sensorRescan)
	s, err := p.Sample(ctx)
	want := []Temperature{{Label: "drivetemp 1", Celsius: 31}}
	if err != nil || !reflect.DeepEqual(s.Temperatures, want) {
		t.Errorf("after hot-plug: %+v, %v; want %+v", s.Temperatures, err, want)
	}
}
