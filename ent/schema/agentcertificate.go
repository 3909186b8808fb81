package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// AgentCertificate is a client certificate issued to a node's agent.
type AgentCertificate struct {
	ent.Schema
}

// Mixin of AgentCertificate.
func (AgentCertificate) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of AgentCertificate.
func (AgentCertificate) Fields() []ent.Field {
	return []ent.Field{
		field.String("serial").Unique().NotEmpty(),
		field.Time("not_before"),
		field.Time("not_after"),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Edges of AgentCertificate.
func (AgentCertificate) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("certificates").Unique().Required(),
	}
}
