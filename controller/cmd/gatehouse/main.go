// Command gatehouse is the Gatehouse controller: `gatehouse serve` runs it,
// and the other subcommands administer it (see `gatehouse --help`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehousehq/gatehouse/controller/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Env: os.Environ()})
	stop()
	os.Exit(code)
}
