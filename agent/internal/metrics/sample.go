// Package metrics produces the agent's typed metric samples. Glances' REST
// API (v3 or v4) on loopback is the preferred source; a sampler reading /proc
// and /sys directly keeps a node reporting when Glances is not there. A
// bounded buffer holds encoded samples until the controller acknowledges them.
package metrics

import (
	"context"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Source names carried in Sample.Source.
const (
	SourceGlances = "glances"
	SourceProc    = "proc"
)

// Bounds applied to everything a source reports, whoever produced it.
const (
	// MaxItems bounds the number of filesystems, interfaces, disks and
	// temperatures in one sample.
	MaxItems = 256
	// MaxCPUs bounds the number of per-core values in one sample.
	MaxCPUs = 1024
	// MaxNameLen bounds names (mount points, devices, interfaces, labels) in bytes.
	MaxNameLen = 128
)

// Sample is one reading of a node's state.
type Sample struct {
	Time                            time.Time
	Source                          string // "glances" or "proc"
	CPUPercent                      float64
	PerCPU                          []float64
	Load1, Load5, Load15            float64
	MemTotal, MemUsed, MemAvailable uint64 // bytes
	SwapTotal, SwapUsed             uint64
	Filesystems                     []Filesystem
	Interfaces                      []Interface
	DiskIO                          []DiskIO
	UptimeSeconds                   uint64
	Processes                       uint32
	Temperatures                    []Temperature
	// Nginx is the node's nginx activity, nil when it could not be read.
	Nginx *NginxStatus
}

// NginxStatus is nginx's stub_status counters with the request rate since
// the previous reading.
type NginxStatus struct {
	// Active is the number of open client connections, Reading, Writing and
	// Waiting (idle keep-alive) included.
	Active, Reading, Writing, Waiting uint32
	// Accepts, Handled and Requests count since nginx started.
	Accepts, Handled, Requests uint64
	// RequestsPerSecond is the request rate since the previous reading; 0 on
	// the first one and after nginx restarted.
	RequestsPerSecond float64
}

// Filesystem is one mounted filesystem; sizes in bytes.
type Filesystem struct {
	Mount, Device, FSType string
	Size, Used            uint64
}

// Interface is one network interface: rates in bytes per second, totals in
// bytes since the interface's counters started.
type Interface struct {
	Name             string
	RxBps, TxBps     float64
	RxTotal, TxTotal uint64
}

// DiskIO is one block device's throughput in bytes per second.
type DiskIO struct {
	Name              string
	ReadBps, WriteBps float64
}

// Temperature is one sensor reading in degrees Celsius.
type Temperature struct {
	Label   string
	Celsius float64
}

// Source produces samples.
type Source interface {
	Name() string
	Sample(ctx context.Context) (Sample, error)
}

// cleanName strips control characters and invalid UTF-8 from s and cuts it to
// MaxNameLen bytes on a rune boundary. It returns s itself when s is clean,
// so the common case does not allocate.
func cleanName(s string) string {
	clean := len(s) <= MaxNameLen
	if clean {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f {
				clean = false
				break
			}
		}
	}
	if clean {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > MaxNameLen {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// finite returns v when it is a finite number >= 0, and 0 otherwise.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// percent clamps v into [0, 100]; NaN and infinities become 0.
func percent(v float64) float64 {
	v = finite(v)
	if v > 100 {
		return 100
	}
	return v
}

// toUint64 converts a JSON number to a byte count: negative, NaN and infinite
// values become 0, values beyond the uint64 range are clamped.
func toUint64(v float64) uint64 {
	v = finite(v)
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(v)
}

// rate divides a counter delta by an interval in seconds, refusing nonsense.
func rate(delta, seconds float64) float64 {
	delta, seconds = finite(delta), finite(seconds)
	if seconds <= 0 {
		return 0
	}
	return finite(delta / seconds)
}

// plausibleCelsius reports whether a temperature reading is physically
// plausible for hardware sensors.
func plausibleCelsius(c float64) bool {
	return !math.IsNaN(c) && c > -100 && c < 300
}
