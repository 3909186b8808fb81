package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ServedCertificate records the certificate a node actually presented for a
// domain when dialled with TLS and the domain as SNI, and whether it is the one
// stored for the domain.
type ServedCertificate struct {
	ent.Schema
}

// Fields of ServedCertificate.
func (ServedCertificate) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.Int("server_id"),
		// Address is the host:port dialled.
		field.String("address").MaxLen(300),
		field.String("fingerprint").Default("").MaxLen(64),
		field.String("serial").Default("").MaxLen(128),
		field.String("issuer").Default("").MaxLen(1024),
		field.Time("not_after").Optional().Nillable(),
		// Matches is true when the served certificate is the stored active one.
		field.Bool("matches").Default(false),
		// Message says what differs, or why the handshake failed.
		field.Text("message").Default(""),
		field.Time("observed_at").Default(time.Now),
	}
}

// Edges of ServedCertificate.
func (ServedCertificate) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("served_certificates").Field("domain_id").Unique().Required(),
		edge.From("server", Server.Type).Ref("served_certificates").Field("server_id").Unique().Required(),
	}
}

// Indexes of ServedCertificate.
func (ServedCertificate) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "server_id", "observed_at")}
}
