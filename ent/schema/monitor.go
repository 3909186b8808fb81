package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Monitor is an endpoint the controller checks that is not a managed domain:
// an HTTP(S) URL, a TCP or TLS host:port, or (push) an outside job that calls
// the monitor's secret URL on a schedule. The newest result lives on the
// row, so the list of monitors reads one table.
type Monitor struct {
	ent.Schema
}

// Mixin of Monitor.
func (Monitor) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Monitor.
func (Monitor) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().MinLen(1).MaxLen(64).
			Match(regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)),
		field.Enum("kind").Values("http", "tcp", "tls", "push"),
		// Target is a URL for http, host:port for tcp and tls, empty for push.
		field.String("target").MaxLen(2048),
		field.Int("timeout_ms").Default(10000).Range(1000, 60000),
		// IntervalS is how often it is checked, in seconds.
		field.Int("interval_s").Default(60).Range(20, 86400),
		// Retries is how many failed checks in a row are tolerated before
		// the monitor counts as down (it is "retrying" meanwhile).
		field.Int("retries").Default(0).Range(0, 10),
		// ExpectStatus lists the HTTP statuses that count as up, as codes and
		// ranges ("200-299,301"); empty means 200-399.
		field.String("expect_status").Default("").MaxLen(100),
		// ExpectBody is text the first 64 KiB of an HTTP answer must hold;
		// empty means any body.
		field.String("expect_body").Default("").MaxLen(200),
		// IgnoreTLSErrors accepts any certificate an https target presents
		// (self-signed, expired, another name); its expiry is still kept.
		field.Bool("ignore_tls_errors").Default(false),
		field.Bool("enabled").Default(true),
		// StatusPage lists the monitor on the public status page (its name,
		// state and uptime; never its target or messages).
		field.Bool("status_page").Default(false),
		// The newest result.
		field.Time("checked_at").Optional().Nillable(),
		field.Bool("ok").Default(false),
		// Status is the HTTP status, 0 for tcp or when no response came.
		field.Int("status").Default(0),
		field.Int("latency_ms").Default(0),
		field.String("message").Default("").MaxLen(1000),
		// FailingSince is when the current run of failed checks began.
		field.Time("failing_since").Optional().Nillable(),
		// FailedChecks counts the failed checks of the current run.
		field.Int("failed_checks").Default(0),
		// CertNotAfter is when the certificate an https target presented at
		// the newest check that reached its handshake expires.
		field.Time("cert_not_after").Optional().Nillable(),
		// PushTokenHash is the SHA-256 (hex) of a push monitor's secret
		// token; the token itself is shown once and never stored.
		field.String("push_token_hash").Optional().Nillable().Unique().Sensitive().MaxLen(64),
		// LastPushAt is when a push monitor's newest push arrived.
		field.Time("last_push_at").Optional().Nillable(),
		// PushDueAt is when an enabled push monitor without a push by then
		// gets a failed check: the newest push (or the start of the wait)
		// plus the interval and a grace, then every interval.
		field.Time("push_due_at").Optional().Nillable(),
		// Seq counts the results and edits written to the row. A result is
		// written only over the row it was judged on, so a push and the
		// scheduled job arriving together neither count a check twice nor
		// lose an outage.
		field.Int("seq").Default(0),
	}
}

// Edges of Monitor.
func (Monitor) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("hours", MonitorHour.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("outages", MonitorOutage.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// MonitorOutage is one run of failed checks of a monitor: when it began,
// why, and when the next good check ended it (nil while it lasts).
type MonitorOutage struct {
	ent.Schema
}

// Fields of MonitorOutage.
func (MonitorOutage) Fields() []ent.Field {
	return []ent.Field{
		field.Int("monitor_id"),
		field.Time("started_at"),
		field.Time("ended_at").Optional().Nillable(),
		// Message is why the first failed check failed.
		field.String("message").Default("").MaxLen(1000),
		// Checks counts the failed checks in the run.
		field.Int("checks").Default(1),
	}
}

// Edges of MonitorOutage.
func (MonitorOutage) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("monitor", Monitor.Type).Ref("outages").Field("monitor_id").Unique().Required(),
	}
}

// Indexes of MonitorOutage.
func (MonitorOutage) Indexes() []ent.Index {
	return []ent.Index{index.Fields("monitor_id", "started_at"), index.Fields("ended_at")}
}

// MonitorHour counts one hour of a monitor's checks, for uptime figures: how
// many were up and down, and the summed latency of those that were up.
type MonitorHour struct {
	ent.Schema
}

// Fields of MonitorHour.
func (MonitorHour) Fields() []ent.Field {
	return []ent.Field{
		field.Int("monitor_id"),
		// Hour is the start of the hour, in UTC.
		field.Time("hour"),
		field.Int("up").Default(0),
		field.Int("down").Default(0),
		field.Int64("latency_ms_sum").Default(0),
	}
}

// Edges of MonitorHour.
func (MonitorHour) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("monitor", Monitor.Type).Ref("hours").Field("monitor_id").Unique().Required(),
	}
}

// Indexes of MonitorHour.
func (MonitorHour) Indexes() []ent.Index {
	return []ent.Index{index.Fields("monitor_id", "hour").Unique(), index.Fields("hour")}
}
