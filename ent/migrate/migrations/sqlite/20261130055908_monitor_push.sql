-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_monitors" table
CREATE TABLE `new_monitors` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `target` text NOT NULL, `timeout_ms` integer NOT NULL DEFAULT (10000), `interval_s` integer NOT NULL DEFAULT (60), `retries` integer NOT NULL DEFAULT (0), `expect_status` text NOT NULL DEFAULT (''), `expect_body` text NOT NULL DEFAULT (''), `ignore_tls_errors` bool NOT NULL DEFAULT (false), `enabled` bool NOT NULL DEFAULT (true), `status_page` bool NOT NULL DEFAULT (false), `checked_at` datetime NULL, `ok` bool NOT NULL DEFAULT (false), `status` integer NOT NULL DEFAULT (0), `latency_ms` integer NOT NULL DEFAULT (0), `message` text NOT NULL DEFAULT (''), `failing_since` datetime NULL, `failed_checks` integer NOT NULL DEFAULT (0), `cert_not_after` datetime NULL, `push_token_hash` text NULL, `last_push_at` datetime NULL, `push_due_at` datetime NULL, `seq` integer NOT NULL DEFAULT (0));
-- Copy rows from old table "monitors" to new temporary table "new_monitors"
INSERT INTO `new_monitors` (`id`, `created_at`, `updated_at`, `name`, `kind`, `target`, `timeout_ms`, `interval_s`, `retries`, `expect_status`, `expect_body`, `ignore_tls_errors`, `enabled`, `status_page`, `checked_at`, `ok`, `status`, `latency_ms`, `message`, `failing_since`, `failed_checks`, `cert_not_after`) SELECT `id`, `created_at`, `updated_at`, `name`, `kind`, `target`, `timeout_ms`, `interval_s`, `retries`, `expect_status`, `expect_body`, `ignore_tls_errors`, `enabled`, `status_page`, `checked_at`, `ok`, `status`, `latency_ms`, `message`, `failing_since`, `failed_checks`, `cert_not_after` FROM `monitors`;
-- Drop "monitors" table after copying rows
DROP TABLE `monitors`;
-- Rename temporary table "new_monitors" to "monitors"
ALTER TABLE `new_monitors` RENAME TO `monitors`;
-- Create index "monitors_name_key" to table: "monitors"
CREATE UNIQUE INDEX `monitors_name_key` ON `monitors` (`name`);
-- Create index "monitors_push_token_hash_key" to table: "monitors"
CREATE UNIQUE INDEX `monitors_push_token_hash_key` ON `monitors` (`push_token_hash`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
