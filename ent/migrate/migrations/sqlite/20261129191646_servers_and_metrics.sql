-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_tasks" table
CREATE TABLE `new_tasks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `subject` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `started_at` datetime NULL, `finished_at` datetime NULL, `log` text NOT NULL DEFAULT (''), `error` text NOT NULL DEFAULT (''), `server_tasks` integer NULL, CONSTRAINT `tasks_servers_tasks` FOREIGN KEY (`server_tasks`) REFERENCES `servers` (`id`) ON DELETE SET NULL);
-- Copy rows from old table "tasks" to new temporary table "new_tasks"
INSERT INTO `new_tasks` (`id`, `created_at`, `updated_at`, `kind`, `subject`, `status`, `started_at`, `finished_at`, `log`, `error`) SELECT `id`, `created_at`, `updated_at`, `kind`, `subject`, `status`, `started_at`, `finished_at`, `log`, `error` FROM `tasks`;
-- Drop "tasks" table after copying rows
DROP TABLE `tasks`;
-- Rename temporary table "new_tasks" to "tasks"
ALTER TABLE `new_tasks` RENAME TO `tasks`;
-- Create index "task_kind_created_at" to table: "tasks"
CREATE INDEX `task_kind_created_at` ON `tasks` (`kind`, `created_at`);
-- Create "agent_certificates" table
CREATE TABLE `agent_certificates` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `serial` text NOT NULL, `not_before` datetime NOT NULL, `not_after` datetime NOT NULL, `revoked_at` datetime NULL, `server_certificates` integer NOT NULL, CONSTRAINT `agent_certificates_servers_certificates` FOREIGN KEY (`server_certificates`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "agent_certificates_serial_key" to table: "agent_certificates"
CREATE UNIQUE INDEX `agent_certificates_serial_key` ON `agent_certificates` (`serial`);
-- Create "enrollment_tokens" table
CREATE TABLE `enrollment_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `token_hash` blob NOT NULL, `expires_at` datetime NOT NULL, `used_at` datetime NULL, `server_enrollment_tokens` integer NOT NULL, CONSTRAINT `enrollment_tokens_servers_enrollment_tokens` FOREIGN KEY (`server_enrollment_tokens`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "enrollment_tokens_token_hash_key" to table: "enrollment_tokens"
CREATE UNIQUE INDEX `enrollment_tokens_token_hash_key` ON `enrollment_tokens` (`token_hash`);
-- Create "metric_rollups" table
CREATE TABLE `metric_rollups` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `resolution` integer NOT NULL, `bucket` integer NOT NULL, `count` integer NOT NULL DEFAULT (0), `cpu_max` real NOT NULL DEFAULT (0), `cpu` real NOT NULL DEFAULT (0), `load1` real NOT NULL DEFAULT (0), `load5` real NOT NULL DEFAULT (0), `load15` real NOT NULL DEFAULT (0), `mem_used` integer NOT NULL DEFAULT (0), `mem_total` integer NOT NULL DEFAULT (0), `swap_used` integer NOT NULL DEFAULT (0), `swap_total` integer NOT NULL DEFAULT (0), `disk_used` integer NOT NULL DEFAULT (0), `disk_total` integer NOT NULL DEFAULT (0), `net_rx` real NOT NULL DEFAULT (0), `net_tx` real NOT NULL DEFAULT (0), `disk_read` real NOT NULL DEFAULT (0), `disk_write` real NOT NULL DEFAULT (0), `server_id` integer NOT NULL, CONSTRAINT `metric_rollups_servers_metric_rollups` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "metricrollup_server_id_resolution_bucket" to table: "metric_rollups"
CREATE UNIQUE INDEX `metricrollup_server_id_resolution_bucket` ON `metric_rollups` (`server_id`, `resolution`, `bucket`);
-- Create index "metricrollup_resolution_bucket" to table: "metric_rollups"
CREATE INDEX `metricrollup_resolution_bucket` ON `metric_rollups` (`resolution`, `bucket`);
-- Create "metric_samples" table
CREATE TABLE `metric_samples` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `ts` integer NOT NULL, `source` text NOT NULL DEFAULT (''), `uptime` integer NOT NULL DEFAULT (0), `processes` integer NOT NULL DEFAULT (0), `detail` blob NULL, `cpu` real NOT NULL DEFAULT (0), `load1` real NOT NULL DEFAULT (0), `load5` real NOT NULL DEFAULT (0), `load15` real NOT NULL DEFAULT (0), `mem_used` integer NOT NULL DEFAULT (0), `mem_total` integer NOT NULL DEFAULT (0), `swap_used` integer NOT NULL DEFAULT (0), `swap_total` integer NOT NULL DEFAULT (0), `disk_used` integer NOT NULL DEFAULT (0), `disk_total` integer NOT NULL DEFAULT (0), `net_rx` real NOT NULL DEFAULT (0), `net_tx` real NOT NULL DEFAULT (0), `disk_read` real NOT NULL DEFAULT (0), `disk_write` real NOT NULL DEFAULT (0), `server_id` integer NOT NULL, CONSTRAINT `metric_samples_servers_metric_samples` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "metricsample_server_id_ts" to table: "metric_samples"
CREATE UNIQUE INDEX `metricsample_server_id_ts` ON `metric_samples` (`server_id`, `ts`);
-- Create index "metricsample_ts" to table: "metric_samples"
CREATE INDEX `metricsample_ts` ON `metric_samples` (`ts`);
-- Create "servers" table
CREATE TABLE `servers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `address` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `local` bool NOT NULL DEFAULT (false), `labels` json NULL, `last_seen_at` datetime NULL, `agent_version` text NOT NULL DEFAULT (''), `hostname` text NOT NULL DEFAULT (''), `os` text NOT NULL DEFAULT (''), `arch` text NOT NULL DEFAULT (''), `kernel` text NOT NULL DEFAULT (''), `metrics_source` text NOT NULL DEFAULT (''), `addresses` json NULL, `cert_not_after` datetime NULL);
-- Create index "servers_name_key" to table: "servers"
CREATE UNIQUE INDEX `servers_name_key` ON `servers` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
