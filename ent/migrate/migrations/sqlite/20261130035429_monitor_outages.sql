-- Create "monitor_outages" table
CREATE TABLE `monitor_outages` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `started_at` datetime NOT NULL, `ended_at` datetime NULL, `message` text NOT NULL DEFAULT (''), `checks` integer NOT NULL DEFAULT (1), `monitor_id` integer NOT NULL, CONSTRAINT `monitor_outages_monitors_outages` FOREIGN KEY (`monitor_id`) REFERENCES `monitors` (`id`) ON DELETE CASCADE);
-- Create index "monitoroutage_monitor_id_started_at" to table: "monitor_outages"
CREATE INDEX `monitoroutage_monitor_id_started_at` ON `monitor_outages` (`monitor_id`, `started_at`);
-- Create index "monitoroutage_ended_at" to table: "monitor_outages"
CREATE INDEX `monitoroutage_ended_at` ON `monitor_outages` (`ended_at`);
