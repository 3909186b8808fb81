package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/health"
	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/healthprobe"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/monitor"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// GET /metrics serves what the controller knows in the Prometheus text
// format (0.0.4), for existing monitoring stacks: each server's newest
// sample and agent state, each domain's health, uptime and certificate
// expiry, each monitor's state, answer time and uptime, and the open
// incidents. It needs a user's API token (or session)
// like any other read.
func (c *Controller) registerPrometheus(w *web.Server) error {
	return w.Register(web.Route{Method: "GET", Pattern: "/metrics", Policy: web.PolicyUser, Kind: web.KindAPI, Handler: c.servePrometheus})
}

// promServer is one server as exported.
type promServer struct {
	Name, OS, Arch, AgentVersion string
	Connected                    bool
	LastSeen                     int64 // Unix seconds; 0 never
	Sample                       *metrics.Summary
	Desired, Applied             int64
}

// promDomain is one domain as exported.
type promDomain struct {
	Name string
	// Health is each serving server's newest probe: server name → up.
	Health map[string]bool
	// Uptime is the share of probes up per window ("24h", "7d", "30d").
	Uptime map[string]float64
	// CertExpiry is when the active certificate ends (Unix seconds); 0 none.
	CertExpiry int64
}

// promMonitor is one enabled monitor as exported.
type promMonitor struct {
	Name, Kind string
	Checked    bool // false until its first check
	Up         bool
	LatencyMS  int
	// Uptime is the share of checks up per window ("24h", "7d", "30d").
	Uptime map[string]float64
	// CertExpiry is when an https target's certificate expires (Unix
	// seconds); 0 unknown.
	CertExpiry int64
}

// promData is everything exported, gathered at once.
type promData struct {
	Version   string
	Servers   []promServer
	Domains   []promDomain
	Monitors  []promMonitor
	Incidents map[[2]string]int // (state, severity) → open incidents
}

func (c *Controller) gatherPrometheus(ctx context.Context) (promData, error) {
	d := promData{Version: version.Version, Incidents: map[[2]string]int{}}
	srvs, err := c.db.Client.Server.Query().Where(server.StatusNEQ(server.StatusRemoved)).Order(ent.Asc(server.FieldName)).All(ctx)
	if err != nil {
		return d, err
	}
	ids := make([]int, len(srvs))
	names := make(map[int]string, len(srvs))
	for i, s := range srvs {
		ids[i], names[s.ID] = s.ID, s.Name
	}
	sums, err := c.query.LatestSummaries(ctx, ids)
	if err != nil {
		return d, err
	}
	for _, s := range srvs {
		ps := promServer{Name: s.Name, OS: s.Os, Arch: s.Arch, AgentVersion: s.AgentVersion,
			Connected: c.hub.Connected(strconv.Itoa(s.ID)), Desired: s.DesiredRevision, Applied: s.AppliedRevision}
		if s.LastSeenAt != nil {
			ps.LastSeen = s.LastSeenAt.Unix()
		}
		if sum, ok := sums[s.ID]; ok {
			ps.Sample = &sum
		}
		d.Servers = append(d.Servers, ps)
	}

	doms, err := c.db.Client.Domain.Query().Select(domain.FieldName).Order(ent.Asc(domain.FieldName)).All(ctx)
	if err != nil {
		return d, err
	}
	dids := make([]int, len(doms))
	for i, dm := range doms {
		dids[i] = dm.ID
	}
	probes, err := c.db.Client.HealthProbe.Query().Where(healthprobe.DomainIDIn(dids...)).
		Select(healthprobe.FieldDomainID, healthprobe.FieldServerID, healthprobe.FieldOk).All(ctx)
	if err != nil {
		return d, err
	}
	spans := map[string]map[int]health.Uptime{}
	for _, sp := range health.Spans {
		if spans[sp.Name], err = c.health.DomainUptime(ctx, dids, sp.Span); err != nil {
			return d, err
		}
	}
	certsBy, err := c.certs.ActiveFor(ctx, dids)
	if err != nil {
		return d, err
	}
	byID := map[int]*promDomain{}
	for _, dm := range doms {
		pd := promDomain{Name: dm.Name, Health: map[string]bool{}, Uptime: map[string]float64{}}
		for _, sp := range health.Spans {
			if u, ok := spans[sp.Name][dm.ID]; ok && u.Probes() > 0 {
				pd.Uptime[sp.Name] = float64(u.Up) / float64(u.Probes())
			}
		}
		if ct := certsBy[dm.ID]; ct != nil {
			pd.CertExpiry = ct.NotAfter.Unix()
		}
		d.Domains = append(d.Domains, pd)
		byID[dm.ID] = &d.Domains[len(d.Domains)-1]
	}
	for _, p := range probes {
		if pd, name := byID[p.DomainID], names[p.ServerID]; pd != nil && name != "" {
			pd.Health[name] = p.Ok
		}
	}

	if d.Monitors, err = c.gatherMonitors(ctx); err != nil {
		return d, err
	}

	open, err := c.db.Client.Incident.Query().Where(incident.StateIn(incident.StatePending, incident.StateFiring)).
		Select(incident.FieldState, incident.FieldSeverity).All(ctx)
	if err != nil {
		return d, err
	}
	for _, inc := range open {
		d.Incidents[[2]string{string(inc.State), inc.Severity}]++
	}
	return d, nil
}

// gatherMonitors reads the enabled monitors with their uptime.
func (c *Controller) gatherMonitors(ctx context.Context) ([]promMonitor, error) {
	ms, err := c.db.Client.Monitor.Query().Where(monitor.Enabled(true)).Order(ent.Asc(monitor.FieldName)).All(ctx)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	ids := make([]int, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	up, err := c.newMonitors().Uptime(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]promMonitor, len(ms))
	for i, m := range ms {
		pm := promMonitor{Name: m.Name, Kind: string(m.Kind), Checked: m.CheckedAt != nil, Up: m.Ok, LatencyMS: m.LatencyMs, Uptime: map[string]float64{}}
		if m.CertNotAfter != nil {
			pm.CertExpiry = m.CertNotAfter.Unix()
		}
		for _, sp := range uptime.Spans {
			if u, ok := up[sp.Name][m.ID]; ok && u.Probes() > 0 {
				pm.Uptime[sp.Name] = float64(u.Up) / float64(u.Probes())
			}
		}
		out[i] = pm
	}
	return out, nil
}

func (c *Controller) servePrometheus(w http.ResponseWriter, r *http.Request) {
	d, err := c.gatherPrometheus(r.Context())
	if err != nil {
		c.log.Error("prometheus metrics", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the metrics could not be read", nil)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writePrometheus(w, d)
}

// writePrometheus writes d in the Prometheus text format. Every metric has
// its HELP and TYPE lines; label values are escaped.
func writePrometheus(out io.Writer, d promData) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, v float64, labels ...string) {
		w.WriteString(name)
		if len(labels) > 0 {
			w.WriteByte('{')
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					w.WriteByte(',')
				}
				fmt.Fprintf(w, "%s=\"%s\"", labels[i], escapeLabel(labels[i+1]))
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		w.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		w.WriteByte('\n')
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}

	family("gatehouse_build_info", "gauge", "The controller's version, as a label.")
	sample("gatehouse_build_info", 1, "version", d.Version)

	family("gatehouse_server_info", "gauge", "Each server, with its system and agent version as labels.")
	for _, s := range d.Servers {
		sample("gatehouse_server_info", 1, "server", s.Name, "os", s.OS, "arch", s.Arch, "agent_version", s.AgentVersion)
	}
	family("gatehouse_server_connected", "gauge", "Whether the server's agent holds a session with the controller (1) or not (0).")
	for _, s := range d.Servers {
		sample("gatehouse_server_connected", b(s.Connected), "server", s.Name)
	}
	family("gatehouse_server_last_seen_timestamp_seconds", "gauge", "When the server last reported, in Unix seconds.")
	for _, s := range d.Servers {
		if s.LastSeen > 0 {
			sample("gatehouse_server_last_seen_timestamp_seconds", float64(s.LastSeen), "server", s.Name)
		}
	}
	gauges := []struct {
		name, help string
		v          func(*metrics.Summary) float64
	}{
		{"gatehouse_server_cpu_percent", "CPU in use, percent of all cores.", func(m *metrics.Summary) float64 { return m.CPU }},
		{"gatehouse_server_load1", "Load average over 1 minute.", func(m *metrics.Summary) float64 { return m.Load1 }},
		{"gatehouse_server_load5", "Load average over 5 minutes.", func(m *metrics.Summary) float64 { return m.Load5 }},
		{"gatehouse_server_load15", "Load average over 15 minutes.", func(m *metrics.Summary) float64 { return m.Load15 }},
		{"gatehouse_server_memory_used_bytes", "Memory in use.", func(m *metrics.Summary) float64 { return float64(m.MemUsed) }},
		{"gatehouse_server_memory_total_bytes", "Memory in all.", func(m *metrics.Summary) float64 { return float64(m.MemTotal) }},
		{"gatehouse_server_swap_used_bytes", "Swap in use.", func(m *metrics.Summary) float64 { return float64(m.SwapUsed) }},
		{"gatehouse_server_swap_total_bytes", "Swap in all.", func(m *metrics.Summary) float64 { return float64(m.SwapTotal) }},
		{"gatehouse_server_disk_used_bytes", "Space in use on the server's filesystems.", func(m *metrics.Summary) float64 { return float64(m.DiskUsed) }},
		{"gatehouse_server_disk_total_bytes", "Space in all on the server's filesystems.", func(m *metrics.Summary) float64 { return float64(m.DiskTotal) }},
		{"gatehouse_server_network_receive_bytes_per_second", "Bytes received per second, all interfaces.", func(m *metrics.Summary) float64 { return m.NetRx }},
		{"gatehouse_server_network_transmit_bytes_per_second", "Bytes sent per second, all interfaces.", func(m *metrics.Summary) float64 { return m.NetTx }},
		{"gatehouse_server_disk_read_bytes_per_second", "Bytes read from disks per second.", func(m *metrics.Summary) float64 { return m.DiskRead }},
		{"gatehouse_server_disk_write_bytes_per_second", "Bytes written to disks per second.", func(m *metrics.Summary) float64 { return m.DiskWrite }},
		{"gatehouse_server_uptime_seconds", "How long the server has been up.", func(m *metrics.Summary) float64 { return float64(m.Uptime) }},
		{"gatehouse_server_processes", "Processes running on the server.", func(m *metrics.Summary) float64 { return float64(m.Processes) }},
	}
	for _, g := range gauges {
		family(g.name, "gauge", g.help+" From the newest sample.")
		for _, s := range d.Servers {
			if s.Sample != nil {
				sample(g.name, g.v(s.Sample), "server", s.Name)
			}
		}
	}
	// nginx's own figures exist only for servers whose agent read them.
	nginxGauges := []struct {
		name, help string
		v          func(*metrics.Summary) float64
	}{
		{"gatehouse_server_nginx_requests_per_second", "Requests nginx served per second.", func(m *metrics.Summary) float64 { return m.NginxRPS }},
		{"gatehouse_server_nginx_connections", "Client connections open in nginx.", func(m *metrics.Summary) float64 { return m.NginxConns }},
	}
	for _, g := range nginxGauges {
		family(g.name, "gauge", g.help+" From the newest sample.")
		for _, s := range d.Servers {
			if s.Sample != nil && s.Sample.Nginx {
				sample(g.name, g.v(s.Sample), "server", s.Name)
			}
		}
	}
	family("gatehouse_nginx_revision_desired", "gauge", "The newest nginx configuration revision rendered for the server (0: none).")
	for _, s := range d.Servers {
		sample("gatehouse_nginx_revision_desired", float64(s.Desired), "server", s.Name)
	}
	family("gatehouse_nginx_revision_applied", "gauge", "The nginx configuration revision the server's agent last applied (0: none).")
	for _, s := range d.Servers {
		sample("gatehouse_nginx_revision_applied", float64(s.Applied), "server", s.Name)
	}

	family("gatehouse_domain_health_up", "gauge", "Whether the domain's newest health probe through the server was up (1) or down (0).")
	for _, dm := range d.Domains {
		srvs := make([]string, 0, len(dm.Health))
		for s := range dm.Health {
			srvs = append(srvs, s)
		}
		sort.Strings(srvs)
		for _, s := range srvs {
			sample("gatehouse_domain_health_up", b(dm.Health[s]), "domain", dm.Name, "server", s)
		}
	}
	family("gatehouse_domain_uptime_ratio", "gauge", "The share of the domain's health probes that were up over the window (0 to 1).")
	for _, dm := range d.Domains {
		for _, sp := range health.Spans {
			if v, ok := dm.Uptime[sp.Name]; ok {
				sample("gatehouse_domain_uptime_ratio", v, "domain", dm.Name, "window", sp.Name)
			}
		}
	}
	family("gatehouse_certificate_expiry_timestamp_seconds", "gauge", "When the domain's active certificate expires, in Unix seconds.")
	for _, dm := range d.Domains {
		if dm.CertExpiry > 0 {
			sample("gatehouse_certificate_expiry_timestamp_seconds", float64(dm.CertExpiry), "domain", dm.Name)
		}
	}

	family("gatehouse_monitor_up", "gauge", "Whether the enabled monitor's newest check was up (1) or down (0); absent until its first check.")
	for _, m := range d.Monitors {
		if m.Checked {
			sample("gatehouse_monitor_up", b(m.Up), "monitor", m.Name, "kind", m.Kind)
		}
	}
	family("gatehouse_monitor_latency_seconds", "gauge", "How long the monitor's newest check took.")
	for _, m := range d.Monitors {
		if m.Checked {
			sample("gatehouse_monitor_latency_seconds", float64(m.LatencyMS)/1000, "monitor", m.Name)
		}
	}
	family("gatehouse_monitor_uptime_ratio", "gauge", "The share of the monitor's checks that were up over the window (0 to 1).")
	for _, m := range d.Monitors {
		for _, sp := range uptime.Spans {
			if v, ok := m.Uptime[sp.Name]; ok {
				sample("gatehouse_monitor_uptime_ratio", v, "monitor", m.Name, "window", sp.Name)
			}
		}
	}

	family("gatehouse_monitor_certificate_expiry_timestamp_seconds", "gauge", "When the certificate the monitor's https or TLS target presented expires, in Unix seconds.")
	for _, m := range d.Monitors {
		if m.CertExpiry > 0 {
			sample("gatehouse_monitor_certificate_expiry_timestamp_seconds", float64(m.CertExpiry), "monitor", m.Name)
		}
	}

	family("gatehouse_incidents_open", "gauge", "Open incidents by state and severity.")
	keys := make([][2]string, 0, len(d.Incidents))
	for k := range d.Incidents {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		sample("gatehouse_incidents_open", float64(d.Incidents[k]), "state", k[0], "severity", k[1])
	}
}

// escapeLabel escapes a label value as the text format requires.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
