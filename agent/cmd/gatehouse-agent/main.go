// Command gatehouse-agent runs the Gatehouse node agent.
//
// Settings come from defaults, then the config file (key=value lines), then
// GATEHOUSE_AGENT_<KEY> environment variables, then flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/agent"
	"github.com/gatehousehq/gatehouse/internal/version"
)

const defaultConfigPath = "/etc/gatehouse/agent.conf"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("gatehouse-agent", version.Version)
		return
	}
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "gatehouse-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("gatehouse-agent", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "usage: gatehouse-agent [flags] | gatehouse-agent version\n\nConfig file and GATEHOUSE_AGENT_<KEY> keys: %v\n\n", agent.ConfigKeys())
		fl.PrintDefaults()
	}
	configPath := fl.String("config", defaultConfigPath, "config file of key=value lines (optional at the default path)")
	logLevel := fl.String("log-level", "info", "trace, debug, info, warn or error")
	over := map[string]*string{}
	for _, k := range agent.ConfigKeys() {
		if k == "token" {
			continue // other users can read argv; use token_file or the environment
		}
		over[k] = fl.String(k, "", "overrides "+k)
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; see -h", fl.Arg(0))
	}

	var cfg agent.Config
	if f, err := os.Open(*configPath); err == nil {
		err = agent.ParseConfigFile(f, &cfg)
		f.Close()
		if err != nil {
			return fmt.Errorf("config %s: %w", *configPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) || *configPath != defaultConfigPath {
		return fmt.Errorf("config: %w", err)
	}
	if err := agent.ApplyEnv(os.Environ(), &cfg); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	var flagLines string
	fl.Visit(func(f *flag.Flag) {
		if _, ok := over[f.Name]; ok {
			flagLines += fmt.Sprintf("%s=%q\n", f.Name, f.Value.String())
		}
	})
	if err := agent.ParseConfigFile(strings.NewReader(flagLines), &cfg); err != nil {
		return err
	}
	cfg.Version = version.Version

	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		return fmt.Errorf("log-level %q must be trace, debug, info, warn or error", *logLevel)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "gatehouse-agent", Level: level})
	a, err := agent.New(cfg, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}
