-- Create "api_tokens" table
CREATE TABLE `api_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `token_hash` blob NOT NULL, `prefix` text NOT NULL, `last_used_at` datetime NULL, `expires_at` datetime NULL, `revoked_at` datetime NULL, `user_api_tokens` integer NOT NULL, CONSTRAINT `api_tokens_users_api_tokens` FOREIGN KEY (`user_api_tokens`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "api_tokens_token_hash_key" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_token_hash_key` ON `api_tokens` (`token_hash`);
-- Create "audit_events" table
CREATE TABLE `audit_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `at` datetime NOT NULL, `actor_id` integer NULL, `actor` text NOT NULL, `action` text NOT NULL, `target` text NOT NULL DEFAULT (''), `detail` text NOT NULL DEFAULT (''), `remote_addr` text NOT NULL DEFAULT (''));
-- Create index "auditevent_at" to table: "audit_events"
CREATE INDEX `auditevent_at` ON `audit_events` (`at`);
-- Create "sessions" table
CREATE TABLE `sessions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `token` text NOT NULL, `data` blob NOT NULL, `expiry` datetime NOT NULL);
-- Create index "sessions_token_key" to table: "sessions"
CREATE UNIQUE INDEX `sessions_token_key` ON `sessions` (`token`);
-- Create index "session_expiry" to table: "sessions"
CREATE INDEX `session_expiry` ON `sessions` (`expiry`);
-- Create "settings" table
CREATE TABLE `settings` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `key` text NOT NULL, `value` blob NOT NULL, `secret` bool NOT NULL DEFAULT (false));
-- Create index "settings_key_key" to table: "settings"
CREATE UNIQUE INDEX `settings_key_key` ON `settings` (`key`);
-- Create "tasks" table
CREATE TABLE `tasks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `kind` text NOT NULL, `subject` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('pending'), `started_at` datetime NULL, `finished_at` datetime NULL, `log` text NOT NULL DEFAULT (''), `error` text NOT NULL DEFAULT (''));
-- Create index "task_kind_created_at" to table: "tasks"
CREATE INDEX `task_kind_created_at` ON `tasks` (`kind`, `created_at`);
-- Create "users" table
CREATE TABLE `users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `username` text NOT NULL, `password_hash` text NOT NULL, `role` text NOT NULL DEFAULT ('user'), `disabled` bool NOT NULL DEFAULT (false), `session_epoch` integer NOT NULL DEFAULT (0), `last_login_at` datetime NULL);
-- Create index "users_username_key" to table: "users"
CREATE UNIQUE INDEX `users_username_key` ON `users` (`username`);
