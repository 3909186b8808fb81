-- Create "trusted_devices" table
CREATE TABLE `trusted_devices` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `token_hash` blob NOT NULL, `created_at` datetime NOT NULL, `expires_at` datetime NOT NULL, `last_used_at` datetime NOT NULL, `user_agent` text NOT NULL DEFAULT (''), `ip` text NOT NULL DEFAULT (''), `user_id` integer NOT NULL, CONSTRAINT `trusted_devices_users_trusted_devices` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE);
-- Create index "trusted_devices_token_hash_key" to table: "trusted_devices"
CREATE UNIQUE INDEX `trusted_devices_token_hash_key` ON `trusted_devices` (`token_hash`);
-- Create index "trusteddevice_user_id" to table: "trusted_devices"
CREATE INDEX `trusteddevice_user_id` ON `trusted_devices` (`user_id`);
-- Create index "trusteddevice_expires_at" to table: "trusted_devices"
CREATE INDEX `trusteddevice_expires_at` ON `trusted_devices` (`expires_at`);
