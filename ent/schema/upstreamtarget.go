package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// UpstreamTarget is one backend server of an upstream.
type UpstreamTarget struct {
	ent.Schema
}

// Mixin of UpstreamTarget.
func (UpstreamTarget) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of UpstreamTarget.
func (UpstreamTarget) Fields() []ent.Field {
	return []ent.Field{
		field.Int("upstream_id"),
		// Position orders the targets of one upstream as the admin listed them.
		field.Int("position").Default(0),
		// Host is an IP address or host name in canonical (punycode) form.
		field.String("host").NotEmpty(),
		field.Int("port"),
		// Weight, MaxFails and FailTimeout (seconds) are 0 for nginx's defaults.
		field.Int("weight").Default(0),
		field.Int("max_fails").Default(0),
		field.Int("fail_timeout").Default(0),
		field.Bool("backup").Default(false),
		field.Bool("down").Default(false),
	}
}

// Edges of UpstreamTarget.
func (UpstreamTarget) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("upstream", Upstream.Type).Ref("targets").Field("upstream_id").Unique().Required(),
	}
}

// Indexes of UpstreamTarget.
func (UpstreamTarget) Indexes() []ent.Index {
	return []ent.Index{index.Fields("upstream_id", "position")}
}
