package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // reads the controller's database after the run
)

// report is everything one run measured.
type report struct {
	Date    string  `json:"date"`
	Command string  `json:"command"`
	Machine machine `json:"machine"`
	Agents  int     `json:"agents"`

	EnrollSeconds float64      `json:"enroll_seconds"`
	Controller    *phaseResult `json:"controller,omitempty"`
	Baseline      *phaseResult `json:"baseline,omitempty"`
	// IngestRatio is the controller's acked ingest rate over the bare server's.
	IngestRatio float64       `json:"ingest_ratio,omitempty"`
	Database    *dbCheck      `json:"database,omitempty"`
	RealAgent   *agentFigures `json:"real_agent,omitempty"`
}

type machine struct {
	Cores  int    `json:"cores"`
	CPU    string `json:"cpu"`
	MemMB  int    `json:"mem_mb"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// dbCheck compares the rows stored per simulated server with what was acked.
type dbCheck struct {
	Rows       uint64 `json:"rows"`
	Acked      uint64 `json:"acked"`
	Mismatched int    `json:"servers_mismatched"`
	Example    string `json:"example_mismatch,omitempty"`
}

// agentFigures is the real agent's footprint.
type agentFigures struct {
	Interval    string    `json:"interval"`
	Glances     bool      `json:"glances"`
	Env         string    `json:"env,omitempty"`
	Usage       procUsage `json:"usage"`
	StoredRows  uint64    `json:"stored_rows"`
	serverID    int
	measureFrom time.Time
}

func bench(ctx context.Context, o options, dir string, progress io.Writer) (*report, error) {
	rep := &report{Date: time.Now().UTC().Format("2006-01-02"), Command: o.Command, Machine: describeMachine(), Agents: o.Agents}
	dataDir := filepath.Join(dir, "data")
	say := func(format string, a ...any) { fmt.Fprintf(progress, "loadgen: "+format+"\n", a...) }

	firstInterval := time.Second
	if o.AgentDuration > 0 {
		firstInterval = o.AgentInterval
	}
	ctrl, err := startController(ctx, o.Gatehouse, dataDir, dir, "controller-1", firstInterval)
	if err != nil {
		return nil, err
	}
	stopCtrl := func() error {
		if ctrl == nil {
			return nil
		}
		err := ctrl.stop(30 * time.Second)
		ctrl = nil
		return err
	}
	defer stopCtrl()

	out, err := ctrl.admin(ctx, "token", "create", "loadgen", "--user", "admin")
	if err != nil {
		return nil, err
	}
	apiToken := lastLine(out)
	out, err = ctrl.admin(ctx, "ca", "pin")
	if err != nil {
		return nil, err
	}
	pin := lastLine(out)
	api := func() *apiClient {
		return &apiClient{base: "http://" + ctrl.httpAddr, token: apiToken, http: &http.Client{Timeout: 60 * time.Second}}
	}

	if o.AgentDuration > 0 {
		say("measuring a real gatehouse-agent for %s at a %s interval", o.AgentDuration, o.AgentInterval)
		fig, err := measureRealAgent(ctx, o, dir, ctrl, api(), pin)
		if err != nil {
			return rep, fmt.Errorf("real agent: %w", err)
		}
		rep.RealAgent = fig
		if err := stopCtrl(); err != nil {
			return rep, err
		}
		if ctrl, err = startController(ctx, o.Gatehouse, dataDir, dir, "controller-2", time.Second); err != nil {
			return rep, err
		}
	}

	say("enrolling %d simulated agents through the API", o.Agents)
	t0 := time.Now()
	sims, err := enrollSims(ctx, o.Agents, ctrl, api(), pin, progress)
	if err != nil {
		return rep, err
	}
	rep.EnrollSeconds = time.Since(t0).Seconds()

	if o.BaselineDuration > 0 {
		say("baseline: %d agents against a bare gRPC server for %s", o.Agents, o.BaselineDuration)
		if rep.Baseline, err = runBaseline(ctx, o, dir, sims, progress); err != nil {
			return rep, fmt.Errorf("baseline: %w", err)
		}
	}

	say("controller: %d agents for %s", o.Agents, o.Duration)
	ctrlTarget := target{addr: ctrl.grpcAddr, pin: pin, cert: func(s *sim) *tls.Certificate { return s.cert }}
	rep.Controller, err = runPhase(ctx, sims, ctrlTarget, phaseConfig{
		Name: "controller", Ramp: o.Ramp, Warmup: o.Warmup, Duration: o.Duration, Drain: o.Drain,
		ServerPID: ctrl.pid(), Progress: progress,
	})
	if err != nil {
		return rep, fmt.Errorf("controller phase: %w", err)
	}
	if ctrl.exited() {
		return rep, fmt.Errorf("the controller exited during the run\n%s", ctrl.logTail())
	}
	if rep.Baseline != nil && rep.Baseline.IngestPerSec > 0 {
		rep.IngestRatio = rep.Controller.IngestPerSec / rep.Baseline.IngestPerSec
	}
	if err := stopCtrl(); err != nil {
		return rep, err
	}
	rep.Database, err = checkDatabase(ctx, filepath.Join(dataDir, "gatehouse.db"), rep.Controller.ackedPerNodeID, rep.RealAgent)
	return rep, err
}

// enrollSims registers each simulated agent through the API and enrolls it
// with its own key over the enrollment RPC, a few at a time.
func enrollSims(ctx context.Context, n int, ctrl *controllerProc, api *apiClient, pin string, progress io.Writer) ([]*sim, error) {
	const workers = 16
	sims := make([]*sim, n)
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				s, err := newSim(fmt.Sprintf("sim-%05d", i+1))
				if err == nil {
					var token string
					if _, token, err = api.addServer(ctx, s.name); err == nil {
						err = s.enroll(ctx, ctrl.grpcAddr, pin, token)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				sims[i] = s
				if d := done.Add(1); d%500 == 0 || int(d) == n {
					fmt.Fprintf(progress, "loadgen: enrolled %d/%d\n", d, n)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return sims, ctx.Err()
}

// runBaseline runs the sims against a bare server process with its own CA.
func runBaseline(ctx context.Context, o options, dir string, sims []*sim, progress io.Writer) (*phaseResult, error) {
	ca, err := newBareCA()
	if err != nil {
		return nil, err
	}
	bareDir := filepath.Join(dir, "bare")
	if err := os.MkdirAll(bareDir, 0o700); err != nil {
		return nil, err
	}
	if err := ca.writeServerFiles(bareDir); err != nil {
		return nil, err
	}
	certs := make(map[*sim]*tls.Certificate, len(sims))
	for _, s := range sims {
		c, err := ca.issue(s.key, s.nodeID)
		if err != nil {
			return nil, err
		}
		certs[s] = c
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "bare-server", "-dir", bareDir, "-listen", "127.0.0.1:0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = progress
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start baseline server: %w", err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	addr, err := scanReady(stdoutPipe)
	if err != nil {
		return nil, err
	}
	go io.Copy(io.Discard, stdoutPipe)
	t := target{addr: addr, pin: ca.pin(), cert: func(s *sim) *tls.Certificate { return certs[s] }}
	return runPhase(ctx, sims, t, phaseConfig{
		Name: "bare", Ramp: o.Ramp, Warmup: o.Warmup, Duration: o.BaselineDuration, Drain: o.Drain,
		ServerPID: cmd.Process.Pid, Progress: progress,
	})
}

// measureRealAgent enrolls and runs the gatehouse-agent binary against the
// controller and watches its CPU and memory after it settled.
func measureRealAgent(ctx context.Context, o options, dir string, ctrl *controllerProc, api *apiClient, pin string) (*agentFigures, error) {
	id, token, err := api.addServer(ctx, "bench-agent")
	if err != nil {
		return nil, err
	}
	fig := &agentFigures{Interval: o.AgentInterval.String(), Glances: o.AgentGlances, Env: o.AgentEnv, serverID: id}
	glancesAddr, err := freeAddr() // nothing listens here unless Glances is started
	if err != nil {
		return nil, err
	}
	if o.AgentGlances {
		_, port, _ := strings.Cut(glancesAddr, ":")
		g, err := startChild("glances", dir, "glances", []string{"-w", "--disable-webui", "-B", "127.0.0.1", "-p", port}, nil)
		if err != nil {
			return nil, err
		}
		defer g.stop(10 * time.Second)
		if err := waitTCP(ctx, g, glancesAddr, 60*time.Second); err != nil {
			return nil, err
		}
	}
	state, nginxDir, conf := filepath.Join(dir, "agent-state"), filepath.Join(dir, "agent-nginx"), filepath.Join(dir, "agent.conf")
	for _, d := range []string{state, nginxDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return nil, err
	}
	env, _ := parseEnvList(o.AgentEnv)
	env = append(env, "GATEHOUSE_AGENT_TOKEN="+token)
	a, err := startChild("agent", dir, o.Agent, []string{
		"-config", conf, "-controller", ctrl.grpcAddr, "-ca_pin", pin, "-state_dir", state,
		"-nginx_dir", nginxDir, "-glances_url", "http://" + glancesAddr, "-log-level", "info",
	}, env)
	if err != nil {
		return nil, err
	}
	defer a.stop(10 * time.Second)
	if err := a.waitLog(ctx, "session established", 60*time.Second); err != nil {
		return nil, err
	}
	// Let it take a few samples and settle before measuring.
	if !sleepCtx(ctx, max(2*o.AgentInterval, 15*time.Second)) {
		return nil, ctx.Err()
	}
	w := newProcWatch(a.pid())
	fig.measureFrom = time.Now()
	w.Start(ctx)
	if !sleepCtx(ctx, o.AgentDuration) {
		w.Stop()
		return nil, ctx.Err()
	}
	if fig.Usage, err = w.Stop(); err != nil {
		return nil, err
	}
	if a.exited() {
		return nil, fmt.Errorf("the agent exited during the measurement\n%s", a.logTail())
	}
	return fig, a.stop(10 * time.Second)
}

// checkDatabase opens the stopped controller's SQLite file read-only and
// compares the rows of every simulated server with the samples acked to it.
func checkDatabase(ctx context.Context, path string, acked map[string]uint64, realAgent *agentFigures) (*dbCheck, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT server_id, COUNT(*) FROM metric_samples GROUP BY server_id")
	if err != nil {
		return nil, fmt.Errorf("count stored samples: %w", err)
	}
	defer rows.Close()
	stored := map[string]uint64{}
	for rows.Next() {
		var id int
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		stored[strconv.Itoa(id)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c := &dbCheck{}
	for node, want := range acked {
		got := stored[node]
		c.Rows += got
		c.Acked += want
		if got != want {
			c.Mismatched++
			if c.Example == "" {
				c.Example = fmt.Sprintf("server %s: %d rows, %d acked", node, got, want)
			}
		}
	}
	if realAgent != nil {
		realAgent.StoredRows = stored[strconv.Itoa(realAgent.serverID)]
	}
	return c, nil
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				m.MemMB = kb / 1024
			}
		}
	}
	return m
}

// writeReport prints the figures as Markdown, ready for docs/BENCHMARKS.md.
func writeReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n## Results (%s)\n\n", r.Date)
	fmt.Fprintf(w, "Machine: %d cores (%s), %d MB RAM, Linux %s, %s\n\n", r.Machine.Cores, r.Machine.CPU, r.Machine.MemMB, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(w, "Command: `%s`\n\n", r.Command)
	if r.EnrollSeconds > 0 {
		fmt.Fprintf(w, "Enrollment of %d agents (API + Enroll RPC, 16 at a time): %.2f s\n\n", r.Agents, r.EnrollSeconds)
	}
	phases := []*phaseResult{r.Controller, r.Baseline}
	if r.Controller != nil || r.Baseline != nil {
		fmt.Fprintln(w, "| figure | controller (SQLite) | bare gRPC baseline |")
		fmt.Fprintln(w, "|---|---|---|")
		row := func(name string, f func(p *phaseResult) string) {
			cells := make([]string, 2)
			for i, p := range phases {
				cells[i] = "—"
				if p != nil {
					cells[i] = f(p)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", name, cells[0], cells[1])
		}
		row("agents connected / simulated", func(p *phaseResult) string { return fmt.Sprintf("%d / %d", p.Connected, p.Agents) })
		row("window", func(p *phaseResult) string { return fmt.Sprintf("%.0f s", p.WindowSeconds) })
		row("ingest (samples/s acked)", func(p *phaseResult) string { return fmt.Sprintf("%.1f", p.IngestPerSec) })
		row("latency taken → acked p50 / p95 / p99 / max", func(p *phaseResult) string {
			l := p.Latency
			return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", l.P50ms, l.P95ms, l.P99ms, l.Maxms)
		})
		row("samples taken / sent / acked", func(p *phaseResult) string { return fmt.Sprintf("%d / %d / %d", p.Taken, p.Sent, p.Acked) })
		row("lost (sent − acked) / dropped from buffers", func(p *phaseResult) string { return fmt.Sprintf("%d / %d", p.Lost, p.Dropped) })
		row("reconnects", func(p *phaseResult) string { return strconv.FormatUint(p.Reconnects, 10) })
		row("server CPU (% of one core)", func(p *phaseResult) string {
			if p.Server == nil {
				return "—"
			}
			return fmt.Sprintf("%.1f %%", p.Server.CPUPercent)
		})
		row("server RSS steady / peak", func(p *phaseResult) string {
			if p.Server == nil {
				return "—"
			}
			return fmt.Sprintf("%.0f / %.0f MB", p.Server.SteadyRSSMB, p.Server.PeakRSSMB)
		})
		row("server anonymous RSS steady", func(p *phaseResult) string {
			if p.Server == nil {
				return "—"
			}
			return fmt.Sprintf("%.0f MB", p.Server.SteadyAnonMB)
		})
		row("load generator CPU (% of one core)", func(p *phaseResult) string { return fmt.Sprintf("%.1f %%", p.Loadgen.CPUPercent) })
		fmt.Fprintln(w)
		if r.IngestRatio > 0 {
			fmt.Fprintf(w, "Controller / baseline ingest ratio: %.3f\n\n", r.IngestRatio)
		}
		for _, p := range phases {
			if p != nil && p.LastError != "" {
				fmt.Fprintf(w, "Last link error (%s): %s\n\n", p.Name, p.LastError)
			}
		}
	}
	if d := r.Database; d != nil {
		verdict := "exactly the acked count"
		if d.Mismatched > 0 {
			verdict = fmt.Sprintf("MISMATCH on %d servers (e.g. %s)", d.Mismatched, d.Example)
		}
		fmt.Fprintf(w, "Database check (SQLite opened read-only after the controller stopped): %d rows for %d acked samples — %s\n\n", d.Rows, d.Acked, verdict)
	}
	if a := r.RealAgent; a != nil {
		src := "/proc sampler (no Glances running)"
		if a.Glances {
			src = "Glances 3 REST API on loopback"
		}
		env := ""
		if a.Env != "" {
			env = ", environment " + a.Env
		}
		fmt.Fprintf(w, "Real gatehouse-agent at a %s interval, %s%s, measured for %.0f s: CPU %.3f %% of one core, RSS steady %.1f MB (of which anonymous %.1f MB, the rest pages of the executable), peak %.1f MB, %d samples stored\n\n",
			a.Interval, src, env, a.Usage.Seconds, a.Usage.CPUPercent, a.Usage.SteadyRSSMB, a.Usage.SteadyAnonMB, a.Usage.PeakRSSMB, a.StoredRows)
	}
}
