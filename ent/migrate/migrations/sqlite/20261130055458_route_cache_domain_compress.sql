-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_routes" table
CREATE TABLE `new_routes` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `position` integer NOT NULL DEFAULT (0), `match` text NOT NULL DEFAULT ('prefix'), `path` text NOT NULL, `kind` text NOT NULL, `websocket` bool NOT NULL DEFAULT (false), `preserve_host` bool NOT NULL DEFAULT (false), `rewrite_prefix` text NOT NULL DEFAULT (''), `cache_ttl` integer NOT NULL DEFAULT (0), `redirect_code` integer NOT NULL DEFAULT (0), `redirect_target` text NOT NULL DEFAULT (''), `respond_status` integer NOT NULL DEFAULT (0), `respond_body` text NOT NULL DEFAULT (''), `content_type` text NOT NULL DEFAULT (''), `domain_id` integer NOT NULL, `upstream_id` integer NULL, CONSTRAINT `routes_domains_routes` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `routes_upstreams_routes` FOREIGN KEY (`upstream_id`) REFERENCES `upstreams` (`id`) ON DELETE RESTRICT);
-- Copy rows from old table "routes" to new temporary table "new_routes"
INSERT INTO `new_routes` (`id`, `created_at`, `updated_at`, `position`, `match`, `path`, `kind`, `websocket`, `preserve_host`, `rewrite_prefix`, `redirect_code`, `redirect_target`, `respond_status`, `respond_body`, `content_type`, `domain_id`, `upstream_id`) SELECT `id`, `created_at`, `updated_at`, `position`, `match`, `path`, `kind`, `websocket`, `preserve_host`, `rewrite_prefix`, `redirect_code`, `redirect_target`, `respond_status`, `respond_body`, `content_type`, `domain_id`, `upstream_id` FROM `routes`;
-- Drop "routes" table after copying rows
DROP TABLE `routes`;
-- Rename temporary table "new_routes" to "routes"
ALTER TABLE `new_routes` RENAME TO `routes`;
-- Create index "route_domain_id_position" to table: "routes"
CREATE INDEX `route_domain_id_position` ON `routes` (`domain_id`, `position`);
-- Create "new_domains" table
CREATE TABLE `new_domains` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `aliases` json NULL, `force_https` bool NOT NULL DEFAULT (false), `hsts` bool NOT NULL DEFAULT (false), `http2` bool NOT NULL DEFAULT (false), `client_max_body_size` text NOT NULL DEFAULT (''), `compress` bool NOT NULL DEFAULT (false), `response_headers` json NULL, `allow` json NULL, `deny` json NULL, `maintenance` bool NOT NULL DEFAULT (false), `maintenance_message` text NOT NULL DEFAULT (''), `rate_limit` integer NOT NULL DEFAULT (0), `rate_unit` text NOT NULL DEFAULT ('s'), `rate_burst` integer NOT NULL DEFAULT (0), `redirect_aliases` bool NOT NULL DEFAULT (false), `status_page` bool NOT NULL DEFAULT (false), `snippet` text NOT NULL DEFAULT (''));
-- Copy rows from old table "domains" to new temporary table "new_domains"
INSERT INTO `new_domains` (`id`, `created_at`, `updated_at`, `name`, `aliases`, `force_https`, `hsts`, `http2`, `client_max_body_size`, `response_headers`, `allow`, `deny`, `maintenance`, `maintenance_message`, `rate_limit`, `rate_unit`, `rate_burst`, `redirect_aliases`, `status_page`, `snippet`) SELECT `id`, `created_at`, `updated_at`, `name`, `aliases`, `force_https`, `hsts`, `http2`, `client_max_body_size`, `response_headers`, `allow`, `deny`, `maintenance`, `maintenance_message`, `rate_limit`, `rate_unit`, `rate_burst`, `redirect_aliases`, `status_page`, `snippet` FROM `domains`;
-- Drop "domains" table after copying rows
DROP TABLE `domains`;
-- Rename temporary table "new_domains" to "domains"
ALTER TABLE `new_domains` RENAME TO `domains`;
-- Create index "domains_name_key" to table: "domains"
CREATE UNIQUE INDEX `domains_name_key` ON `domains` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
