-- Create "health_outages" table
CREATE TABLE `health_outages` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `started_at` datetime NOT NULL, `ended_at` datetime NULL, `message` text NOT NULL DEFAULT (''), `checks` integer NOT NULL DEFAULT (1), `domain_id` integer NOT NULL, `server_id` integer NOT NULL, CONSTRAINT `health_outages_domains_health_outages` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `health_outages_servers_health_outages` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "healthoutage_domain_id_started_at" to table: "health_outages"
CREATE INDEX `healthoutage_domain_id_started_at` ON `health_outages` (`domain_id`, `started_at`);
-- Create index "healthoutage_ended_at" to table: "health_outages"
CREATE INDEX `healthoutage_ended_at` ON `health_outages` (`ended_at`);
