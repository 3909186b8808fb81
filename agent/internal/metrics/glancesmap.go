package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The structs below accept the field names of both Glances 3.3 and 4.x.
// Numbers are decoded as float64 and checked afterwards; pointers mark the
// fields whose absence matters.

type glancesCPU struct {
	Total float64 `json:"total"`
}

type glancesPerCPU struct {
	Total float64 `json:"total"`
}

type glancesLoad struct {
	Min1  float64 `json:"min1"`
	Min5  float64 `json:"min5"`
	Min15 float64 `json:"min15"`
}

type glancesMem struct {
	Total     float64 `json:"total"`
	Used      float64 `json:"used"`
	Available float64 `json:"available"`
}

type glancesFS struct {
	Mount  string  `json:"mnt_point"`
	Device string  `json:"device_name"`
	FSType string  `json:"fs_type"`
	Size   float64 `json:"size"`
	Used   float64 `json:"used"`
}

type glancesNet struct {
	Name            string  `json:"interface_name"`
	TimeSinceUpdate float64 `json:"time_since_update"`
	// v3: bytes since the previous update and cumulative counters.
	Rx           *float64 `json:"rx"`
	Tx           *float64 `json:"tx"`
	CumulativeRx float64  `json:"cumulative_rx"`
	CumulativeTx float64  `json:"cumulative_tx"`
	// v4: the same, renamed, plus ready-made rates.
	BytesRecv      *float64 `json:"bytes_recv"`
	BytesSent      *float64 `json:"bytes_sent"`
	BytesRecvGauge float64  `json:"bytes_recv_gauge"`
	BytesSentGauge float64  `json:"bytes_sent_gauge"`
	BytesRecvRate  *float64 `json:"bytes_recv_rate_per_sec"`
	BytesSentRate  *float64 `json:"bytes_sent_rate_per_sec"`
}

type glancesDisk struct {
	Name            string   `json:"disk_name"`
	TimeSinceUpdate float64  `json:"time_since_update"`
	ReadBytes       float64  `json:"read_bytes"`
	WriteBytes      float64  `json:"write_bytes"`
	ReadRate        *float64 `json:"read_bytes_rate_per_sec"`
	WriteRate       *float64 `json:"write_bytes_rate_per_sec"`
}

type glancesProcessCount struct {
	Total float64 `json:"total"`
}

type glancesSensor struct {
	Label string   `json:"label"`
	Value *float64 `json:"value"`
	Unit  string   `json:"unit"`
	Type  string   `json:"type"`
}

func decode(name string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("glances plugin %q: %w: %v", name, errBadJSON, err)
	}
	return nil
}

// mapPlugin decodes one plugin's JSON into s.
func mapPlugin(s *Sample, name string, body []byte) error {
	switch name {
	case "cpu":
		var v glancesCPU
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.CPUPercent = percent(v.Total)
	case "percpu":
		var v []glancesPerCPU
		if err := decode(name, body, &v); err != nil {
			return err
		}
		if len(v) > MaxCPUs {
			v = v[:MaxCPUs]
		}
		s.PerCPU = make([]float64, len(v))
		for i, c := range v {
			s.PerCPU[i] = percent(c.Total)
		}
	case "load":
		var v glancesLoad
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.Load1, s.Load5, s.Load15 = finite(v.Min1), finite(v.Min5), finite(v.Min15)
	case "mem":
		var v glancesMem
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.MemTotal = toUint64(v.Total)
		s.MemUsed = min(toUint64(v.Used), s.MemTotal)
		s.MemAvailable = min(toUint64(v.Available), s.MemTotal)
	case "memswap":
		var v glancesMem
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.SwapTotal = toUint64(v.Total)
		s.SwapUsed = min(toUint64(v.Used), s.SwapTotal)
	case "fs":
		var v []glancesFS
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.Filesystems = make([]Filesystem, 0, min(len(v), MaxItems))
		for _, f := range v {
			if len(s.Filesystems) == MaxItems {
				break
			}
			mount, device := cleanName(f.Mount), cleanName(f.Device)
			if mount == "" || device != "" && hasDevice(s.Filesystems, device) {
				continue // a bind mount repeats its device's figures
			}
			size := toUint64(f.Size)
			s.Filesystems = append(s.Filesystems, Filesystem{
				Mount:  mount,
				Device: device,
				FSType: cleanName(f.FSType),
				Size:   size,
				Used:   min(toUint64(f.Used), size),
			})
		}
	case "network":
		var v []glancesNet
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.Interfaces = make([]Interface, 0, min(len(v), MaxItems))
		for _, n := range v {
			if len(s.Interfaces) == MaxItems {
				break
			}
			ifname := cleanName(n.Name)
			if ifname == "" {
				continue
			}
			s.Interfaces = append(s.Interfaces, Interface{
				Name:    ifname,
				RxBps:   pickRate(n.BytesRecvRate, n.BytesRecv, n.Rx, n.TimeSinceUpdate),
				TxBps:   pickRate(n.BytesSentRate, n.BytesSent, n.Tx, n.TimeSinceUpdate),
				RxTotal: toUint64(max(finite(n.BytesRecvGauge), finite(n.CumulativeRx))),
				TxTotal: toUint64(max(finite(n.BytesSentGauge), finite(n.CumulativeTx))),
			})
		}
	case "diskio":
		var v []glancesDisk
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.DiskIO = make([]DiskIO, 0, min(len(v), MaxItems))
		for _, d := range v {
			if len(s.DiskIO) == MaxItems {
				break
			}
			disk := cleanName(d.Name)
			if disk == "" {
				continue
			}
			s.DiskIO = append(s.DiskIO, DiskIO{
				Name:     disk,
				ReadBps:  pickRate(d.ReadRate, &d.ReadBytes, nil, d.TimeSinceUpdate),
				WriteBps: pickRate(d.WriteRate, &d.WriteBytes, nil, d.TimeSinceUpdate),
			})
		}
	case "uptime":
		secs, err := parseGlancesUptime(body)
		if err != nil {
			return fmt.Errorf("glances plugin %q: %w: %v", name, errBadJSON, err)
		}
		s.UptimeSeconds = secs
	case "processcount":
		var v glancesProcessCount
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.Processes = uint32(min(toUint64(v.Total), math.MaxUint32))
	case "sensors":
		var v []glancesSensor
		if err := decode(name, body, &v); err != nil {
			return err
		}
		s.Temperatures = nil
		for _, t := range v {
			if len(s.Temperatures) == MaxItems {
				break
			}
			if t.Value == nil || !(t.Unit == "C" || t.Unit == "F" || strings.HasPrefix(t.Type, "temperature")) {
				continue
			}
			c := *t.Value
			if t.Unit == "F" {
				c = (c - 32) * 5 / 9
			}
			label := cleanName(t.Label)
			if label == "" || !plausibleCelsius(c) {
				continue
			}
			s.Temperatures = append(s.Temperatures, Temperature{Label: label, Celsius: c})
		}
	default:
		return fmt.Errorf("glances plugin %q is not part of a sample", name)
	}
	return nil
}

func hasDevice(fs []Filesystem, device string) bool {
	for _, f := range fs {
		if f.Device == device {
			return true
		}
	}
	return false
}

// pickRate prefers a rate Glances computed itself (v4), then a delta since
// the previous update divided by the time since that update.
func pickRate(ready, delta, deltaAlt *float64, seconds float64) float64 {
	switch {
	case ready != nil:
		return finite(*ready)
	case delta != nil:
		return rate(*delta, seconds)
	case deltaAlt != nil:
		return rate(*deltaAlt, seconds)
	}
	return 0
}

// parseGlancesUptime accepts the uptime plugin's value: a string in Python's
// timedelta form ("0:05:45", "1 day, 2:03:04", "6 days, 22:22:05", optionally
// with fractional seconds) or a number of seconds.
func parseGlancesUptime(body []byte) (uint64, error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return 0, err
	}
	switch v := raw.(type) {
	case float64:
		if math.IsNaN(v) || v < 0 || v > math.MaxUint32*1000 {
			return 0, fmt.Errorf("uptime %v out of range", v)
		}
		return uint64(v), nil
	case string:
		return parseTimedelta(v)
	case map[string]any:
		// Some releases wrap the value: {"seconds": N} or {"uptime": "..."}.
		if secs, ok := v["seconds"].(float64); ok && secs >= 0 && secs < math.MaxUint32*1000 {
			return uint64(secs), nil
		}
		if str, ok := v["uptime"].(string); ok {
			return parseTimedelta(str)
		}
	}
	return 0, errors.New("uptime has an unexpected shape")
}

func parseTimedelta(s string) (uint64, error) {
	bad := func() (uint64, error) { return 0, fmt.Errorf("uptime %q is not in days, H:MM:SS form", cleanName(s)) }
	if len(s) > 64 {
		return bad()
	}
	var days uint64
	if i := strings.IndexByte(s, ','); i >= 0 {
		d, unit, ok := strings.Cut(strings.TrimSpace(s[:i]), " ")
		if !ok || (unit != "day" && unit != "days") {
			return bad()
		}
		n, err := strconv.ParseUint(d, 10, 32)
		if err != nil {
			return bad()
		}
		days = n
		s = strings.TrimSpace(s[i+1:])
	}
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		s = s[:dot]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad()
	}
	var hms [3]uint64
	limits := [3]uint64{23, 59, 59}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil || n > limits[i] {
			return bad()
		}
		hms[i] = n
	}
	return days*86400 + hms[0]*3600 + hms[1]*60 + hms[2], nil
}
