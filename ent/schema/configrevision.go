package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ConfigRevision is one immutable rendered nginx release for a server, numbered per
// server, with the outcome of applying it.
type ConfigRevision struct {
	ent.Schema
}

// Mixin of ConfigRevision.
func (ConfigRevision) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of ConfigRevision.
func (ConfigRevision) Fields() []ent.Field {
	return []ent.Field{
		field.Int("server_id").Immutable(),
		// Number increases per server, starting at 1; it is the agent's release name.
		field.Int64("number").Immutable(),
		// Hash is the hex SHA-256 of the file set, as nginxconf.Render computes it.
		field.String("hash").Immutable(),
		// Files is the file set as a JSON list of {path, content (base64)} sorted by path.
		field.Bytes("files").Immutable(),
		// Status: pending until applied or failed; superseded once a newer revision
		// replaced it (before it was applied, or as the current one).
		field.Enum("status").Values("pending", "applied", "failed", "superseded").Default("pending"),
		// Outcome is the result class of the last apply attempt, e.g. "applied",
		// "test_failed" or "undelivered"; empty before the first attempt.
		field.String("outcome").Default(""),
		// Output is nginx's own message, or why the command could not be delivered.
		field.Text("output").Default(""),
		field.Time("applied_at").Optional().Nillable(),
	}
}

// Edges of ConfigRevision.
func (ConfigRevision) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("config_revisions").Field("server_id").Unique().Required().Immutable(),
	}
}

// Indexes of ConfigRevision.
func (ConfigRevision) Indexes() []ent.Index {
	return []ent.Index{index.Fields("server_id", "number").Unique()}
}

// NginxDrift is the result of comparing a server's current nginx release with what was
// applied: files added, removed or modified behind the agent's back.
type NginxDrift struct {
	CheckedAt time.Time `json:"checked_at"`
	// Revision is the server's applied revision when the check ran.
	Revision int64    `json:"revision"`
	Added    []string `json:"added,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	Modified []string `json:"modified,omitempty"`
}

// Drifted reports whether any file differs.
func (d *NginxDrift) Drifted() bool {
	return d != nil && len(d.Added)+len(d.Removed)+len(d.Modified) > 0
}
