package schema

import (
	"entgo.io/ent"
	entsql "entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// User is a person who signs in to the controller.
type User struct {
	ent.Schema
}

// Mixin of User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").Unique().NotEmpty().MaxLen(64),
		field.String("password_hash").Sensitive(),
		field.Enum("role").Values("admin", "user").Default("user"),
		field.Bool("disabled").Default(false),
		// SessionEpoch is bumped on password change and disable; sessions
		// carrying an older epoch are refused.
		field.Int("session_epoch").Default(0),
		field.Time("last_login_at").Optional().Nillable(),
		// TOTPSecret is the second factor's shared secret, sealed with the
		// master key; set while being set up, in force once TOTPEnabled.
		field.Bytes("totp_secret").Optional().Sensitive(),
		field.Bool("totp_enabled").Default(false),
		// TOTPLastStep is the newest time step a code was accepted for, so a
		// code is never accepted twice.
		field.Int64("totp_last_step").Default(0),
	}
}

// Edges of User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("api_tokens", APIToken.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("recovery_codes", RecoveryCode.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("trusted_devices", TrustedDevice.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}
