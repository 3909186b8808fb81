package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// metricColumns are the summary values kept for every sample and rollup bucket.
func metricColumns() []ent.Field {
	return []ent.Field{
		field.Float("cpu").Default(0),
		field.Float("load1").Default(0),
		field.Float("load5").Default(0),
		field.Float("load15").Default(0),
		field.Int64("mem_used").Default(0),
		field.Int64("mem_total").Default(0),
		field.Int64("swap_used").Default(0),
		field.Int64("swap_total").Default(0),
		field.Int64("disk_used").Default(0),
		field.Int64("disk_total").Default(0),
		field.Float("net_rx").Default(0),
		field.Float("net_tx").Default(0),
		field.Float("disk_read").Default(0),
		field.Float("disk_write").Default(0),
		// NginxRPS is requests per second and NginxConns open client
		// connections of the node's nginx (0 when not reported).
		field.Float("nginx_rps").Default(0),
		field.Float("nginx_conns").Default(0),
	}
}

// MetricSample is one raw sample from a node. (server_id, ts) is unique so
// an agent may replay its buffer without double counting.
type MetricSample struct {
	ent.Schema
}

// Fields of MetricSample.
func (MetricSample) Fields() []ent.Field {
	return append([]ent.Field{
		field.Int("server_id"),
		// Ts is the time the agent took the sample, in Unix milliseconds.
		field.Int64("ts"),
		field.String("source").Default(""),
		field.Int64("uptime").Default(0),
		field.Int("processes").Default(0),
		// Detail is the full sample (per-core CPU, filesystems, interfaces, disks, temperatures) as protobuf.
		field.Bytes("detail").Optional(),
	}, metricColumns()...)
}

// Edges of MetricSample.
func (MetricSample) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("metric_samples").Field("server_id").Unique().Required(),
	}
}

// Indexes of MetricSample.
func (MetricSample) Indexes() []ent.Index {
	return []ent.Index{index.Fields("server_id", "ts").Unique(), index.Fields("ts")}
}

// MetricRollup aggregates samples over a bucket of Resolution seconds.
type MetricRollup struct {
	ent.Schema
}

// Fields of MetricRollup.
func (MetricRollup) Fields() []ent.Field {
	return append([]ent.Field{
		field.Int("server_id"),
		field.Int("resolution"),
		// Bucket is the start of the bucket in Unix milliseconds.
		field.Int64("bucket"),
		field.Int("count").Default(0),
		field.Float("cpu_max").Default(0),
	}, metricColumns()...)
}

// Edges of MetricRollup.
func (MetricRollup) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("server", Server.Type).Ref("metric_rollups").Field("server_id").Unique().Required(),
	}
}

// Indexes of MetricRollup.
func (MetricRollup) Indexes() []ent.Index {
	return []ent.Index{index.Fields("server_id", "resolution", "bucket").Unique(), index.Fields("resolution", "bucket")}
}
