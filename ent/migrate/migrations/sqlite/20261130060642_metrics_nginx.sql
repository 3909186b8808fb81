-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_metric_rollups" table
CREATE TABLE `new_metric_rollups` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `resolution` integer NOT NULL, `bucket` integer NOT NULL, `count` integer NOT NULL DEFAULT (0), `cpu_max` real NOT NULL DEFAULT (0), `cpu` real NOT NULL DEFAULT (0), `load1` real NOT NULL DEFAULT (0), `load5` real NOT NULL DEFAULT (0), `load15` real NOT NULL DEFAULT (0), `mem_used` integer NOT NULL DEFAULT (0), `mem_total` integer NOT NULL DEFAULT (0), `swap_used` integer NOT NULL DEFAULT (0), `swap_total` integer NOT NULL DEFAULT (0), `disk_used` integer NOT NULL DEFAULT (0), `disk_total` integer NOT NULL DEFAULT (0), `net_rx` real NOT NULL DEFAULT (0), `net_tx` real NOT NULL DEFAULT (0), `disk_read` real NOT NULL DEFAULT (0), `disk_write` real NOT NULL DEFAULT (0), `nginx_rps` real NOT NULL DEFAULT (0), `nginx_conns` real NOT NULL DEFAULT (0), `server_id` integer NOT NULL, CONSTRAINT `metric_rollups_servers_metric_rollups` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Copy rows from old table "metric_rollups" to new temporary table "new_metric_rollups"
INSERT INTO `new_metric_rollups` (`id`, `resolution`, `bucket`, `count`, `cpu_max`, `cpu`, `load1`, `load5`, `load15`, `mem_used`, `mem_total`, `swap_used`, `swap_total`, `disk_used`, `disk_total`, `net_rx`, `net_tx`, `disk_read`, `disk_write`, `server_id`) SELECT `id`, `resolution`, `bucket`, `count`, `cpu_max`, `cpu`, `load1`, `load5`, `load15`, `mem_used`, `mem_total`, `swap_used`, `swap_total`, `disk_used`, `disk_total`, `net_rx`, `net_tx`, `disk_read`, `disk_write`, `server_id` FROM `metric_rollups`;
-- Drop "metric_rollups" table after copying rows
DROP TABLE `metric_rollups`;
-- Rename temporary table "new_metric_rollups" to "metric_rollups"
ALTER TABLE `new_metric_rollups` RENAME TO `metric_rollups`;
-- Create index "metricrollup_server_id_resolution_bucket" to table: "metric_rollups"
CREATE UNIQUE INDEX `metricrollup_server_id_resolution_bucket` ON `metric_rollups` (`server_id`, `resolution`, `bucket`);
-- Create index "metricrollup_resolution_bucket" to table: "metric_rollups"
CREATE INDEX `metricrollup_resolution_bucket` ON `metric_rollups` (`resolution`, `bucket`);
-- Create "new_metric_samples" table
CREATE TABLE `new_metric_samples` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `ts` integer NOT NULL, `source` text NOT NULL DEFAULT (''), `uptime` integer NOT NULL DEFAULT (0), `processes` integer NOT NULL DEFAULT (0), `detail` blob NULL, `cpu` real NOT NULL DEFAULT (0), `load1` real NOT NULL DEFAULT (0), `load5` real NOT NULL DEFAULT (0), `load15` real NOT NULL DEFAULT (0), `mem_used` integer NOT NULL DEFAULT (0), `mem_total` integer NOT NULL DEFAULT (0), `swap_used` integer NOT NULL DEFAULT (0), `swap_total` integer NOT NULL DEFAULT (0), `disk_used` integer NOT NULL DEFAULT (0), `disk_total` integer NOT NULL DEFAULT (0), `net_rx` real NOT NULL DEFAULT (0), `net_tx` real NOT NULL DEFAULT (0), `disk_read` real NOT NULL DEFAULT (0), `disk_write` real NOT NULL DEFAULT (0), `nginx_rps` real NOT NULL DEFAULT (0), `nginx_conns` real NOT NULL DEFAULT (0), `server_id` integer NOT NULL, CONSTRAINT `metric_samples_servers_metric_samples` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Copy rows from old table "metric_samples" to new temporary table "new_metric_samples"
INSERT INTO `new_metric_samples` (`id`, `ts`, `source`, `uptime`, `processes`, `detail`, `cpu`, `load1`, `load5`, `load15`, `mem_used`, `mem_total`, `swap_used`, `swap_total`, `disk_used`, `disk_total`, `net_rx`, `net_tx`, `disk_read`, `disk_write`, `server_id`) SELECT `id`, `ts`, `source`, `uptime`, `processes`, `detail`, `cpu`, `load1`, `load5`, `load15`, `mem_used`, `mem_total`, `swap_used`, `swap_total`, `disk_used`, `disk_total`, `net_rx`, `net_tx`, `disk_read`, `disk_write`, `server_id` FROM `metric_samples`;
-- Drop "metric_samples" table after copying rows
DROP TABLE `metric_samples`;
-- Rename temporary table "new_metric_samples" to "metric_samples"
ALTER TABLE `new_metric_samples` RENAME TO `metric_samples`;
-- Create index "metricsample_server_id_ts" to table: "metric_samples"
CREATE UNIQUE INDEX `metricsample_server_id_ts` ON `metric_samples` (`server_id`, `ts`);
-- Create index "metricsample_ts" to table: "metric_samples"
CREATE INDEX `metricsample_ts` ON `metric_samples` (`ts`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
