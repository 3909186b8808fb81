package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// DNSProvider holds what DNS-01 needs to publish challenge records: the kind, its
// non-secret settings (nameserver, TSIG key name and algorithm) and its credentials
// (TSIG secret, API tokens) sealed with the master key, write-only through UI and API.
type DNSProvider struct {
	ent.Schema
}

// Mixin of DNSProvider.
func (DNSProvider) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of DNSProvider.
func (DNSProvider) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(64),
		field.Enum("kind").Values("rfc2136", "cloudflare"),
		field.JSON("settings", map[string]string{}).Optional(),
		field.Bytes("secret_sealed").Sensitive(),
	}
}
