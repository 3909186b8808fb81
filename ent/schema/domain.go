package schema

import (
	"entgo.io/ent"
	entsql "entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// ResponseHeader is one header added to every response of a domain.
type ResponseHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Domain is a virtual host served by nginx on the servers it is assigned to.
type Domain struct {
	ent.Schema
}

// Mixin of Domain.
func (Domain) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Domain. Names are stored normalized: lowercase punycode.
func (Domain) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(253),
		field.Strings("aliases").Optional(),
		field.Bool("force_https").Default(false),
		field.Bool("hsts").Default(false),
		field.Bool("http2").Default(false),
		// ClientMaxBodySize is an nginx size such as "10m"; empty leaves nginx's default.
		field.String("client_max_body_size").Default(""),
		// Compress gzips text answers (HTML, CSS, JavaScript, JSON, SVG and
		// the like) for clients that accept it.
		field.Bool("compress").Default(false),
		// CacheGeneration is part of the key of every answer its routes
		// cache; purging the domain's cache counts it up, so nothing kept
		// before is served again (the old entries age out of the cache).
		field.Int("cache_generation").Default(0).NonNegative(),
		field.JSON("response_headers", []ResponseHeader{}).Optional(),
		// Allow and Deny are IP addresses or CIDR prefixes in canonical form.
		field.Strings("allow").Optional(),
		field.Strings("deny").Optional(),
		field.Bool("maintenance").Default(false),
		// MaintenanceMessage is the text of the 503 during maintenance; empty
		// means a standard sentence.
		field.String("maintenance_message").Default("").MaxLen(4096),
		// RateLimit is requests per client address per RateUnit (s or m);
		// 0 means no limit. RateBurst more may come at once.
		field.Int("rate_limit").Default(0).Range(0, 100000),
		field.Enum("rate_unit").Values("s", "m").Default("s"),
		field.Int("rate_burst").Default(0).Range(0, 100000),
		// RedirectAliases answers the aliases with a redirect to the primary name.
		field.Bool("redirect_aliases").Default(false),
		// StatusPage lists the domain on the public status page (its name,
		// state and uptime; nothing about its servers).
		field.Bool("status_page").Default(false),
		// Snippet holds extra directives; only admins may set it.
		field.Text("snippet").Default(""),
	}
}

// Edges of Domain.
func (Domain) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("servers", Server.Type),
		edge.To("routes", Route.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("basic_auth_users", BasicAuthUser.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("certificates", Certificate.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("cert_policy", CertPolicy.Type).Unique().Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("dns_checks", DNSCheck.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("served_certificates", ServedCertificate.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_check", HealthCheck.Type).Unique().Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_probes", HealthProbe.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_hours", HealthHour.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("health_outages", HealthOutage.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}
