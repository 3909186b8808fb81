package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Silence suppresses notifications between StartsAt and EndsAt for one rule,
// one server, or both (0 means any).
type Silence struct {
	ent.Schema
}

// Mixin of Silence.
func (Silence) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Silence.
func (Silence) Fields() []ent.Field {
	return []ent.Field{
		field.Int("rule_id").Default(0),
		field.Int("server_id").Default(0),
		field.Time("starts_at"),
		field.Time("ends_at"),
		field.String("comment").Default("").MaxLen(500),
		field.String("created_by").Default("").MaxLen(128),
	}
}

// Indexes of Silence.
func (Silence) Indexes() []ent.Index {
	return []ent.Index{index.Fields("ends_at")}
}
