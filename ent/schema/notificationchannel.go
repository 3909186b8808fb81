package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// NotificationChannel is a destination for notifications: a Telegram chat
// (bot token sealed in Secret, chat id, optional topic, silent), a JSON
// webhook (URL, body format, optional signing secret sealed in Secret) or email over SMTP
// (server, security, optional user with the password sealed in Secret,
// sender and recipients).
type NotificationChannel struct {
	ent.Schema
}

// Mixin of NotificationChannel.
func (NotificationChannel) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of NotificationChannel.
func (NotificationChannel) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique().NotEmpty().MaxLen(64),
		field.Enum("kind").Values("telegram", "webhook", "email"),
		field.Bool("enabled").Default(true),
		field.Int64("chat_id").Default(0),
		field.Int("topic_id").Default(0),
		field.Bool("silent").Default(false),
		field.String("url").Default("").MaxLen(2048),
		// WebhookFormat is the body a webhook receives: "" (Gatehouse's own
		// JSON payload), "slack" or "discord".
		field.String("webhook_format").Default("").MaxLen(16),
		field.String("smtp_host").Default("").MaxLen(253),
		field.Int("smtp_port").Default(0),
		field.String("smtp_security").Default("").MaxLen(16),
		field.String("smtp_username").Default("").MaxLen(256),
		field.String("mail_from").Default("").MaxLen(512),
		field.Strings("mail_to").Optional(),
		// Secret is sealed with the master key; never returned.
		field.Bytes("secret").Optional().Sensitive(),
	}
}
