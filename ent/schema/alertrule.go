package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// AlertRule says when an incident opens. Kind selects which fields apply (see
// controller/internal/alerts): metric thresholds use metric, mount, op,
// warning, critical and window_seconds; offline uses window_seconds as "offline
// for"; certificate rules will use days. Kind is a string checked by the alerts
// package so new kinds need no migration.
type AlertRule struct {
	ent.Schema
}

// Mixin of AlertRule.
func (AlertRule) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of AlertRule.
func (AlertRule) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(64),
		field.String("kind").NotEmpty().MaxLen(32),
		field.Bool("enabled").Default(true),
		field.String("metric").Default("").MaxLen(32),
		field.String("mount").Default("").MaxLen(255),
		field.String("op").Default("").MaxLen(2),
		field.Float("warning").Optional().Nillable(),
		field.Float("critical").Optional().Nillable(),
		// Severity of kinds without levels (offline, nginx).
		field.String("severity").Default("critical").MaxLen(16),
		field.Int("window_seconds").Default(0),
		field.Int("days").Default(0),
		// Scope: all servers when both are empty, else servers listed or carrying a label.
		field.Ints("server_ids").Optional(),
		field.Strings("labels").Optional(),
		// Channels notified; all enabled channels when empty.
		field.Ints("channel_ids").Optional(),
		// RepeatSeconds re-notifies a still-firing, unacknowledged incident; 0 never.
		field.Int("repeat_seconds").Default(0),
	}
}
