package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// TrustedDevice is a browser a user chose to remember after signing in with
// their second factor: while it lasts, the password alone signs them in from
// it. The browser holds a random token in a cookie; only its SHA-256 is
// stored.
type TrustedDevice struct {
	ent.Schema
}

// Fields of TrustedDevice.
func (TrustedDevice) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		field.Bytes("token_hash").Unique().Sensitive(),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("expires_at"),
		field.Time("last_used_at"),
		// UserAgent is the browser's User-Agent header when it was
		// remembered, without control characters, so a person can tell
		// their browsers apart.
		field.String("user_agent").MaxLen(200).Default(""),
		// IP is the client address it was remembered from.
		field.String("ip").MaxLen(64).Default(""),
	}
}

// Edges of TrustedDevice.
func (TrustedDevice) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("trusted_devices").Field("user_id").Unique().Required(),
	}
}

// Indexes of TrustedDevice.
func (TrustedDevice) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id"), index.Fields("expires_at")}
}
