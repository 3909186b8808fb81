-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_servers" table
CREATE TABLE `new_servers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `address` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `local` bool NOT NULL DEFAULT (false), `labels` json NULL, `real_ip_from` json NULL, `real_ip_header` text NOT NULL DEFAULT (''), `unknown_names` text NOT NULL DEFAULT (''), `last_seen_at` datetime NULL, `agent_version` text NOT NULL DEFAULT (''), `hostname` text NOT NULL DEFAULT (''), `os` text NOT NULL DEFAULT (''), `arch` text NOT NULL DEFAULT (''), `kernel` text NOT NULL DEFAULT (''), `metrics_source` text NOT NULL DEFAULT (''), `addresses` json NULL, `cert_not_after` datetime NULL, `desired_revision` integer NOT NULL DEFAULT (0), `applied_revision` integer NOT NULL DEFAULT (0), `drift` json NULL, `ssh_host` text NOT NULL DEFAULT (''), `ssh_port` integer NOT NULL DEFAULT (22), `ssh_user` text NOT NULL DEFAULT (''), `ssh_auth` text NOT NULL DEFAULT ('none'), `ssh_secret` blob NULL, `ssh_public_key` text NOT NULL DEFAULT (''), `ssh_sudo` bool NOT NULL DEFAULT (false), `install_nginx` bool NOT NULL DEFAULT (false), `install_glances` bool NOT NULL DEFAULT (false), `install_layout` json NULL, `nginx_node` json NULL);
-- Copy rows from old table "servers" to new temporary table "new_servers"
INSERT INTO `new_servers` (`id`, `created_at`, `updated_at`, `name`, `address`, `status`, `local`, `labels`, `real_ip_from`, `real_ip_header`, `last_seen_at`, `agent_version`, `hostname`, `os`, `arch`, `kernel`, `metrics_source`, `addresses`, `cert_not_after`, `desired_revision`, `applied_revision`, `drift`, `ssh_host`, `ssh_port`, `ssh_user`, `ssh_auth`, `ssh_secret`, `ssh_public_key`, `ssh_sudo`, `install_nginx`, `install_glances`, `install_layout`, `nginx_node`) SELECT `id`, `created_at`, `updated_at`, `name`, `address`, `status`, `local`, `labels`, `real_ip_from`, `real_ip_header`, `last_seen_at`, `agent_version`, `hostname`, `os`, `arch`, `kernel`, `metrics_source`, `addresses`, `cert_not_after`, `desired_revision`, `applied_revision`, `drift`, `ssh_host`, `ssh_port`, `ssh_user`, `ssh_auth`, `ssh_secret`, `ssh_public_key`, `ssh_sudo`, `install_nginx`, `install_glances`, `install_layout`, `nginx_node` FROM `servers`;
-- Drop "servers" table after copying rows
DROP TABLE `servers`;
-- Rename temporary table "new_servers" to "servers"
ALTER TABLE `new_servers` RENAME TO `servers`;
-- Create index "servers_name_key" to table: "servers"
CREATE UNIQUE INDEX `servers_name_key` ON `servers` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
