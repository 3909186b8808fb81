package provision

import (
	_ "embed"
	"fmt"
	"path"
	"strings"
)

// Fixed file names inside the Layout directories.
const (
	AgentBinaryName    = "gatehouse-agent"
	SupervisorName     = "gatehouse-agent-supervise"
	AgentUnitName      = "gatehouse-agent.service"
	GlancesUnitName    = "gatehouse-glances.service"
	BootstrapFileName  = "agent.conf"
	TokenFileName      = "token"
	DefaultGlancesPort = 61208
)

// Environment variables the agent is started with, on systemd and under the
// supervisor alike (the agent reads GATEHOUSE_AGENT_<KEY> for its config
// keys). Everything else it learns from the bootstrap config file, passed
// with -config.
const (
	EnvStateDir = "GATEHOUSE_AGENT_STATE_DIR"
	EnvNginxDir = "GATEHOUSE_AGENT_NGINX_DIR"
)

//go:embed supervise.sh
var supervisorScript []byte

// Layout says where things go on the node. Zero fields take the production
// defaults (see DefaultLayout). StateDir, ConfigDir and NginxDir must be
// directories of their own whose names contain "gatehouse".
type Layout struct {
	BinDir    string // agent binary and supervisor script
	StateDir  string // agent key, certificate, pid files and logs
	ConfigDir string // agent config file and one-time token file
	NginxDir  string // managed nginx tree (releases/, current)
	UnitDir   string // systemd units
}

// DefaultLayout is where a production node keeps Gatehouse's files.
func DefaultLayout() Layout {
	return Layout{
		BinDir:    "/usr/local/bin",
		StateDir:  "/var/lib/gatehouse-agent",
		ConfigDir: "/etc/gatehouse-agent",
		NginxDir:  "/etc/nginx/gatehouse",
		UnitDir:   "/etc/systemd/system",
	}
}

// withDefaults fills empty fields from DefaultLayout.
func (l Layout) withDefaults() Layout {
	d := DefaultLayout()
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&l.BinDir, d.BinDir}, {&l.StateDir, d.StateDir}, {&l.ConfigDir, d.ConfigDir},
		{&l.NginxDir, d.NginxDir}, {&l.UnitDir, d.UnitDir},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	return l
}

// AgentPath is the installed agent binary.
func (l Layout) AgentPath() string { return path.Join(l.BinDir, AgentBinaryName) }

// SupervisorPath is the installed supervisor script.
func (l Layout) SupervisorPath() string { return path.Join(l.BinDir, SupervisorName) }

// BootstrapPath is the agent's config file (key=value lines: controller
// address, CA pin, token_file), passed to it with -config.
func (l Layout) BootstrapPath() string { return path.Join(l.ConfigDir, BootstrapFileName) }

// TokenPath is the 0600 file holding the one-time enrollment token; the agent
// deletes it once it has an identity.
func (l Layout) TokenPath() string { return path.Join(l.ConfigDir, TokenFileName) }

// agentArgs is the agent's command line.
func (l Layout) agentArgs() []string { return []string{l.AgentPath(), "-config", l.BootstrapPath()} }

// UnitPath is the agent's systemd unit.
func (l Layout) UnitPath() string { return path.Join(l.UnitDir, AgentUnitName) }

// GlancesUnitPath is the systemd unit running Glances on loopback.
func (l Layout) GlancesUnitPath() string { return path.Join(l.UnitDir, GlancesUnitName) }

// IncludeLine is the one line Gatehouse adds to nginx's http block.
func (l Layout) IncludeLine() string {
	return "include " + path.Join(l.NginxDir, "current", "http") + "/*.conf;"
}

// StreamIncludeLine is the one line Gatehouse adds to nginx's stream block.
func (l Layout) StreamIncludeLine() string {
	return "include " + path.Join(l.NginxDir, "current", "stream") + "/*.conf;"
}

// agentEnv is the agent's environment, as KEY=VALUE.
func (l Layout) agentEnv() []string {
	return []string{
		EnvStateDir + "=" + l.StateDir,
		EnvNginxDir + "=" + l.NginxDir,
	}
}

// AgentUnit renders the hardened systemd unit for the agent. The agent runs
// as root because it tests and reloads nginx, but it can write only to its
// own directories and nginx's log and cache directories.
func (l Layout) AgentUnit() string {
	var b strings.Builder
	b.WriteString(`# Managed by Gatehouse; changes are overwritten on the next provisioning run.
[Unit]
Description=Gatehouse agent
Documentation=https://github.com/gatehousehq/gatehouse
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
`)
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(l.agentArgs(), " "))
	for _, kv := range l.agentEnv() {
		fmt.Fprintf(&b, "Environment=%s\n", kv)
	}
	fmt.Fprintf(&b, `Restart=always
RestartSec=2
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=%s %s %s
ReadWritePaths=-/var/log/nginx -/var/lib/nginx -/var/cache/nginx -/run
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`, l.StateDir, l.ConfigDir, l.NginxDir)
	return b.String()
}

// GlancesUnit renders the systemd unit that runs Glances' REST API on
// loopback only, as an unprivileged dynamic user.
func GlancesUnit(glances string, port int) string {
	return fmt.Sprintf(`# Managed by Gatehouse; changes are overwritten on the next provisioning run.
[Unit]
Description=Glances REST API for the Gatehouse agent (loopback only)
After=network.target

[Service]
Type=simple
ExecStart=%s -w --disable-webui -B 127.0.0.1 -p %d
Restart=always
RestartSec=5
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`, glances, port)
}
