package schema

import (
	"entgo.io/ent"
	entsql "entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Upstream is a named group of backend servers that routes and streams forward to.
type Upstream struct {
	ent.Schema
}

// Mixin of Upstream.
func (Upstream) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Upstream.
func (Upstream) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(63),
		field.Enum("method").Values("round_robin", "least_conn", "ip_hash", "hash", "random_two_least_conn").Default("round_robin"),
		// HashKey is the variables hashed by the "hash" method, e.g. "$request_uri".
		field.String("hash_key").Default(""),
		// Consistent selects ketama consistent hashing for the "hash" method.
		field.Bool("consistent").Default(false),
		field.Int("keepalive").Default(0),
		// Timeouts in seconds; 0 leaves nginx's default.
		field.Int("connect_timeout").Default(0),
		field.Int("read_timeout").Default(0),
		field.Int("send_timeout").Default(0),
	}
}

// Edges of Upstream. Routes and streams that use an upstream keep it from being deleted.
func (Upstream) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("targets", UpstreamTarget.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("routes", Route.Type).Annotations(entsql.OnDelete(entsql.Restrict)),
		edge.To("streams", StreamProxy.Type).Annotations(entsql.OnDelete(entsql.Restrict)),
	}
}
