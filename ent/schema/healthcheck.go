package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// HealthCheck says whether and where the controller probes a domain on each
// server that serves it.
type HealthCheck struct {
	ent.Schema
}

// Mixin of HealthCheck.
func (HealthCheck) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of HealthCheck.
func (HealthCheck) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id").Unique(),
		// Path is requested with the domain's name as Host (and SNI).
		field.String("path").Default("/").MaxLen(256),
		field.Bool("enabled").Default(true),
	}
}

// Edges of HealthCheck.
func (HealthCheck) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("health_check").Field("domain_id").Unique().Required(),
	}
}

// HealthProbe is the newest request the controller made to a domain through
// one server's nginx: one row per domain and server, rewritten by each probe,
// so the table stays as small as the list of domains and their servers.
type HealthProbe struct {
	ent.Schema
}

// Fields of HealthProbe.
func (HealthProbe) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.Int("server_id"),
		field.Time("at"),
		field.Bool("ok"),
		// Status is the HTTP status, 0 when no response came.
		field.Int("status").Default(0),
		field.Int("latency_ms").Default(0),
		field.String("url").Default("").MaxLen(600),
		// Message says what went wrong, for a failed probe.
		field.String("message").Default("").MaxLen(1000),
		// FailingSince is when the run of failed probes this one belongs to
		// began, for a failed probe.
		field.Time("failing_since").Optional().Nillable(),
	}
}

// Edges of HealthProbe.
func (HealthProbe) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("health_probes").Field("domain_id").Unique().Required(),
		edge.From("server", Server.Type).Ref("health_probes").Field("server_id").Unique().Required(),
	}
}

// Indexes of HealthProbe.
func (HealthProbe) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "server_id").Unique()}
}

// HealthHour counts one hour of probes of a domain through one server, for
// uptime figures: how many answered up and down, and the summed latency of
// the answers that were up. Probes while the domain is in maintenance, and
// servers that were not dialled, are not counted. Hours older than the
// retention are pruned.
type HealthHour struct {
	ent.Schema
}

// Fields of HealthHour.
func (HealthHour) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.Int("server_id"),
		// Hour is the start of the hour, in UTC.
		field.Time("hour"),
		field.Int("up").Default(0),
		field.Int("down").Default(0),
		field.Int64("latency_ms_sum").Default(0),
	}
}

// Edges of HealthHour.
func (HealthHour) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("health_hours").Field("domain_id").Unique().Required(),
		edge.From("server", Server.Type).Ref("health_hours").Field("server_id").Unique().Required(),
	}
}

// Indexes of HealthHour.
func (HealthHour) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "server_id", "hour").Unique(), index.Fields("hour")}
}

// HealthOutage is one run of failed health probes of a domain through one
// server: when it began, why, and when the next good probe ended it (nil
// while it lasts).
type HealthOutage struct {
	ent.Schema
}

// Fields of HealthOutage.
func (HealthOutage) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.Int("server_id"),
		field.Time("started_at"),
		field.Time("ended_at").Optional().Nillable(),
		// Message is why the first failed probe failed.
		field.String("message").Default("").MaxLen(1000),
		// Checks counts the failed probes in the run.
		field.Int("checks").Default(1),
	}
}

// Edges of HealthOutage.
func (HealthOutage) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("health_outages").Field("domain_id").Unique().Required(),
		edge.From("server", Server.Type).Ref("health_outages").Field("server_id").Unique().Required(),
	}
}

// Indexes of HealthOutage.
func (HealthOutage) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "started_at"), index.Fields("ended_at")}
}
