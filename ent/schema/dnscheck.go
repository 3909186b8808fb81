package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DNSCheck is one result of checking a domain's DNS: where a name points (kind
// address), the zone's delegation (ns) or whether CAA lets the CA issue (caa).
// Results are kept as history.
type DNSCheck struct {
	ent.Schema
}

// Fields of DNSCheck.
func (DNSCheck) Fields() []ent.Field {
	return []ent.Field{
		field.Int("domain_id"),
		field.String("name").NotEmpty().MaxLen(253),
		field.Enum("kind").Values("address", "ns", "caa"),
		// Status: ok, points_elsewhere, not_resolving, forbidden or error.
		field.String("status").MaxLen(32),
		field.Text("message"),
		field.Strings("addresses").Optional(),
		field.Time("checked_at").Default(time.Now),
	}
}

// Edges of DNSCheck.
func (DNSCheck) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("domain", Domain.Type).Ref("dns_checks").Field("domain_id").Unique().Required(),
	}
}

// Indexes of DNSCheck.
func (DNSCheck) Indexes() []ent.Index {
	return []ent.Index{index.Fields("domain_id", "checked_at")}
}
