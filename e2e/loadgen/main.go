// Command loadgen measures the controller's agent link under load: it starts
// `gatehouse serve` as a separate process, enrolls simulated agents through
// the JSON API (each a real mutual-TLS gRPC client with its own key, session
// and metrics stream), and reports the acknowledged ingest rate, the
// sample-taken → stored latency, lost samples (checked against the
// database), and the controller's CPU and memory. The same agents then run
// against a bare gRPC server that acknowledges without storing, as the
// baseline, and a real gatehouse-agent process is measured at its default
// interval. scripts/bench.sh is the usual entry point.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	Gatehouse        string
	Agent            string
	Agents           int
	Duration         time.Duration
	BaselineDuration time.Duration
	Ramp             time.Duration
	Warmup           time.Duration
	Drain            time.Duration
	AgentDuration    time.Duration
	AgentInterval    time.Duration
	AgentGlances     bool
	AgentEnv         string
	WorkDir          string
	Keep             bool
	Out              string
	Command          string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare-server" {
		os.Exit(bareMain(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Gatehouse, "gatehouse", "", "path of the gatehouse controller binary (required)")
	fs.StringVar(&o.Agent, "agent", "", "path of the gatehouse-agent binary (required unless -agent-duration 0)")
	fs.IntVar(&o.Agents, "agents", 2000, "simulated agents, each sending one sample per second")
	fs.DurationVar(&o.Duration, "duration", 5*time.Minute, "measurement window against the controller")
	fs.DurationVar(&o.BaselineDuration, "baseline-duration", time.Minute, "measurement window against the bare gRPC server (0 skips the baseline)")
	fs.DurationVar(&o.Ramp, "ramp", 20*time.Second, "spread the agents' connects over this long")
	fs.DurationVar(&o.Warmup, "warmup", 15*time.Second, "settle time after the ramp before measuring")
	fs.DurationVar(&o.Drain, "drain", 60*time.Second, "after the window, wait at most this long for outstanding acks")
	fs.DurationVar(&o.AgentDuration, "agent-duration", 2*time.Minute, "measure a real gatehouse-agent process this long (0 skips it)")
	fs.DurationVar(&o.AgentInterval, "agent-interval", 10*time.Second, "metrics interval the controller gives the real agent")
	fs.BoolVar(&o.AgentGlances, "agent-glances", false, "run Glances for the real agent (otherwise it uses its /proc sampler)")
	fs.StringVar(&o.AgentEnv, "agent-env", "", "extra KEY=VALUE environment for the real agent, comma-separated (e.g. GOGC=50)")
	fs.StringVar(&o.WorkDir, "workdir", "", "directory for the controller's data and logs (default: a new temporary directory)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.Out, "out", "", "also write the figures as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if o.Gatehouse == "" {
		errs = append(errs, errors.New("-gatehouse: path of the controller binary is required (go build ./controller/cmd/gatehouse)"))
	}
	if o.Agent == "" && o.AgentDuration > 0 {
		errs = append(errs, errors.New("-agent: path of the agent binary is required unless -agent-duration 0"))
	}
	if o.Agents < 1 || o.Agents > 20000 {
		errs = append(errs, fmt.Errorf("-agents: %d must be between 1 and 20000", o.Agents))
	}
	if o.Duration < 5*time.Second {
		errs = append(errs, fmt.Errorf("-duration: %s must be at least 5s", o.Duration))
	}
	if o.BaselineDuration != 0 && o.BaselineDuration < 5*time.Second {
		errs = append(errs, fmt.Errorf("-baseline-duration: %s must be 0 or at least 5s", o.BaselineDuration))
	}
	if o.AgentDuration != 0 && o.AgentDuration < 10*time.Second {
		errs = append(errs, fmt.Errorf("-agent-duration: %s must be 0 or at least 10s", o.AgentDuration))
	}
	if o.AgentInterval < time.Second {
		errs = append(errs, fmt.Errorf("-agent-interval: %s must be at least 1s", o.AgentInterval))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-ramp", o.Ramp}, {"-warmup", o.Warmup}, {"-drain", o.Drain}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s must not be negative", d.name, d.v))
		}
	}
	if _, err := parseEnvList(o.AgentEnv); err != nil {
		errs = append(errs, fmt.Errorf("-agent-env: %w", err))
	}
	o.Command = describeCommand(args)
	return o, errors.Join(errs...)
}

// describeCommand renders the arguments for the report, naming the binaries
// by their base names rather than where this run built them.
func describeCommand(args []string) string {
	out := []string{"loadgen"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if (name == "gatehouse" || name == "agent" || name == "workdir" || name == "out") && strings.HasPrefix(a, "-") {
			if !hasVal && i+1 < len(args) {
				i++
				val = args[i]
			}
			out = append(out, "-"+name, filepath.Base(val))
			continue
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// parseEnvList splits "K=V,K2=V2", allowing only names of letters, digits
// and underscores.
func parseEnvList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, kv := range strings.Split(s, ",") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return nil, fmt.Errorf("%q is not NAME=VALUE with a name of letters, digits and _", kv)
		}
		out = append(out, kv)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := raiseNoFile(); err != nil {
		fmt.Fprintln(stderr, "loadgen: warning:", err)
	}
	dir := o.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rep, err := bench(ctx, o, dir, stderr)
	if rep != nil {
		writeReport(stdout, rep)
		if o.Out != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(o.Out, append(b, '\n'), 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	return err
}

// raiseNoFile lifts the soft open-file limit to the hard limit. Setting it
// explicitly also makes child processes inherit the raised limit.
func raiseNoFile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read open-file limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise open-file limit: %w", err)
	}
	return nil
}

// bareMain is the baseline server process.
func bareMain(args []string) int {
	fs := flag.NewFlagSet("loadgen bare-server", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory with ca.pem, server.pem and server-key.pem")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := raiseNoFile(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen bare-server: warning:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runBareServer(ctx, *dir, *listen, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen bare-server:", err)
		return 1
	}
	return 0
}
