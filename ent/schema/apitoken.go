package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// APIToken is a bearer token for the JSON API. Only its SHA-256 is stored.
type APIToken struct {
	ent.Schema
}

// Mixin of APIToken.
func (APIToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of APIToken.
func (APIToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(64),
		field.Bytes("token_hash").Unique().Sensitive(),
		// Prefix is the first characters of the token, shown so a person can tell tokens apart.
		field.String("prefix").MaxLen(16),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
		// ReadOnly tokens may only read (GET and HEAD), whatever their
		// owner's role: for scrapers and dashboards.
		field.Bool("read_only").Default(false),
	}
}

// Edges of APIToken.
func (APIToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("api_tokens").Unique().Required(),
	}
}
