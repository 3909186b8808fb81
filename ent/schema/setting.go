package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Setting is a controller-wide key/value pair. Secret values are stored sealed.
type Setting struct {
	ent.Schema
}

// Mixin of Setting.
func (Setting) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Setting.
func (Setting) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").Unique().NotEmpty().MaxLen(128),
		field.Bytes("value"),
		field.Bool("secret").Default(false),
	}
}
