package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// StreamProxy forwards a TCP or UDP port to an upstream on the servers it is assigned to.
type StreamProxy struct {
	ent.Schema
}

// Mixin of StreamProxy.
func (StreamProxy) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of StreamProxy.
func (StreamProxy) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(63),
		field.Int("listen_port"),
		field.Enum("protocol").Values("tcp", "udp").Default("tcp"),
		field.Int("upstream_id"),
	}
}

// Edges of StreamProxy.
func (StreamProxy) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("upstream", Upstream.Type).Ref("streams").Field("upstream_id").Unique().Required(),
		edge.To("servers", Server.Type),
	}
}
