package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

var fixedTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var apiPath = regexp.MustCompile(`^/api/([34])/([a-z]+)$`)

// glancesFixture serves testdata/glances/<version>/api/<n>/<plugin> the way
// Glances does, with 404 pages for everything else. overrides replace single
// paths.
type glancesFixture struct {
	dir string

	mu        sync.Mutex
	overrides map[string]http.HandlerFunc
	requests  []string
}

func newGlancesFixture(t testing.TB, version string) (*glancesFixture, *httptest.Server) {
	t.Helper()
	f := &glancesFixture{dir: filepath.Join("testdata", "glances", version), overrides: map[string]http.HandlerFunc{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *glancesFixture) set(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overrides[path] = h
}

func (f *glancesFixture) setDir(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dir = dir
}

func (f *glancesFixture) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *glancesFixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	h := f.overrides[r.URL.Path]
	dir := f.dir
	f.requests = append(f.requests, r.URL.Path)
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	m := apiPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.Error(w, "<html>Error: 404 Not Found</html>", http.StatusNotFound)
		return
	}
	b, err := os.ReadFile(filepath.Join(dir, "api", m[1], m[2]))
	if err != nil {
		http.Error(w, "<html>Error: 404 Not Found</html>", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

func body(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(s)) }
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", code) }
}

func newTestGlances(base string) *Glances {
	g := NewGlances(base, nil, hclog.NewNullLogger())
	g.now = func() time.Time { return fixedTime }
	return g
}

func TestGlancesFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version     string
		wantVersion int
		want        Sample
	}{
		{
			version:     "v3", // captured from Debian 12's Glances 3.3.1
			wantVersion: 3,
			want: Sample{
				Time: fixedTime, Source: "glances",
				CPUPercent: 67.4, PerCPU: []float64{67.1, 68.2},
				Load1: 6.6826171875, Load5: 3.759765625, Load15: 1.533203125,
				MemTotal: 25276510208, MemUsed: 514150400, MemAvailable: 24762359808,
				Filesystems: []Filesystem{
					// /run/netns, a bind mount of the same device, is left out as /proc does.
					{Mount: "/", Device: "/dev/vda", FSType: "ext4", Size: 270553174016, Used: 15031599104},
				},
				Interfaces: []Interface{
					{Name: "lo", RxBps: 2000, TxBps: 2000, RxTotal: 744799, TxTotal: 744799},
					{Name: "ifb0"},
					{Name: "eth0", RxBps: 61434, TxBps: 50960, RxTotal: 349490888, TxTotal: 1675227},
				},
				DiskIO:        []DiskIO{{Name: "vda", ReadBps: 1024000, WriteBps: 204800}, {Name: "zram0"}},
				UptimeSeconds: 86400 + 2*3600 + 3*60 + 4,
				Processes:     80,
				Temperatures:  []Temperature{{Label: "acpitz 1", Celsius: 27}, {Label: "Package id 0", Celsius: 48}},
			},
		},
		{
			version:     "v4", // shapes from Glances 4's API documentation
			wantVersion: 4,
			want: Sample{
				Time: fixedTime, Source: "glances",
				CPUPercent: 14.5, PerCPU: []float64{63, 52},
				Load1: 3.84375, Load5: 2.01611328125, Load15: 1.25146484375,
				MemTotal: 16422875136, MemUsed: 11319050192, MemAvailable: 5103824944,
				SwapTotal: 4294963200, SwapUsed: 694247424,
				Filesystems: []Filesystem{
					{Mount: "/", Device: "/dev/mapper/ubuntu--vg-ubuntu--lv", FSType: "ext4", Size: 1003736440832, Used: 236831793152},
					{Mount: "/zsfpool", Device: "zsfpool", FSType: "zfs", Size: 41811968, Used: 131072},
				},
				Interfaces: []Interface{
					// Glances' own rates win over deltas.
					{Name: "wlp0s20f3", RxBps: 4000, TxBps: 2000, RxTotal: 1180080454, TxTotal: 392000602},
					// Without rates, the delta over time_since_update.
					{Name: "eth1", RxBps: 300, TxBps: 100, RxTotal: 3000, TxTotal: 2000},
				},
				DiskIO: []DiskIO{
					{Name: "nvme0n1", ReadBps: 524288, WriteBps: 2097152},
					{Name: "nvme0n1p1", ReadBps: 4096},
				},
				UptimeSeconds: 6*86400 + 22*3600 + 22*60 + 5,
				Processes:     569,
				Temperatures: []Temperature{
					{Label: "Ambient", Celsius: 37},
					{Label: "Package id 0", Celsius: 51.5},
					{Label: "Composite", Celsius: 40}, // reported as 104 °F
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			fx, srv := newGlancesFixture(t, tt.version)
			g := newTestGlances(srv.URL + "/")
			got, err := g.Sample(context.Background())
			if err != nil {
				t.Fatalf("Sample: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sample mismatch\n got %+v\nwant %+v", got, tt.want)
			}
			if v := g.Version(); v != tt.wantVersion {
				t.Errorf("Version() = %d, want %d", v, tt.wantVersion)
			}
			// A second sample reuses the detected version: one request per plugin.
			before := len(fx.paths())
			if _, err := g.Sample(context.Background()); err != nil {
				t.Fatalf("second Sample: %v", err)
			}
			if n := len(fx.paths()) - before; n != len(samplePlugins) {
				t.Errorf("second sample made %d requests, want %d: %v", n, len(samplePlugins), fx.paths()[before:])
			}
			for _, p := range fx.paths() {
				if strings.HasSuffix(p, "/processlist") || strings.HasSuffix(p, "/all") {
					t.Errorf("sample fetched %s; it must stay off the large plugins", p)
				}
			}
		})
	}
}

func TestGlancesHostileResponses(t *testing.T) {
	t.Parallel()
	many := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	tests := []struct {
		name      string
		overrides map[string]http.HandlerFunc
		check     func(t *testing.T, s Sample, err error)
	}{
		{
			name:      "NaN cpu becomes zero",
			overrides: map[string]http.HandlerFunc{"/api/4/cpu": body(`{"total": NaN}`)},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil || s.CPUPercent != 0 {
					t.Errorf("got %v, %v; want 0, nil", s.CPUPercent, err)
				}
			},
		},
		{
			name:      "cpu above 100 is clamped",
			overrides: map[string]http.HandlerFunc{"/api/4/cpu": body(`{"total": 250}`), "/api/4/percpu": body(`[{"total": -3}, {"total": Infinity}]`)},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil || s.CPUPercent != 100 || !reflect.DeepEqual(s.PerCPU, []float64{0, 0}) {
					t.Errorf("got %v %v, %v", s.CPUPercent, s.PerCPU, err)
				}
			},
		},
		{
			name:      "negative and oversized memory",
			overrides: map[string]http.HandlerFunc{"/api/4/mem": body(`{"total": 1000, "used": 5000, "available": -1}`), "/api/4/memswap": body(`{"total": 1e30, "used": 5}`)},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if s.MemTotal != 1000 || s.MemUsed != 1000 || s.MemAvailable != 0 {
					t.Errorf("mem = %d/%d/%d, want 1000/1000/0", s.MemTotal, s.MemUsed, s.MemAvailable)
				}
				if s.SwapTotal != ^uint64(0) || s.SwapUsed != 5 {
					t.Errorf("swap = %d/%d", s.SwapTotal, s.SwapUsed)
				}
			},
		},
		{
			name: "too many filesystems and cpus are cut",
			overrides: map[string]http.HandlerFunc{
				"/api/4/fs":     body(many(1000, func(i int) string { return fmt.Sprintf(`{"mnt_point":"/m%d","size":10,"used":20}`, i) })),
				"/api/4/percpu": body(many(5000, func(int) string { return `{"total":1}` })),
			},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Filesystems) != MaxItems || len(s.PerCPU) != MaxCPUs {
					t.Errorf("got %d filesystems, %d cpus", len(s.Filesystems), len(s.PerCPU))
				}
				if f := s.Filesystems[0]; f.Used != f.Size {
					t.Errorf("used %d beyond size %d was not clamped", f.Used, f.Size)
				}
			},
		},
		{
			name: "names are cleaned and bounded",
			overrides: map[string]http.HandlerFunc{
				"/api/4/fs":      body(`[{"mnt_point":"/srv/\u0007da\u0000ta\n","device_name":"\u001b[31m/dev/sda","size":1,"used":1},{"mnt_point":"\u0000\u0001","size":1}]`),
				"/api/4/network": body(`[{"interface_name":"` + strings.Repeat("é", 200) + `","bytes_recv_rate_per_sec":Infinity,"bytes_sent_rate_per_sec":-4}]`),
			},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil {
					t.Fatal(err)
				}
				want := []Filesystem{{Mount: "/srv/data", Device: "[31m/dev/sda", Size: 1, Used: 1}}
				if !reflect.DeepEqual(s.Filesystems, want) {
					t.Errorf("filesystems = %+v, want %+v", s.Filesystems, want)
				}
				if len(s.Interfaces) != 1 {
					t.Fatalf("interfaces = %+v", s.Interfaces)
				}
				it := s.Interfaces[0]
				if len(it.Name) > MaxNameLen || it.Name != strings.Repeat("é", MaxNameLen/2) {
					t.Errorf("interface name %q (%d bytes) not cut at %d", it.Name, len(it.Name), MaxNameLen)
				}
				if it.RxBps != 0 || it.TxBps != 0 {
					t.Errorf("rates %v/%v, want 0/0", it.RxBps, it.TxBps)
				}
			},
		},
		{
			name: "broken optional plugins are skipped",
			overrides: map[string]http.HandlerFunc{
				"/api/4/sensors": body(`{"not":"a list"`),
				"/api/4/uptime":  body(`"forever"`),
				"/api/4/diskio":  status(http.StatusInternalServerError),
				"/api/4/fs":      status(http.StatusNotFound),
			},
			check: func(t *testing.T, s Sample, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if s.Temperatures != nil || s.UptimeSeconds != 0 || s.DiskIO != nil || s.Filesystems != nil {
					t.Errorf("skipped plugins left data: %+v", s)
				}
				if s.CPUPercent != 14.5 || s.MemTotal == 0 || len(s.Interfaces) != 2 {
					t.Errorf("working plugins lost: %+v", s)
				}
			},
		},
		{
			name:      "implausible temperatures are dropped",
			overrides: map[string]http.HandlerFunc{"/api/4/sensors": body(`[{"label":"a","unit":"C","value":5000},{"label":"b","unit":"C","value":null},{"label":"c","unit":"C","value":-273},{"label":"d","unit":"C","value":NaN},{"label":"e","type":"temperature_core","value":41}]`)},
			check: func(t *testing.T, s Sample, err error) {
				want := []Temperature{{Label: "e", Celsius: 41}}
				if err != nil || !reflect.DeepEqual(s.Temperatures, want) {
					t.Errorf("got %+v, %v; want %+v", s.Temperatures, err, want)
				}
			},
		},
		{
			name: "oversized required plugin fails the sample",
			overrides: map[string]http.HandlerFunc{"/api/4/cpu": func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"total": 1, "pad": "`))
				_, _ = w.Write(bytes.Repeat([]byte("x"), MaxSampleBytes))
				_, _ = w.Write([]byte(`"}`))
			}},
			check: func(t *testing.T, _ Sample, err error) {
				if err == nil || !strings.Contains(err.Error(), "limit") {
					t.Errorf("err = %v, want a size limit error", err)
				}
			},
		},
		{
			name:      "failing required plugin fails the sample",
			overrides: map[string]http.HandlerFunc{"/api/4/mem": status(http.StatusInternalServerError)},
			check: func(t *testing.T, _ Sample, err error) {
				var se *statusError
				if !errors.As(err, &se) || se.code != 500 {
					t.Errorf("err = %v, want http 500", err)
				}
			},
		},
		{
			name: "redirects are not followed",
			overrides: map[string]http.HandlerFunc{"/api/4/cpu": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/api/4/mem", http.StatusFound)
			}},
			check: func(t *testing.T, _ Sample, err error) {
				if err == nil || !strings.Contains(err.Error(), "redirect") {
					t.Errorf("err = %v, want a redirect refusal", err)
				}
			},
		},
		{
			name:      "missing required plugin",
			overrides: map[string]http.HandlerFunc{"/api/4/pluginslist": body(`["cpu","load"]`)},
			check: func(t *testing.T, _ Sample, err error) {
				if err == nil || !strings.Contains(err.Error(), `"mem"`) {
					t.Errorf("err = %v, want missing mem plugin", err)
				}
			},
		},
		{
			name:      "pluginslist that is not a list",
			overrides: map[string]http.HandlerFunc{"/api/4/pluginslist": body(`{"cpu":1}`)},
			check: func(t *testing.T, _ Sample, err error) {
				if err == nil || !strings.Contains(err.Error(), "not reachable") {
					t.Errorf("err = %v, want detection failure", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx, srv := newGlancesFixture(t, "v4")
			for p, h := range tt.overrides {
				fx.set(p, h)
			}
			s, err := newTestGlances(srv.URL).Sample(context.Background())
			tt.check(t, s, err)
		})
	}
}

func TestGlancesPlugin(t *testing.T) {
	t.Parallel()
	fx, srv := newGlancesFixture(t, "v4")
	fx.set("/api/4/quicklook", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte(" "), MaxPluginBytes+1))
	})
	g := newTestGlances(srv.URL)
	ctx := context.Background()

	raw, err := g.Plugin(ctx, "processlist")
	if err != nil {
		t.Fatalf("Plugin(processlist): %v", err)
	}
	var procs []struct {
		Name       string   `json:"name"`
		CPUPercent *float64 `json:"cpu_percent"`
	}
	if err := json.Unmarshal(raw, &procs); err != nil {
		t.Fatalf("processlist is not valid json after sanitizing: %v\n%s", err, raw)
	}
	if len(procs) != 1 || procs[0].Name != "nginx" || procs[0].CPUPercent != nil {
		t.Errorf("processlist = %+v, want nginx with a null cpu_percent", procs)
	}

	refused := []string{"../etc", "../../etc/passwd", "cpu/../../x", "all", "", "CPU", "cpu?x=1", "pluginslist", "status"}
	for _, name := range refused {
		if _, err := g.Plugin(ctx, name); err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("Plugin(%q) err = %v, want refusal", name, err)
		}
	}
	for _, p := range fx.paths() {
		if strings.Contains(p, "..") || strings.Contains(p, "etc") {
			t.Errorf("a refused name reached the server: %s", p)
		}
	}
	if _, err := g.Plugin(ctx, "docker"); err == nil || !strings.Contains(err.Error(), "does not provide") {
		t.Errorf("Plugin(docker) on a v4 server: err = %v, want not provided", err)
	}
	if _, err := g.Plugin(ctx, "quicklook"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Plugin(quicklook) with an oversized body: err = %v, want limit error", err)
	}
}

func TestGlancesRedetectsAfterFailure(t *testing.T) {
	t.Parallel()
	fx, srv := newGlancesFixture(t, "v3")
	g := newTestGlances(srv.URL)
	ctx := context.Background()
	if _, err := g.Sample(ctx); err != nil || g.Version() != 3 {
		t.Fatalf("first sample: %v, version %d", err, g.Version())
	}
	// Glances is upgraded behind the agent's back: v3 paths vanish.
	fx.setDir(filepath.Join("testdata", "glances", "v4"))
	if _, err := g.Sample(ctx); err == nil {
		t.Fatal("sample against vanished v3 paths succeeded")
	}
	if v := g.Version(); v != 0 {
		t.Errorf("Version() after failure = %d, want 0", v)
	}
	s, err := g.Sample(ctx)
	if err != nil || g.Version() != 4 || s.Processes != 569 {
		t.Fatalf("after re-detection: %v, version %d, processes %d", err, g.Version(), s.Processes)
	}
}

func TestGlancesBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "127.0.0.1:61208", "ftp://127.0.0.1", "http://", "http://u:p@127.0.0.1", "http://127.0.0.1/?a=b", "http://127.0.0.1/#x", "http://[::1"} {
		g := NewGlances(raw, nil, nil)
		if _, err := g.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "glances url") {
			t.Errorf("NewGlances(%q).Sample err = %v, want a url error", raw, err)
		}
		if _, err := g.Plugin(context.Background(), "cpu"); err == nil {
			t.Errorf("NewGlances(%q).Plugin succeeded", raw)
		}
	}
}

func TestAllowedPlugin(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"cpu": true, "percpu": true, "load": true, "mem": true, "memswap": true, "fs": true,
		"network": true, "diskio": true, "uptime": true, "processcount": true, "processlist": true,
		"sensors": true, "system": true, "quicklook": true, "containers": true, "docker": true,
		"": false, "../etc": false, "all": false, "pluginslist": false, "cpu/total": false,
		"Cpu": false, " cpu": false, "cpu\x00": false, "events": false,
	}
	for name, want := range tests {
		if got := AllowedPlugin(name); got != want {
			t.Errorf("AllowedPlugin(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseGlancesUptime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{in: `"0:05:45"`, want: 345},
		{in: `"1 day, 2:03:04"`, want: 93784},
		{in: `"6 days, 22:22:05"`, want: 6*86400 + 22*3600 + 22*60 + 5},
		{in: `"12 days, 03:04:05.123456"`, want: 12*86400 + 3*3600 + 4*60 + 5},
		{in: `93784`, want: 93784},
		{in: `{"seconds": 60}`, want: 60},
		{in: `"-1 day, 23:59:59"`, wantErr: true},
		{in: `"1 week, 0:00:00"`, wantErr: true},
		{in: `"0:61:00"`, wantErr: true},
		{in: `"24:00:00"`, wantErr: true},
		{in: `"0:00"`, wantErr: true},
		{in: `"forever"`, wantErr: true},
		{in: `-5`, wantErr: true},
		{in: `1e300`, wantErr: true},
		{in: `null`, wantErr: true},
		{in: `"` + strings.Repeat("9", 100) + ` days, 0:00:00"`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseGlancesUptime([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseGlancesUptime(%s) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSanitizeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"a": 1}`, `{"a": 1}`},
		{`{"a": NaN}`, `{"a": null}`},
		{`[Infinity, -Infinity, NaN]`, `[null, null, null]`},
		{`{"s": "NaN and Infinity stay in strings", "t": "esc \" NaN"}`, `{"s": "NaN and Infinity stay in strings", "t": "esc \" NaN"}`},
		{`{"n": -1, "m": NaN}`, `{"n": -1, "m": null}`},
	}
	for _, tt := range tests {
		got := string(sanitizeJSON([]byte(tt.in)))
		if got != tt.want {
			t.Errorf("sanitizeJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func BenchmarkGlancesSample(b *testing.B) {
	_, srv := newGlancesFixture(b, "v3")
	g := newTestGlances(srv.URL)
	ctx := context.Background()
	if _, err := g.Sample(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
