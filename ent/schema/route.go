package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Route maps a request path of a domain to an action: proxy to an upstream,
// redirect, or answer with a fixed response.
type Route struct {
	ent.Schema
}

// Mixin of Route.
func (Route) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Route.
func (Route) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		// Position orders the routes of one domain as the admin listed them.
		field.Int("position").Default(0),
		field.Enum("match").Values("prefix", "exact").Default("prefix"),
		field.String("path").NotEmpty(),
		field.Enum("kind").Values("proxy", "redirect", "respond"),
		// Proxy.
		field.Int("upstream_id").Optional().Nillable(),
		field.Bool("websocket").Default(false),
		field.Bool("preserve_host").Default(false),
		field.String("rewrite_prefix").Default(""),
		// CacheTTL keeps the upstream's successful answers in the node's
		// cache for this many seconds; 0 caches nothing.
		field.Int("cache_ttl").Default(0).Range(0, 30*24*3600),
		// Redirect.
		field.Int("redirect_code").Default(0),
		field.String("redirect_target").Default(""),
		// Respond.
		field.Int("respond_status").Default(0),
		field.Text("respond_body").Default(""),
		field.String("content_type").Default(""),
	}
}

// Edges of Route.
func (Route) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("routes").Field("domain_id").Unique().Required(),
		edge.From("upstream", Upstream.Type).Ref("routes").Field("upstream_id").Unique(),
	}
}

// Indexes of Route.
func (Route) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "position")}
}
