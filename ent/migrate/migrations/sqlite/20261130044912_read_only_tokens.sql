-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_api_tokens" table
CREATE TABLE `new_api_tokens` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `token_hash` blob NOT NULL, `prefix` text NOT NULL, `last_used_at` datetime NULL, `expires_at` datetime NULL, `revoked_at` datetime NULL, `read_only` bool NOT NULL DEFAULT (false), `user_api_tokens` integer NOT NULL, CONSTRAINT `api_tokens_users_api_tokens` FOREIGN KEY (`user_api_tokens`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Copy rows from old table "api_tokens" to new temporary table "new_api_tokens"
INSERT INTO `new_api_tokens` (`id`, `created_at`, `updated_at`, `name`, `token_hash`, `prefix`, `last_used_at`, `expires_at`, `revoked_at`, `user_api_tokens`) SELECT `id`, `created_at`, `updated_at`, `name`, `token_hash`, `prefix`, `last_used_at`, `expires_at`, `revoked_at`, `user_api_tokens` FROM `api_tokens`;
-- Drop "api_tokens" table after copying rows
DROP TABLE `api_tokens`;
-- Rename temporary table "new_api_tokens" to "api_tokens"
ALTER TABLE `new_api_tokens` RENAME TO `api_tokens`;
-- Create index "api_tokens_token_hash_key" to table: "api_tokens"
CREATE UNIQUE INDEX `api_tokens_token_hash_key` ON `api_tokens` (`token_hash`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
