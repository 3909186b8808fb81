package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent records one state change: who, what, when and from where.
type AuditEvent struct {
	ent.Schema
}

// Fields of AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(time.Now).Immutable(),
		field.Int("actor_id").Optional().Nillable().Immutable(),
		field.String("actor").Immutable(),
		field.String("action").Immutable(),
		field.String("target").Default("").Immutable(),
		field.Text("detail").Default("").Immutable(),
		field.String("remote_addr").Default("").Immutable(),
	}
}

// Indexes of AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("at")}
}
