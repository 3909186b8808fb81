-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_users" table
CREATE TABLE `new_users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `username` text NOT NULL, `password_hash` text NOT NULL, `role` text NOT NULL DEFAULT ('user'), `disabled` bool NOT NULL DEFAULT (false), `session_epoch` integer NOT NULL DEFAULT (0), `last_login_at` datetime NULL, `totp_secret` blob NULL, `totp_enabled` bool NOT NULL DEFAULT (false), `totp_last_step` integer NOT NULL DEFAULT (0));
-- Copy rows from old table "users" to new temporary table "new_users"
INSERT INTO `new_users` (`id`, `created_at`, `updated_at`, `username`, `password_hash`, `role`, `disabled`, `session_epoch`, `last_login_at`) SELECT `id`, `created_at`, `updated_at`, `username`, `password_hash`, `role`, `disabled`, `session_epoch`, `last_login_at` FROM `users`;
-- Drop "users" table after copying rows
DROP TABLE `users`;
-- Rename temporary table "new_users" to "users"
ALTER TABLE `new_users` RENAME TO `users`;
-- Create index "users_username_key" to table: "users"
CREATE UNIQUE INDEX `users_username_key` ON `users` (`username`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
