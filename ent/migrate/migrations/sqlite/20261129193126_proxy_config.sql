-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_servers" table
CREATE TABLE `new_servers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `address` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `local` bool NOT NULL DEFAULT (false), `labels` json NULL, `last_seen_at` datetime NULL, `agent_version` text NOT NULL DEFAULT (''), `hostname` text NOT NULL DEFAULT (''), `os` text NOT NULL DEFAULT (''), `arch` text NOT NULL DEFAULT (''), `kernel` text NOT NULL DEFAULT (''), `metrics_source` text NOT NULL DEFAULT (''), `addresses` json NULL, `cert_not_after` datetime NULL, `desired_revision` integer NOT NULL DEFAULT (0), `applied_revision` integer NOT NULL DEFAULT (0), `drift` json NULL);
-- Copy rows from old table "servers" to new temporary table "new_servers"
INSERT INTO `new_servers` (`id`, `created_at`, `updated_at`, `name`, `address`, `status`, `local`, `labels`, `last_seen_at`, `agent_version`, `hostname`, `os`, `arch`, `kernel`, `metrics_source`, `addresses`, `cert_not_after`) SELECT `id`, `created_at`, `updated_at`, `name`, `address`, `status`, `local`, `labels`, `last_seen_at`, `agent_version`, `hostname`, `os`, `arch`, `kernel`, `metrics_source`, `addresses`, `cert_not_after` FROM `servers`;
-- Drop "servers" table after copying rows
DROP TABLE `servers`;
-- Rename temporary table "new_servers" to "servers"
ALTER TABLE `new_servers` RENAME TO `servers`;
-- Create index "servers_name_key" to table: "servers"
CREATE UNIQUE INDEX `servers_name_key` ON `servers` (`name`);
-- Create "basic_auth_users" table
CREATE TABLE `basic_auth_users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `username` text NOT NULL, `password_hash` text NOT NULL, `domain_id` integer NOT NULL, CONSTRAINT `basic_auth_users_domains_basic_auth_users` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE);
-- Create index "basicauthuser_domain_id_username" to table: "basic_auth_users"
CREATE UNIQUE INDEX `basicauthuser_domain_id_username` ON `basic_auth_users` (`domain_id`, `username`);
-- Create "config_revisions" table
CREATE TABLE `config_revisions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `number` integer NOT NULL, `hash` text NOT NULL, `files` blob NOT NULL, `status` text NOT NULL DEFAULT ('pending'), `outcome` text NOT NULL DEFAULT (''), `output` text NOT NULL DEFAULT (''), `applied_at` datetime NULL, `server_id` integer NOT NULL, CONSTRAINT `config_revisions_servers_config_revisions` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "configrevision_server_id_number" to table: "config_revisions"
CREATE UNIQUE INDEX `configrevision_server_id_number` ON `config_revisions` (`server_id`, `number`);
-- Create "domains" table
CREATE TABLE `domains` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `aliases` json NULL, `force_https` bool NOT NULL DEFAULT (false), `hsts` bool NOT NULL DEFAULT (false), `http2` bool NOT NULL DEFAULT (false), `client_max_body_size` text NOT NULL DEFAULT (''), `response_headers` json NULL, `allow` json NULL, `deny` json NULL, `maintenance` bool NOT NULL DEFAULT (false), `snippet` text NOT NULL DEFAULT (''));
-- Create index "domains_name_key" to table: "domains"
CREATE UNIQUE INDEX `domains_name_key` ON `domains` (`name`);
-- Create "routes" table
CREATE TABLE `routes` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `position` integer NOT NULL DEFAULT (0), `match` text NOT NULL DEFAULT ('prefix'), `path` text NOT NULL, `kind` text NOT NULL, `websocket` bool NOT NULL DEFAULT (false), `preserve_host` bool NOT NULL DEFAULT (false), `rewrite_prefix` text NOT NULL DEFAULT (''), `redirect_code` integer NOT NULL DEFAULT (0), `redirect_target` text NOT NULL DEFAULT (''), `respond_status` integer NOT NULL DEFAULT (0), `respond_body` text NOT NULL DEFAULT (''), `content_type` text NOT NULL DEFAULT (''), `domain_id` integer NOT NULL, `upstream_id` integer NULL, CONSTRAINT `routes_domains_routes` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `routes_upstreams_routes` FOREIGN KEY (`upstream_id`) REFERENCES `upstreams` (`id`) ON DELETE RESTRICT);
-- Create index "route_domain_id_position" to table: "routes"
CREATE INDEX `route_domain_id_position` ON `routes` (`domain_id`, `position`);
-- Create "stream_proxies" table
CREATE TABLE `stream_proxies` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `listen_port` integer NOT NULL, `protocol` text NOT NULL DEFAULT ('tcp'), `upstream_id` integer NOT NULL, CONSTRAINT `stream_proxies_upstreams_streams` FOREIGN KEY (`upstream_id`) REFERENCES `upstreams` (`id`) ON DELETE RESTRICT);
-- Create index "stream_proxies_name_key" to table: "stream_proxies"
CREATE UNIQUE INDEX `stream_proxies_name_key` ON `stream_proxies` (`name`);
-- Create "upstreams" table
CREATE TABLE `upstreams` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `method` text NOT NULL DEFAULT ('round_robin'), `hash_key` text NOT NULL DEFAULT (''), `consistent` bool NOT NULL DEFAULT (false), `keepalive` integer NOT NULL DEFAULT (0), `connect_timeout` integer NOT NULL DEFAULT (0), `read_timeout` integer NOT NULL DEFAULT (0), `send_timeout` integer NOT NULL DEFAULT (0));
-- Create index "upstreams_name_key" to table: "upstreams"
CREATE UNIQUE INDEX `upstreams_name_key` ON `upstreams` (`name`);
-- Create "upstream_targets" table
CREATE TABLE `upstream_targets` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `position` integer NOT NULL DEFAULT (0), `host` text NOT NULL, `port` integer NOT NULL, `weight` integer NOT NULL DEFAULT (0), `max_fails` integer NOT NULL DEFAULT (0), `fail_timeout` integer NOT NULL DEFAULT (0), `backup` bool NOT NULL DEFAULT (false), `down` bool NOT NULL DEFAULT (false), `upstream_id` integer NOT NULL, CONSTRAINT `upstream_targets_upstreams_targets` FOREIGN KEY (`upstream_id`) REFERENCES `upstreams` (`id`) ON DELETE CASCADE);
-- Create index "upstreamtarget_upstream_id_position" to table: "upstream_targets"
CREATE INDEX `upstreamtarget_upstream_id_position` ON `upstream_targets` (`upstream_id`, `position`);
-- Create "domain_servers" table
CREATE TABLE `domain_servers` (`domain_id` integer NOT NULL, `server_id` integer NOT NULL, PRIMARY KEY (`domain_id`, `server_id`), CONSTRAINT `domain_servers_domain_id` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `domain_servers_server_id` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create "stream_proxy_servers" table
CREATE TABLE `stream_proxy_servers` (`stream_proxy_id` integer NOT NULL, `server_id` integer NOT NULL, PRIMARY KEY (`stream_proxy_id`, `server_id`), CONSTRAINT `stream_proxy_servers_stream_proxy_id` FOREIGN KEY (`stream_proxy_id`) REFERENCES `stream_proxies` (`id`) ON DELETE CASCADE, CONSTRAINT `stream_proxy_servers_server_id` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
