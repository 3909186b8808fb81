package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// AcmeAccount is the account registered with one ACME directory. Its key is stored
// only sealed with the master key.
type AcmeAccount struct {
	ent.Schema
}

// Mixin of AcmeAccount.
func (AcmeAccount) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of AcmeAccount.
func (AcmeAccount) Fields() []ent.Field {
	return []ent.Field{
		field.String("directory_url").Unique().NotEmpty().MaxLen(512),
		field.String("email").Default("").MaxLen(254),
		// URI is the account URL the CA assigned.
		field.String("uri").NotEmpty().MaxLen(512),
		field.Bytes("key_sealed").Sensitive(),
	}
}
