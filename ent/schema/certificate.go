package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Certificate is a TLS certificate for a domain, obtained over ACME or uploaded.
// The private key is stored only sealed with the master key (the additional data
// names the table, column and row); it is never shown or returned.
type Certificate struct {
	ent.Schema
}

// Mixin of Certificate.
func (Certificate) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Certificate.
func (Certificate) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		// Names are the DNS names the certificate covers.
		field.Strings("names"),
		field.Time("not_before"),
		field.Time("not_after"),
		field.String("issuer").Default("").MaxLen(1024),
		// Serial is the serial number in lowercase hex.
		field.String("serial").Default("").MaxLen(128),
		// Fingerprint is the SHA-256 of the leaf, lowercase hex.
		field.String("fingerprint").MaxLen(64),
		field.Text("cert_pem"),
		// ChainPEM holds the intermediates, the leaf's issuer first.
		field.Text("chain_pem").Default(""),
		field.Bytes("key_sealed").Sensitive(),
		field.Enum("source").Values("acme", "upload"),
		// Challenge is how control of the names was proven (acme only).
		field.String("challenge").Default("").MaxLen(16),
		// DirectoryURL is the ACME directory that issued it (acme only).
		field.String("directory_url").Default("").MaxLen(512),
		// Status: active is the one deployed; superseded once replaced; expired when
		// it ran out without a replacement.
		field.Enum("status").Values("active", "superseded", "expired").Default("active"),
	}
}

// Edges of Certificate.
func (Certificate) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("certificates").Field("domain_id").Unique().Required(),
	}
}

// Indexes of Certificate.
func (Certificate) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "status"), index.Fields("status", "not_after")}
}
