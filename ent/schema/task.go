package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Task is one run of a job (provisioning, a scheduled check, an issuance) with its log.
type Task struct {
	ent.Schema
}

// Mixin of Task.
func (Task) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Task.
func (Task) Fields() []ent.Field {
	return []ent.Field{
		field.String("kind").NotEmpty(),
		field.String("subject").Default(""),
		field.Enum("status").Values("pending", "running", "succeeded", "failed").Default("pending"),
		field.Time("started_at").Optional().Nillable(),
		field.Time("finished_at").Optional().Nillable(),
		field.Text("log").Default(""),
		field.String("error").Default(""),
	}
}

// Edges of Task.
func (Task) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("tasks").Unique(),
	}
}

// Indexes of Task.
func (Task) Indexes() []ent.Index {
	return []ent.Index{index.Fields("kind", "created_at")}
}
