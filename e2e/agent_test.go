package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/glancestest"
)

type serverView struct {
	ID            int    `json:"id"`
	Name          string `json:"name"`
	Status        string `json:"status"`
	MetricsSource string `json:"metrics_source"`
	AgentVersion  string `json:"agent_version"`
	Connected     bool   `json:"connected"`
	CertNotAfter  string `json:"cert_not_after"`
	Latest        *struct {
		TS       int64   `json:"ts"`
		Source   string  `json:"source"`
		CPU      float64 `json:"cpu"`
		MemTotal int64   `json:"mem_total"`
	} `json:"latest"`
}

type latestView struct {
	Time        string  `json:"time"`
	Source      string  `json:"source"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemTotal    string  `json:"mem_total"` // protojson writes 64-bit integers as strings
	MemUsed     string  `json:"mem_used"`
	Filesystems []struct {
		Mount string `json:"mount"`
		Size  string `json:"size"`
	} `json:"filesystems"`
}

type seriesView struct {
	Resolution string      `json:"resolution"`
	Points     []pointView `json:"points"`
}

type pointView struct {
	T   int64   `json:"t"`
	CPU float64 `json:"cpu"`
	Mem float64 `json:"mem"`
}

func (c *controllerProc) server(id int) serverView {
	c.t.Helper()
	var s serverView
	if code := c.api("GET", fmt.Sprintf("/api/v1/servers/%d", id), nil, &s); code != 200 {
		c.t.Fatalf("GET server %d: %d", id, code)
	}
	return s
}

func (c *controllerProc) latest(id int) (latestView, bool) {
	c.t.Helper()
	var l latestView
	code := c.api("GET", fmt.Sprintf("/api/v1/servers/%d/latest", id), nil, &l)
	return l, code == 200
}

func (c *controllerProc) series(id int) seriesView {
	c.t.Helper()
	var s seriesView
	if code := c.api("GET", fmt.Sprintf("/api/v1/servers/%d/metrics?range=1h", id), nil, &s); code != 200 {
		c.t.Fatalf("GET metrics: %d", code)
	}
	return s
}

// serverID finds a server's id by name through the API.
func (c *controllerProc) serverID(name string) int {
	c.t.Helper()
	var out struct {
		Servers []serverView `json:"servers"`
	}
	c.api("GET", "/api/v1/servers", nil, &out)
	for _, s := range out.Servers {
		if s.Name == name {
			return s.ID
		}
	}
	c.t.Fatalf("no server %q", name)
	return 0
}

// TestAgentReportsGlancesMetrics: a real agent enrolls with a token and, within
// two intervals, the server is online with CPU, memory and filesystems from a
// real Glances. With Glances stopped the agent switches to its own sampler,
// and back when Glances returns.
func TestAgentReportsGlancesMetrics(t *testing.T) {
	t.Parallel()
	g := glancestest.Start(t)
	c := startController(t, "--metrics-interval", "2s")
	token, pin := c.addServer("node-a")
	id := c.serverID("node-a")
	if s := c.server(id); s.Status != "pending" {
		t.Fatalf("before the agent runs the server is %q, want pending", s.Status)
	}
	startAgent(t, c, token, pin, g.URL)
	// Enrollment plus two intervals; a generous bound keeps a loaded machine from flaking.
	eventually(t, 20*time.Second, "server online with a stored Glances sample", func() bool {
		s := c.server(id)
		l, ok := c.latest(id)
		return s.Status == "online" && ok && l.Source == "glances"
	})
	l, _ := c.latest(id)
	if l.MemTotal == "" || l.MemTotal == "0" || l.MemUsed == "" {
		t.Fatalf("memory missing from the stored sample: %+v", l)
	}
	if len(l.Filesystems) == 0 || l.Filesystems[0].Size == "" {
		t.Fatalf("filesystems missing from the stored sample: %+v", l)
	}
	if s := c.series(id); s.Resolution != "raw" || len(s.Points) == 0 {
		t.Fatalf("no chart points: %+v", s)
	}
	if s := c.server(id); !s.Connected || s.AgentVersion == "" {
		t.Fatalf("agent facts missing: %+v", s)
	}

	// Prometheus scrapes the same sample with the API token.
	c.api("GET", "/api/v1/me", nil, nil) // makes the token
	req, _ := http.NewRequest("GET", "http://"+c.httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gatehouse_server_connected{server="node-a"} 1`, `gatehouse_server_cpu_percent{server="node-a"} `,
		`gatehouse_server_memory_total_bytes{server="node-a"} `} {
		if resp.StatusCode != 200 || !strings.Contains(string(scrape), want) {
			t.Fatalf("scrape: %d, lacks %q:\n%s", resp.StatusCode, want, scrape)
		}
	}

	// The plugin view goes through the agent to Glances.
	var procs []map[string]any
	if code := c.api("GET", fmt.Sprintf("/api/v1/servers/%d/glances/processlist", id), nil, &procs); code != 200 || len(procs) == 0 {
		t.Fatalf("processlist through the agent: %d, %d processes", code, len(procs))
	}
	var errBody map[string]any
	if code := c.api("GET", fmt.Sprintf("/api/v1/servers/%d/glances/..%%2fetc", id), nil, &errBody); code == 200 {
		t.Fatal("a plugin name outside the allowlist was fetched")
	}

	g.Stop()
	eventually(t, 30*time.Second, "samples from the agent's own sampler", func() bool {
		l, ok := c.latest(id)
		return ok && l.Source == "proc"
	})
	g.Start()
	eventually(t, 30*time.Second, "samples from Glances again", func() bool {
		l, ok := c.latest(id)
		return ok && l.Source == "glances"
	})
}

// TestControllerCrashLosesNoSample kills the controller with SIGKILL while an
// agent streams, restarts it, and checks that every sample the agent took
// (it logs each one at trace level) arrives exactly once, those taken while
// the controller was down included.
func TestControllerCrashLosesNoSample(t *testing.T) {
	t.Parallel()
	c := startController(t, "--metrics-interval", "1s")
	token, pin := c.addServer("node-b")
	id := c.serverID("node-b")
	// No Glances: the agent's own sampler reports, which keeps this test fast.
	agent := startAgentWith(t, c, token, pin, "http://127.0.0.1:1", []string{"-log-level", "trace"})
	eventually(t, 20*time.Second, "first samples", func() bool { return len(c.series(id).Points) >= 3 })

	taken := func() []int64 {
		var ts []int64
		for _, m := range sampleTaken.FindAllStringSubmatch(agent.out.String(), -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			ts = append(ts, n)
		}
		return ts
	}
	c.kill()
	before := len(taken())
	time.Sleep(6 * time.Second) // the agent keeps sampling into its buffer
	during := taken()[before:]
	c.restart()
	if len(during) == 0 {
		t.Fatal("the agent took no sample while the controller was down")
	}
	// Every sample taken up to the restart is stored, each once.
	want := taken()
	var pts []pointView
	eventually(t, 40*time.Second, "every sample taken to arrive", func() bool {
		pts = c.series(id).Points
		stored := map[int64]bool{}
		for _, p := range pts {
			stored[p.T] = true
		}
		for _, ts := range want {
			if !stored[ts] {
				return false
			}
		}
		return true
	})
	seen := map[int64]bool{}
	for _, p := range pts {
		if seen[p.T] {
			t.Fatalf("sample %d stored twice", p.T)
		}
		seen[p.T] = true
	}
}

// sampleTaken is the agent's trace line for each sample it takes.
var sampleTaken = regexp.MustCompile(`metrics sample taken: ts=(\d+)`)

var onlineLine = regexp.MustCompile(`node online: node=(\d+)`)

// TestCertificateRenewalKeepsTheSession runs agents with six-second
// certificates: the agent renews them (the controller records new expiry
// times) while its session stays the one it opened.
func TestCertificateRenewalKeepsTheSession(t *testing.T) {
	t.Parallel()
	c := startController(t, "--metrics-interval", "1s", "--cert-lifetime", "6s")
	token, pin := c.addServer("node-c")
	id := c.serverID("node-c")
	startAgent(t, c, token, pin, "http://127.0.0.1:1")
	eventually(t, 20*time.Second, "online", func() bool { return c.server(id).Status == "online" })
	expiries := map[string]bool{}
	eventually(t, 30*time.Second, "three certificates", func() bool {
		expiries[c.server(id).CertNotAfter] = true
		return len(expiries) >= 3
	})
	// Fifteen seconds is more than two lifetimes of the first certificate.
	sessions := 0
	for _, m := range onlineLine.FindAllStringSubmatch(c.out.String(), -1) {
		if m[1] == strconv.Itoa(id) {
			sessions++
		}
	}
	if sessions != 1 {
		t.Fatalf("the agent opened %d sessions while renewing, want 1\n%s", sessions, lastLines(c.out.String(), 40))
	}
	if !c.server(id).Connected {
		t.Fatal("session lost after renewals")
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestLocalAgentMonitorsTheControllerHost: with its defaults, the controller
// also runs an agent for its own host, enrolled through the same token path,
// so the dashboard shows one live server right after the first start.
func TestLocalAgentMonitorsTheControllerHost(t *testing.T) {
	t.Parallel()
	c := startController(t, "--metrics-interval", "1s", "--local-agent=true", "--glances-url", "http://127.0.0.1:1")
	var out struct {
		Servers []serverView `json:"servers"`
	}
	eventually(t, 20*time.Second, "the controller's own host online", func() bool {
		c.api("GET", "/api/v1/servers", nil, &out)
		return len(out.Servers) == 1 && out.Servers[0].Status == "online" && out.Servers[0].Latest != nil &&
			out.Servers[0].MetricsSource == "proc"
	})
	if s := out.Servers[0]; s.Latest.Source != "proc" || s.Latest.MemTotal == 0 {
		t.Fatalf("local server: %+v", s)
	}
	// A restart reuses the enrolled identity instead of enrolling again.
	c.stop()
	c.restart()
	eventually(t, 20*time.Second, "online again", func() bool {
		c.api("GET", "/api/v1/servers", nil, &out)
		return len(out.Servers) == 1 && out.Servers[0].Connected
	})
	if n := strings.Count(c.out.String(), "agent enrolled"); n != 0 {
		t.Fatalf("the local agent enrolled again after a restart (%d times)", n)
	}
}
