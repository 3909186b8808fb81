package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// CertPolicy says how a domain gets its certificate and carries the state of its
// automatic issuance and renewal: consecutive failures, the next attempt (backoff and
// the CA's Retry-After) and the last error as the CA wrote it.
type CertPolicy struct {
	ent.Schema
}

// Mixin of CertPolicy.
func (CertPolicy) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of CertPolicy.
func (CertPolicy) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id").Unique(),
		// Mode acme renews automatically; upload leaves the certificate to the admin.
		field.Enum("mode").Values("acme", "upload").Default("acme"),
		field.Enum("challenge").Values("http-01", "dns-01").Default("http-01"),
		// DNSProviderID names the DNS provider for dns-01; 0 for none.
		field.Int("dns_provider_id").Default(0),
		field.Int("failures").Default(0),
		field.Time("next_attempt_at").Optional().Nillable(),
		field.Time("last_attempt_at").Optional().Nillable(),
		field.Text("last_error").Default(""),
	}
}

// Edges of CertPolicy.
func (CertPolicy) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("cert_policy").Field("domain_id").Unique().Required(),
	}
}
