package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// BasicAuthUser may pass a domain's HTTP basic authentication.
type BasicAuthUser struct {
	ent.Schema
}

// Mixin of BasicAuthUser.
func (BasicAuthUser) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of BasicAuthUser.
func (BasicAuthUser) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.String("username").NotEmpty().MaxLen(64),
		// PasswordHash is a crypt(3) hash nginx verifies (see nginxconf.HashPassword);
		// the plain password is never stored.
		field.String("password_hash").Sensitive(),
	}
}

// Edges of BasicAuthUser.
func (BasicAuthUser) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("basic_auth_users").Field("domain_id").Unique().Required(),
	}
}

// Indexes of BasicAuthUser.
func (BasicAuthUser) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "username").Unique()}
}
