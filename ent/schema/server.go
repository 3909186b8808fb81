package schema

import (
	"time"

	"entgo.io/ent"
	entsql "entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Server is a node that runs (or will run) the agent.
type Server struct {
	ent.Schema
}

// Mixin of Server.
func (Server) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Server.
func (Server) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(64),
		field.String("address").Default("").MaxLen(253),
		field.Enum("status").Values("pending", "online", "offline", "removed").Default("pending"),
		field.Bool("local").Default(false),
		field.Strings("labels").Optional(),
		// RealIPFrom are the proxies in front of the node's nginx (a load
		// balancer, a CDN) whose RealIPHeader carries the client address;
		// empty means clients connect directly.
		field.Strings("real_ip_from").Optional(),
		field.String("real_ip_header").Default("").MaxLen(32),
		// UnknownNames is how the node's nginx answers requests for names no
		// domain of it serves: "" leaves nginx's default (its first server
		// on the address), "close" closes the connection (and refuses the
		// TLS handshake), "not_found" answers 404 (TLS handshakes refused).
		field.String("unknown_names").Default("").MaxLen(16),
		// CacheMaxSize bounds the disk the node's cache of proxied answers
		// may use, as an nginx size ("500m", "10g"); empty means 1g.
		field.String("cache_max_size").Default("").MaxLen(16),
		field.Time("last_seen_at").Optional().Nillable(),
		field.String("agent_version").Default(""),
		field.String("hostname").Default(""),
		field.String("os").Default(""),
		field.String("arch").Default(""),
		field.String("kernel").Default(""),
		field.String("metrics_source").Default(""),
		field.Strings("addresses").Optional(),
		field.Time("cert_not_after").Optional().Nillable(),
		// DesiredRevision is the number of the newest nginx ConfigRevision rendered for
		// the server, AppliedRevision the one its agent last applied (0: none).
		field.Int64("desired_revision").Default(0),
		field.Int64("applied_revision").Default(0),
		// Drift is the result of the last drift check; nil before the first.
		field.JSON("drift", &NginxDrift{}).Optional(),
		// SSH access for provisioning. SSHSecret is the private key or password
		// sealed with the master key (aad names table, column and row); it is
		// write-only through UI and API. SSHPublicKey is the public half of a
		// key the controller generated, shown so it can be authorized.
		field.String("ssh_host").Default("").MaxLen(253),
		field.Int("ssh_port").Default(22),
		field.String("ssh_user").Default("").MaxLen(32),
		field.Enum("ssh_auth").Values("none", "key", "password").Default("none"),
		field.Bytes("ssh_secret").Optional().Sensitive(),
		field.String("ssh_public_key").Default("").MaxLen(1024),
		field.Bool("ssh_sudo").Default(false),
		field.Bool("install_nginx").Default(false),
		field.Bool("install_glances").Default(false),
		// InstallLayout overrides where the agent's files go on the node; nil
		// means the production defaults.
		field.JSON("install_layout", &InstallLayout{}).Optional(),
		// NginxNode is the node's nginx as its agent last reported it, kept
		// once it validated, so revisions render for it while the agent is
		// away and after the controller restarts; nil before the first report.
		field.JSON("nginx_node", &NginxNode{}).Optional(),
	}
}

// Edges of Server.
func (Server) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("enrollment_tokens", EnrollmentToken.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("certificates", AgentCertificate.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("tasks", Task.Type),
		edge.To("host_keys", HostKey.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("metric_samples", MetricSample.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("metric_rollups", MetricRollup.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("config_revisions", ConfigRevision.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.From("domains", Domain.Type).Ref("servers"),
		edge.To("served_certificates", ServedCertificate.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_probes", HealthProbe.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_hours", HealthHour.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_outages", HealthOutage.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.From("streams", StreamProxy.Type).Ref("servers"),
	}
}

// NginxNode is how nginx is set up on a node, as its agent reported it: the
// managed directory and where rendered server blocks listen (0 ports: 80 and
// 443; empty bind address: all).
type NginxNode struct {
	Dir         string `json:"dir"`
	HTTPPort    int    `json:"http_port,omitempty"`
	HTTPSPort   int    `json:"https_port,omitempty"`
	BindAddress string `json:"bind_address,omitempty"`
	// StubStatus: nginx has the stub_status module, so the node's releases
	// carry the block its agent reads nginx's counters from.
	StubStatus bool `json:"stub_status,omitempty"`
	// Version is the server software and version the agent found, such as
	// "nginx/1.22.1"; empty when unknown.
	Version    string    `json:"version,omitempty"`
	ReportedAt time.Time `json:"reported_at"`
}

// InstallLayout is where provisioning puts the agent's files on a node. Empty
// fields take the defaults (/usr/local/bin, /var/lib/gatehouse-agent,
// /etc/gatehouse-agent, /etc/nginx/gatehouse, /etc/systemd/system and
// /etc/nginx/nginx.conf).
type InstallLayout struct {
	BinDir    string `json:"bin_dir,omitempty"`
	StateDir  string `json:"state_dir,omitempty"`
	ConfigDir string `json:"config_dir,omitempty"`
	NginxDir  string `json:"nginx_dir,omitempty"`
	UnitDir   string `json:"unit_dir,omitempty"`
	NginxConf string `json:"nginx_conf,omitempty"`
}
