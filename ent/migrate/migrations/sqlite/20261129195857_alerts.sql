-- Create "alert_rules" table
CREATE TABLE `alert_rules` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `enabled` bool NOT NULL DEFAULT (true), `metric` text NOT NULL DEFAULT (''), `mount` text NOT NULL DEFAULT (''), `op` text NOT NULL DEFAULT (''), `warning` real NULL, `critical` real NULL, `severity` text NOT NULL DEFAULT ('critical'), `window_seconds` integer NOT NULL DEFAULT (0), `days` integer NOT NULL DEFAULT (0), `server_ids` json NULL, `labels` json NULL, `channel_ids` json NULL, `repeat_seconds` integer NOT NULL DEFAULT (0));
-- Create index "alert_rules_name_key" to table: "alert_rules"
CREATE UNIQUE INDEX `alert_rules_name_key` ON `alert_rules` (`name`);
-- Create "incidents" table
CREATE TABLE `incidents` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `rule_id` integer NOT NULL, `rule_name` text NOT NULL DEFAULT (''), `subject` text NOT NULL, `open_key` text NULL, `server_id` integer NOT NULL DEFAULT (0), `server_name` text NOT NULL DEFAULT (''), `state` text NOT NULL DEFAULT ('pending'), `severity` text NOT NULL DEFAULT ('warning'), `value` real NOT NULL DEFAULT (0), `summary` text NOT NULL DEFAULT (''), `started_at` datetime NOT NULL, `fired_at` datetime NULL, `resolved_at` datetime NULL, `acked_at` datetime NULL, `acked_by` text NOT NULL DEFAULT (''), `notified_at` datetime NULL, `repeat_round` integer NOT NULL DEFAULT (0));
-- Create index "incidents_open_key_key" to table: "incidents"
CREATE UNIQUE INDEX `incidents_open_key_key` ON `incidents` (`open_key`);
-- Create index "incident_state_started_at" to table: "incidents"
CREATE INDEX `incident_state_started_at` ON `incidents` (`state`, `started_at`);
-- Create index "incident_rule_id_subject" to table: "incidents"
CREATE INDEX `incident_rule_id_subject` ON `incidents` (`rule_id`, `subject`);
-- Create "notifications" table
CREATE TABLE `notifications` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `channel_id` integer NOT NULL DEFAULT (0), `channel` text NOT NULL DEFAULT (''), `incident_id` integer NOT NULL DEFAULT (0), `key` text NOT NULL DEFAULT (''), `kind` text NOT NULL DEFAULT (''), `attempt` integer NOT NULL DEFAULT (0), `outcome` text NOT NULL, `error` text NOT NULL DEFAULT (''));
-- Create index "notification_at" to table: "notifications"
CREATE INDEX `notification_at` ON `notifications` (`at`);
-- Create index "notification_incident_id" to table: "notifications"
CREATE INDEX `notification_incident_id` ON `notifications` (`incident_id`);
-- Create "notification_channels" table
CREATE TABLE `notification_channels` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `enabled` bool NOT NULL DEFAULT (true), `chat_id` integer NOT NULL DEFAULT (0), `topic_id` integer NOT NULL DEFAULT (0), `silent` bool NOT NULL DEFAULT (false), `url` text NOT NULL DEFAULT (''), `secret` blob NULL);
-- Create index "notification_channels_name_key" to table: "notification_channels"
CREATE UNIQUE INDEX `notification_channels_name_key` ON `notification_channels` (`name`);
-- Create "silences" table
CREATE TABLE `silences` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `rule_id` integer NOT NULL DEFAULT (0), `server_id` integer NOT NULL DEFAULT (0), `starts_at` datetime NOT NULL, `ends_at` datetime NOT NULL, `comment` text NOT NULL DEFAULT (''), `created_by` text NOT NULL DEFAULT (''));
-- Create index "silence_ends_at" to table: "silences"
CREATE INDEX `silence_ends_at` ON `silences` (`ends_at`);
