-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_domains" table
CREATE TABLE `new_domains` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `aliases` json NULL, `force_https` bool NOT NULL DEFAULT (false), `hsts` bool NOT NULL DEFAULT (false), `http2` bool NOT NULL DEFAULT (false), `client_max_body_size` text NOT NULL DEFAULT (''), `compress` bool NOT NULL DEFAULT (false), `cache_generation` integer NOT NULL DEFAULT (0), `response_headers` json NULL, `allow` json NULL, `deny` json NULL, `maintenance` bool NOT NULL DEFAULT (false), `maintenance_message` text NOT NULL DEFAULT (''), `rate_limit` integer NOT NULL DEFAULT (0), `rate_unit` text NOT NULL DEFAULT ('s'), `rate_burst` integer NOT NULL DEFAULT (0), `redirect_aliases` bool NOT NULL DEFAULT (false), `status_page` bool NOT NULL DEFAULT (false), `snippet` text NOT NULL DEFAULT (''));
-- Copy rows from old table "domains" to new temporary table "new_domains"
INSERT INTO `new_domains` (`id`, `created_at`, `updated_at`, `name`, `aliases`, `force_https`, `hsts`, `http2`, `client_max_body_size`, `compress`, `response_headers`, `allow`, `deny`, `maintenance`, `maintenance_message`, `rate_limit`, `rate_unit`, `rate_burst`, `redirect_aliases`, `status_page`, `snippet`) SELECT `id`, `created_at`, `updated_at`, `name`, `aliases`, `force_https`, `hsts`, `http2`, `client_max_body_size`, `compress`, `response_headers`, `allow`, `deny`, `maintenance`, `maintenance_message`, `rate_limit`, `rate_unit`, `rate_burst`, `redirect_aliases`, `status_page`, `snippet` FROM `domains`;
-- Drop "domains" table after copying rows
DROP TABLE `domains`;
-- Rename temporary table "new_domains" to "domains"
ALTER TABLE `new_domains` RENAME TO `domains`;
-- Create index "domains_name_key" to table: "domains"
CREATE UNIQUE INDEX `domains_name_key` ON `domains` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
