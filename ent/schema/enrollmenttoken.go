package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// EnrollmentToken is a single-use, short-lived secret that lets one agent enroll as one server.
type EnrollmentToken struct {
	ent.Schema
}

// Mixin of EnrollmentToken.
func (EnrollmentToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of EnrollmentToken.
func (EnrollmentToken) Fields() []ent.Field {
	return []ent.Field{
		field.Bytes("token_hash").Unique().Sensitive(),
		field.Time("expires_at"),
		field.Time("used_at").Optional().Nillable(),
	}
}

// Edges of EnrollmentToken.
func (EnrollmentToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("enrollment_tokens").Unique().Required(),
	}
}
