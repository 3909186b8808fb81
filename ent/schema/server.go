package schema

import (
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
	}
}

// Edges of Server.
func (Server) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("enrollment_tokens", EnrollmentToken.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("certificates", AgentCertificate.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("tasks", Task.Type),
		edge.To("metric_samples", MetricSample.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("metric_rollups", MetricRollup.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("config_revisions", ConfigRevision.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.From("domains", Domain.Type).Ref("servers"),
		edge.From("streams", StreamProxy.Type).Ref("servers"),
	}
}
