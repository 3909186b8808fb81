package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Notification records one delivery attempt of a notification to a channel.
type Notification struct {
	ent.Schema
}

// Fields of Notification.
func (Notification) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at"),
		field.Int("channel_id").Default(0),
		field.String("channel").Default("").MaxLen(64),
		field.Int("incident_id").Default(0),
		field.String("key").Default("").MaxLen(128),
		field.String("kind").Default("").MaxLen(16),
		field.Int("attempt").Default(0),
		field.String("outcome").MaxLen(16),
		field.String("error").Default("").MaxLen(1000),
	}
}

// Indexes of Notification.
func (Notification) Indexes() []ent.Index {
	return []ent.Index{index.Fields("at"), index.Fields("incident_id")}
}
