package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// RecoveryCode is one single-use code that stands in for a user's second
// factor when their phone is gone. Only its SHA-256 is stored.
type RecoveryCode struct {
	ent.Schema
}

// Mixin of RecoveryCode.
func (RecoveryCode) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of RecoveryCode.
func (RecoveryCode) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		field.Bytes("code_hash").Sensitive(),
		field.Time("used_at").Optional().Nillable(),
	}
}

// Edges of RecoveryCode.
func (RecoveryCode) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("recovery_codes").Field("user_id").Unique().Required(),
	}
}

// Indexes of RecoveryCode.
func (RecoveryCode) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id", "code_hash").Unique()}
}
