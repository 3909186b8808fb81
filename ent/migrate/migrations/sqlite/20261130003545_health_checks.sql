-- Create "health_checks" table
CREATE TABLE `health_checks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `path` text NOT NULL DEFAULT ('/'), `enabled` bool NOT NULL DEFAULT (true), `domain_id` integer NOT NULL, CONSTRAINT `health_checks_domains_health_check` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE);
-- Create index "health_checks_domain_id_key" to table: "health_checks"
CREATE UNIQUE INDEX `health_checks_domain_id_key` ON `health_checks` (`domain_id`);
-- Create "health_probes" table
CREATE TABLE `health_probes` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `ok` bool NOT NULL, `status` integer NOT NULL DEFAULT (0), `latency_ms` integer NOT NULL DEFAULT (0), `url` text NOT NULL DEFAULT (''), `message` text NOT NULL DEFAULT (''), `failing_since` datetime NULL, `domain_id` integer NOT NULL, `server_id` integer NOT NULL, CONSTRAINT `health_probes_domains_health_probes` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `health_probes_servers_health_probes` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "healthprobe_domain_id_server_id" to table: "health_probes"
CREATE UNIQUE INDEX `healthprobe_domain_id_server_id` ON `health_probes` (`domain_id`, `server_id`);
