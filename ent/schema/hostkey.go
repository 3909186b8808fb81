package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// HostKey is an SSH host key an admin approved for a server. Provisioning
// connects only when the server presents one of its approved keys.
type HostKey struct {
	ent.Schema
}

// Mixin of HostKey.
func (HostKey) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of HostKey.
func (HostKey) Fields() []ent.Field {
	return []ent.Field{
		// KeyType is the SSH key algorithm, e.g. "ssh-ed25519".
		field.String("key_type").NotEmpty().MaxLen(64),
		// Fingerprint is the OpenSSH SHA-256 fingerprint, "SHA256:...".
		field.String("fingerprint").NotEmpty().MaxLen(128),
		field.Time("approved_at"),
		// ApprovedBy names the admin who approved the key.
		field.String("approved_by").Default(""),
	}
}

// Edges of HostKey.
func (HostKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("host_keys").Unique().Required(),
	}
}
