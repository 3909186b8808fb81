package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Incident is one rule breached by one subject, from pending through firing to
// resolved. While open, OpenKey holds "rule:subject", which is unique, so there
// is never more than one open incident per rule and subject; it is cleared on
// resolution. Rule and server are copied by id and name so history outlives them.
type Incident struct {
	ent.Schema
}

// Mixin of Incident.
func (Incident) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Incident.
func (Incident) Fields() []ent.Field {
	return []ent.Field{
		field.Int("rule_id"),
		field.String("rule_name").Default(""),
		field.String("subject").NotEmpty().MaxLen(300),
		field.String("open_key").Optional().Nillable().Unique().MaxLen(320),
		field.Int("server_id").Default(0),
		field.String("server_name").Default(""),
		field.Enum("state").Values("pending", "firing", "resolved").Default("pending"),
		field.String("severity").Default("warning").MaxLen(16),
		field.Float("value").Default(0),
		field.String("summary").Default("").MaxLen(1000),
		field.Time("started_at"),
		field.Time("fired_at").Optional().Nillable(),
		field.Time("resolved_at").Optional().Nillable(),
		field.Time("acked_at").Optional().Nillable(),
		field.String("acked_by").Default("").MaxLen(128),
		field.Time("notified_at").Optional().Nillable(),
		field.Int("repeat_round").Default(0),
	}
}

// Indexes of Incident.
func (Incident) Indexes() []ent.Index {
	return []ent.Index{index.Fields("state", "started_at"), index.Fields("rule_id", "subject")}
}
