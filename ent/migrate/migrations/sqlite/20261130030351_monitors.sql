-- Create "monitors" table
CREATE TABLE `monitors` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `target` text NOT NULL, `timeout_ms` integer NOT NULL DEFAULT (10000), `enabled` bool NOT NULL DEFAULT (true), `checked_at` datetime NULL, `ok` bool NOT NULL DEFAULT (false), `status` integer NOT NULL DEFAULT (0), `latency_ms` integer NOT NULL DEFAULT (0), `message` text NOT NULL DEFAULT (''), `failing_since` datetime NULL);
-- Create index "monitors_name_key" to table: "monitors"
CREATE UNIQUE INDEX `monitors_name_key` ON `monitors` (`name`);
-- Create "monitor_hours" table
CREATE TABLE `monitor_hours` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `hour` datetime NOT NULL, `up` integer NOT NULL DEFAULT (0), `down` integer NOT NULL DEFAULT (0), `latency_ms_sum` integer NOT NULL DEFAULT (0), `monitor_id` integer NOT NULL, CONSTRAINT `monitor_hours_monitors_hours` FOREIGN KEY (`monitor_id`) REFERENCES `monitors` (`id`) ON DELETE CASCADE);
-- Create index "monitorhour_monitor_id_hour" to table: "monitor_hours"
CREATE UNIQUE INDEX `monitorhour_monitor_id_hour` ON `monitor_hours` (`monitor_id`, `hour`);
-- Create index "monitorhour_hour" to table: "monitor_hours"
CREATE INDEX `monitorhour_hour` ON `monitor_hours` (`hour`);
