-- Create "health_hours" table
CREATE TABLE `health_hours` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `hour` datetime NOT NULL, `up` integer NOT NULL DEFAULT (0), `down` integer NOT NULL DEFAULT (0), `latency_ms_sum` integer NOT NULL DEFAULT (0), `domain_id` integer NOT NULL, `server_id` integer NOT NULL, CONSTRAINT `health_hours_domains_health_hours` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `health_hours_servers_health_hours` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "healthhour_domain_id_server_id_hour" to table: "health_hours"
CREATE UNIQUE INDEX `healthhour_domain_id_server_id_hour` ON `health_hours` (`domain_id`, `server_id`, `hour`);
-- Create index "healthhour_hour" to table: "health_hours"
CREATE INDEX `healthhour_hour` ON `health_hours` (`hour`);
