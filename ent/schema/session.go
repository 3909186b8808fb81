package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Session is a browser session (the scs store).
type Session struct {
	ent.Schema
}

// Fields of Session.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.String("token").Unique().NotEmpty().Sensitive(),
		field.Bytes("data"),
		field.Time("expiry"),
	}
}

// Indexes of Session.
func (Session) Indexes() []ent.Index {
	return []ent.Index{index.Fields("expiry")}
}
