// Package cli implements the gatehouse command line: serve, migrate, and the
// administrative subcommands.
package cli

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"

	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/internal/version"
	"github.com/gatehousehq/gatehouse/ui"
)

// IO is the process's standard streams and environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Env      []string
}

const usage = `Gatehouse controller — reverse proxies and server monitoring.

Usage:
  gatehouse serve [flags]                      run the controller (web UI, API, agent endpoint)
  gatehouse migrate [flags]                    apply database migrations and exit
  gatehouse user create NAME [--admin] [--password-stdin]
  gatehouse user list
  gatehouse user passwd NAME [--password-stdin]
  gatehouse user disable NAME | enable NAME
  gatehouse user reset-2fa NAME                turn off a user's two-factor sign-in (lost phone)
  gatehouse token create NAME --user USER [--read-only]
                                               create an API token (printed once, on the last line)
  gatehouse server add NAME [--address A] [--labels L1,L2]
                                               register a server and print its one-time install command
  gatehouse server set NAME [--name NEW] [--address A] [--labels L1,L2]
                     [--real-ip-from CIDR,CIDR --real-ip-header H] [--unknown-names close|not_found|default]
                     [--cache-max-size SIZE]
                                               rename it, change the address the controller probes it at, its labels,
                                               and the settings of its nginx
  gatehouse server token NAME                  a new install command for an existing server
  gatehouse server list
  gatehouse server remove NAME                 delete a server and revoke its agent certificate
  gatehouse ca pin                             print the pin agents use to trust this controller
  gatehouse backup [--to FILE]                 snapshot the SQLite database while it runs
  gatehouse restore SNAPSHOT                   put a snapshot back while the controller is stopped
  gatehouse version

Every command takes the configuration flags of "gatehouse serve --help"
(for example --data-dir and --database-url) and the same GATEHOUSE_* variables.
`

// Run executes the command line and returns the exit code.
func Run(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdio)
	case "migrate":
		err = migrate(ctx, args[1:], stdio)
	case "user":
		err = userCmd(ctx, args[1:], stdio)
	case "server":
		err = serverCmd(ctx, args[1:], stdio)
	case "token":
		err = tokenCmd(ctx, args[1:], stdio)
	case "ca":
		err = caCmd(ctx, args[1:], stdio)
	case "backup":
		err = backupCmd(ctx, args[1:], stdio)
	case "restore":
		err = restoreCmd(ctx, args[1:], stdio)
	case "version", "--version", "-version":
		fmt.Fprintln(stdio.Out, "gatehouse", version.Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdio.Out, usage)
	default:
		fmt.Fprintf(stdio.Err, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stdio.Err, "gatehouse: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stdio.Err, "gatehouse: %v\n", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// loadConfig parses configuration flags (plus extra command flags declared on fs).
func loadConfig(fs *flag.FlagSet, args []string, stdio IO) (config.Config, error) {
	fs.SetOutput(stdio.Err)
	return config.Load(fs, args, stdio.Env)
}

func newLogger(cfg config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "gatehouse",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		Output:     w,
		JSONFormat: cfg.LogFormat == "json",
	})
}

func serve(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet("gatehouse serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatehouse serve [flags]\n\nSettings (file key, environment variable, meaning):\n%s\nFlags:\n", config.Reference())
		fs.PrintDefaults()
	}
	cfg, err := loadConfig(fs, args, stdio)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdio.Err)
	c, err := controller.New(ctx, cfg, log, controller.Options{Out: stdio.Out})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "Gatehouse is running at %s — open it in your browser and log in.\n", c.URL())
	return c.Run(ctx)
}

func migrate(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet("gatehouse migrate", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, stdio)
	if err != nil {
		return err
	}
	applied, err := controller.Migrate(ctx, cfg, newLogger(cfg, stdio.Err))
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdio.Out, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdio.Out, "applied", m)
	}
	return nil
}

// open parses flags and opens the controller's state for an admin command.
func open(ctx context.Context, fs *flag.FlagSet, args []string, stdio IO) (*controller.Admin, []string, error) {
	cfg, err := loadConfig(fs, args, stdio)
	if err != nil {
		return nil, nil, err
	}
	a, err := controller.OpenAdmin(ctx, cfg, newLogger(cfg, stdio.Err))
	return a, fs.Args(), err
}

// openNamed is open for commands that take one NAME, before or after their flags.
func openNamed(ctx context.Context, fs *flag.FlagSet, args []string, stdio IO) (*controller.Admin, string, error) {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	a, extra, err := open(ctx, fs, args, stdio)
	if name == "" && len(extra) > 0 {
		name = extra[0]
	}
	return a, name, err
}

var cliActor = audit.System("cli")

func readPassword(stdio IO, fromStdin bool) (string, bool, error) {
	if !fromStdin {
		return rand.Text()[:20], true, nil
	}
	line, err := bufio.NewReader(stdio.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	return strings.TrimRight(line, "\r\n"), false, nil
}

func userCmd(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 {
		return usageErr("user needs a subcommand: create, list, passwd, disable, enable, reset-2fa")
	}
	sub := args[0]
	fs := flag.NewFlagSet("gatehouse user "+sub, flag.ContinueOnError)
	admin := fs.Bool("admin", false, "give the user the admin role")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input instead of generating one")
	a, name, err := openNamed(ctx, fs, args[1:], stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	if sub != "list" && name == "" {
		return usageErr("user %s needs a user name", sub)
	}
	switch sub {
	case "create":
		pw, generated, err := readPassword(stdio, *pwStdin)
		if err != nil {
			return err
		}
		role := auth.RoleUser
		if *admin {
			role = auth.RoleAdmin
		}
		if _, err := a.Users.Create(ctx, cliActor, name, pw, role); err != nil {
			return describe(err)
		}
		fmt.Fprintf(stdio.Out, "created %s %q\n", role, name)
		if generated {
			fmt.Fprintf(stdio.Out, "password: %s\n(shown only now)\n", pw)
		}
	case "list":
		users, err := a.Users.List(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Out, "%-5s %-32s %-6s %s\n", "ID", "USERNAME", "ROLE", "STATE")
		for _, u := range users {
			state := "enabled"
			if u.Disabled {
				state = "disabled"
			}
			if u.TOTP {
				state += ", two-factor"
			}
			fmt.Fprintf(stdio.Out, "%-5d %-32s %-6s %s\n", u.ID, u.Username, u.Role, state)
		}
	case "passwd", "disable", "enable", "reset-2fa":
		u, err := a.Users.Lookup(ctx, name)
		if err != nil {
			return describe(err)
		}
		switch sub {
		case "passwd":
			pw, generated, err := readPassword(stdio, *pwStdin)
			if err != nil {
				return err
			}
			if err := a.Users.SetPassword(ctx, cliActor, u.ID, pw); err != nil {
				return describe(err)
			}
			fmt.Fprintf(stdio.Out, "password of %q changed; their sessions were ended\n", name)
			if generated {
				fmt.Fprintf(stdio.Out, "password: %s\n(shown only now)\n", pw)
			}
		case "disable", "enable":
			if err := a.Users.SetDisabled(ctx, cliActor, u.ID, sub == "disable"); err != nil {
				return describe(err)
			}
			fmt.Fprintf(stdio.Out, "%sd %q\n", sub, name)
		case "reset-2fa":
			if err := a.Users.ResetTOTP(ctx, cliActor, u.ID); err != nil {
				return describe(err)
			}
			fmt.Fprintf(stdio.Out, "two-factor sign-in of %q is off; they sign in with their password and can set it up again\n", name)
		}
	default:
		return usageErr("unknown user subcommand %q", sub)
	}
	return nil
}

// describe renders field errors as one line a person can act on.
func describe(err error) error {
	if fe, ok := auth.IsFieldErrors(err); ok {
		var parts []string
		for k, v := range fe {
			parts = append(parts, k+": "+v)
		}
		return errors.New(strings.Join(parts, "; "))
	}
	return err
}

func serverCmd(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 {
		return usageErr("server needs a subcommand: add, set, token, list, remove")
	}
	sub := args[0]
	fs := flag.NewFlagSet("gatehouse server "+sub, flag.ContinueOnError)
	var settings controller.ServerSettings
	if sub == "add" || sub == "set" {
		fs.Func("address", "the address the controller probes the server's nginx at (IP or host name; empty clears it)", func(v string) error {
			settings.Address = &v
			return nil
		})
		if sub == "set" {
			fs.Func("name", "a new name for the server", func(v string) error {
				settings.Name = &v
				return nil
			})
			fs.Func("real-ip-from", "comma-separated addresses or networks of the proxies in front of the node's nginx whose header carries the client address (empty: none)", func(v string) error {
				l := controller.ParseLabels(v)
				settings.RealIPFrom = &l
				return nil
			})
			fs.Func("real-ip-header", "the header those proxies put the client address in (X-Forwarded-For, X-Real-IP, CF-Connecting-IP …)", func(v string) error {
				settings.RealIPHeader = &v
				return nil
			})
			fs.Func("unknown-names", `how the node's nginx answers names no domain serves: "close", "not_found" or "default"`, func(v string) error {
				if v == "default" {
					v = ""
				}
				settings.UnknownNames = &v
				return nil
			})
			fs.Func("cache-max-size", "the disk the node's cache of proxied answers may use, such as 500m or 20g (empty: 1g)", func(v string) error {
				settings.CacheMaxSize = &v
				return nil
			})
		}
		fs.Func("labels", "comma-separated labels alert rules select servers by (empty clears them)", func(v string) error {
			l := controller.ParseLabels(v)
			settings.Labels = &l
			return nil
		})
	}
	a, name, err := openNamed(ctx, fs, args[1:], stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	if sub != "list" && name == "" {
		return usageErr("server %s needs a server name", sub)
	}
	switch sub {
	case "set":
		nginx := settings.RealIPFrom != nil || settings.RealIPHeader != nil || settings.UnknownNames != nil || settings.CacheMaxSize != nil
		if settings.Name == nil && settings.Address == nil && settings.Labels == nil && !nginx {
			return usageErr("server set needs --name, --address, --labels, --real-ip-from, --unknown-names or --cache-max-size")
		}
		s, err := a.SetServer(ctx, cliActor, name, settings)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Out, "server %q: address %s, labels %s\n", s.Name, orNone(s.Address), orNone(strings.Join(s.Labels, ",")))
		if nginx {
			proxies := "none"
			if len(s.RealIPFrom) > 0 {
				proxies = strings.Join(s.RealIPFrom, ",") + " via " + s.RealIPHeader
			}
			fmt.Fprintf(stdio.Out, "nginx: trusted proxies %s, unknown names %s, cache size %s\n", proxies, cmp.Or(s.UnknownNames, "default"), cmp.Or(s.CacheMaxSize, nginxconf.DefaultCacheMaxSize))
			fmt.Fprintf(stdio.Out, "A running controller deploys this to the node within %d minutes, or at once when it starts.\n", int(controller.NginxSyncEvery.Minutes()))
		}
	case "add", "token":
		if sub == "token" {
			if _, err := a.ServerByName(ctx, name); err != nil {
				return err
			}
		}
		if sub == "add" {
			// Checked before the server exists, so a bad flag creates nothing.
			if err := controller.CheckServerSettings(settings); err != nil {
				return err
			}
		}
		e, err := a.Enroll(ctx, name)
		if err != nil {
			return err
		}
		if settings.Address != nil || settings.Labels != nil {
			if _, err := a.SetServer(ctx, cliActor, name, settings); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdio.Out, "Server %q (id %d). On the node, run (valid until %s, once):\n\n  %s\n\n",
			e.Server.Name, e.Server.ID, e.ExpiresAt.Local().Format("15:04:05"), e.Command)
	case "list":
		list, err := a.Servers(ctx)
		if err != nil {
			return err
		}
		controller.WriteServers(stdio.Out, list)
	case "remove":
		s, err := a.ServerByName(ctx, name)
		if err != nil {
			return err
		}
		if err := a.Registry.Delete(ctx, s.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Out, "removed %q; its agent certificate is no longer accepted\n", name)
	default:
		return usageErr("unknown server subcommand %q", sub)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func caCmd(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 || args[0] != "pin" {
		return usageErr("ca needs a subcommand: pin")
	}
	a, _, err := open(ctx, flag.NewFlagSet("gatehouse ca pin", flag.ContinueOnError), args[1:], stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintln(stdio.Out, a.CAPin())
	return nil
}

func tokenCmd(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 || args[0] != "create" {
		return usageErr("token needs a subcommand: create")
	}
	fs := flag.NewFlagSet("gatehouse token create", flag.ContinueOnError)
	owner := fs.String("user", "", "the user the token acts as (required)")
	readOnly := fs.Bool("read-only", false, "the token may only read (GET), whatever the user's role: for scrapers and dashboards")
	a, name, err := openNamed(ctx, fs, args[1:], stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	if name == "" || *owner == "" {
		return usageErr("token create needs a token name and --user")
	}
	u, err := a.Users.Lookup(ctx, *owner)
	if err != nil {
		return describe(err)
	}
	_, raw, err := a.Tokens.CreateWith(ctx, cliActor, u.ID, auth.TokenSpec{Name: name, ReadOnly: *readOnly})
	if err != nil {
		return describe(err)
	}
	fmt.Fprintf(stdio.Out, "API token %q for %s (shown only now):\n%s\n", name, u.Username, raw)
	return nil
}

// backupCmd writes a consistent snapshot of the SQLite database, safe while
// the controller runs, and reminds that the master key is not in it.
func backupCmd(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet("gatehouse backup", flag.ContinueOnError)
	to := fs.String("to", "", "write the snapshot to this new file (default DATA_DIR/backups/gatehouse-manual-TIME.db)")
	a, extra, err := open(ctx, fs, args, stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(extra) > 0 {
		return usageErr("backup takes no arguments; use --to FILE")
	}
	path, size, err := a.Backup(ctx, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "wrote %s (%s)\n", path, ui.HumanBytes(size))
	fmt.Fprintf(stdio.Out, "To restore: stop gatehouse, run gatehouse restore %s, start it again.\n", path)
	fmt.Fprintln(stdio.Out, "The snapshot's secrets are sealed with the master key, which is not in it: keep master.key (or GATEHOUSE_MASTER_KEY) safe as well.")
	return nil
}

func restoreCmd(ctx context.Context, args []string, stdio IO) error {
	fs := flag.NewFlagSet("gatehouse restore", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatehouse restore [flags] SNAPSHOT\n\nReplaces the SQLite database with SNAPSHOT while the controller is stopped; the current\ndatabase is moved aside, not deleted.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	cfg, err := loadConfig(fs, args, stdio)
	if err != nil {
		return err
	}
	if rest := fs.Args(); file == "" && len(rest) == 1 {
		file = rest[0]
	} else if len(rest) > 0 || file == "" {
		return usageErr("restore takes one snapshot file: gatehouse restore SNAPSHOT")
	}
	res, err := controller.Restore(ctx, cfg, file, newLogger(cfg, stdio.Err))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "restored %s (%s) into %s\n", file, ui.HumanBytes(res.Size), res.Database)
	if res.Previous != "" {
		fmt.Fprintf(stdio.Out, "the database it replaced is at %s\n", res.Previous)
	}
	if res.Pending > 0 {
		fmt.Fprintf(stdio.Out, "the snapshot is from an older Gatehouse: the next start applies %d migrations to it\n", res.Pending)
	}
	fmt.Fprintln(stdio.Out, "Start gatehouse again.")
	return nil
}
