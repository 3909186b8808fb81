-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_notification_channels" table
CREATE TABLE `new_notification_channels` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `enabled` bool NOT NULL DEFAULT (true), `chat_id` integer NOT NULL DEFAULT (0), `topic_id` integer NOT NULL DEFAULT (0), `silent` bool NOT NULL DEFAULT (false), `url` text NOT NULL DEFAULT (''), `webhook_format` text NOT NULL DEFAULT (''), `smtp_host` text NOT NULL DEFAULT (''), `smtp_port` integer NOT NULL DEFAULT (0), `smtp_security` text NOT NULL DEFAULT (''), `smtp_username` text NOT NULL DEFAULT (''), `mail_from` text NOT NULL DEFAULT (''), `mail_to` json NULL, `secret` blob NULL);
-- Copy rows from old table "notification_channels" to new temporary table "new_notification_channels"
INSERT INTO `new_notification_channels` (`id`, `created_at`, `updated_at`, `name`, `kind`, `enabled`, `chat_id`, `topic_id`, `silent`, `url`, `smtp_host`, `smtp_port`, `smtp_security`, `smtp_username`, `mail_from`, `mail_to`, `secret`) SELECT `id`, `created_at`, `updated_at`, `name`, `kind`, `enabled`, `chat_id`, `topic_id`, `silent`, `url`, `smtp_host`, `smtp_port`, `smtp_security`, `smtp_username`, `mail_from`, `mail_to`, `secret` FROM `notification_channels`;
-- Drop "notification_channels" table after copying rows
DROP TABLE `notification_channels`;
-- Rename temporary table "new_notification_channels" to "notification_channels"
ALTER TABLE `new_notification_channels` RENAME TO `notification_channels`;
-- Create index "notification_channels_name_key" to table: "notification_channels"
CREATE UNIQUE INDEX `notification_channels_name_key` ON `notification_channels` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
