package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite" // to give a server labels, which have no editor yet
)

// glancesStandIn is a Glances v3 REST API on loopback that serves a CPU value
// the test chooses, and fixed memory and load (from the agent's fixtures).
type glancesStandIn struct {
	URL string
	cpu atomic.Uint64 // math.Float64bits
}

func startGlancesStandIn(t *testing.T, cpu float64) *glancesStandIn {
	t.Helper()
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "agent", "internal", "metrics", "testdata", "glances", "v3", "api", "3", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mem, load := fixture("mem"), fixture("load")
	g := &glancesStandIn{}
	g.setCPU(cpu)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/3/pluginslist", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`["cpu","mem","load"]`))
	})
	mux.HandleFunc("GET /api/3/cpu", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"total":%.1f,"user":%.1f,"system":0.0,"idle":%.1f,"cpucore":2,"time_since_update":1.0}`, g.CPU(), g.CPU(), 100-g.CPU())
	})
	mux.HandleFunc("GET /api/3/mem", func(w http.ResponseWriter, _ *http.Request) { w.Write(mem) })
	mux.HandleFunc("GET /api/3/load", func(w http.ResponseWriter, _ *http.Request) { w.Write(load) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g.URL = "http://" + ln.Addr().String()
	return g
}

func (g *glancesStandIn) setCPU(v float64) { g.cpu.Store(math.Float64bits(v)) }
func (g *glancesStandIn) CPU() float64     { return math.Float64frombits(g.cpu.Load()) }

// startAgentAs runs an enrolled agent in its own UTS namespace with the given
// hostname, keeping its state in stateDir so it can be stopped and started again.
func startAgentAs(t *testing.T, c *controllerProc, token, pin, glancesURL, hostname, stateDir string) *proc {
	t.Helper()
	env := []string{
		"GATEHOUSE_AGENT_TOKEN=" + token,
		"GATEHOUSE_AGENT_STATE_DIR=" + stateDir,
		"GATEHOUSE_AGENT_NGINX_DIR=" + filepath.Join(stateDir, "nginx"),
		"GATEHOUSE_AGENT_GLANCES_URL=" + glancesURL,
	}
	// sethostname takes any bytes; the agent reports what it reads back.
	const script = "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])"
	return startProc(t, "agent", env, "/usr/bin/unshare", "--uts", "/usr/bin/python3", "-c", script, hostname,
		bins.agent, "-controller", c.agentAddr, "-ca_pin", pin)
}

// setHostileFacts writes a server's hostname and labels straight into the
// controller's SQLite database: there is no label editor yet, and the agent
// link refuses such hostnames, but values stored by other paths (an older
// agent, a future editor) must still reach chat as literal text.
func setHostileFacts(t *testing.T, c *controllerProc, id int, hostname string, labels []string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dataDir, "gatehouse.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, _ := json.Marshal(labels)
	if _, err := db.Exec("UPDATE servers SET hostname = ?, labels = ? WHERE id = ?", hostname, string(b), id); err != nil {
		t.Fatal(err)
	}
}

type incidentView struct {
	ID         int     `json:"id"`
	RuleName   string  `json:"rule_name"`
	ServerID   int     `json:"server_id"`
	State      string  `json:"state"`
	Severity   string  `json:"severity"`
	Value      float64 `json:"value"`
	AckedBy    string  `json:"acked_by"`
	AckedAt    *string `json:"acked_at"`
	NotifiedAt *string `json:"notified_at"`
}

func (c *controllerProc) incidents() []incidentView {
	var out struct {
		Incidents []incidentView `json:"incidents"`
	}
	if code := c.api("GET", "/api/v1/alerts/incidents", nil, &out); code != 200 {
		c.t.Fatalf("incidents: %d", code)
	}
	return out.Incidents
}

// mustAPI calls the API and fails unless it answers want.
func (c *controllerProc) mustAPI(method, path string, body, out any, want int) {
	c.t.Helper()
	var raw json.RawMessage
	code := c.api(method, path, body, &raw)
	if code != want {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *controllerProc) rulesCount() (int, error) {
	var out struct {
		Rules []struct{ ID int } `json:"rules"`
	}
	if code := c.api("GET", "/api/v1/alerts/rules", nil, &out); code != 200 {
		return 0, fmt.Errorf("rules: %d", code)
	}
	return len(out.Rules), nil
}
