-- Create "acme_accounts" table
CREATE TABLE `acme_accounts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `directory_url` text NOT NULL, `email` text NOT NULL DEFAULT (''), `uri` text NOT NULL, `key_sealed` blob NOT NULL);
-- Create index "acme_accounts_directory_url_key" to table: "acme_accounts"
CREATE UNIQUE INDEX `acme_accounts_directory_url_key` ON `acme_accounts` (`directory_url`);
-- Create "cert_policies" table
CREATE TABLE `cert_policies` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `mode` text NOT NULL DEFAULT ('acme'), `challenge` text NOT NULL DEFAULT ('http-01'), `dns_provider_id` integer NOT NULL DEFAULT (0), `failures` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NULL, `last_attempt_at` datetime NULL, `last_error` text NOT NULL DEFAULT (''), `domain_id` integer NOT NULL, CONSTRAINT `cert_policies_domains_cert_policy` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE);
-- Create index "cert_policies_domain_id_key" to table: "cert_policies"
CREATE UNIQUE INDEX `cert_policies_domain_id_key` ON `cert_policies` (`domain_id`);
-- Create "certificates" table
CREATE TABLE `certificates` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `names` json NOT NULL, `not_before` datetime NOT NULL, `not_after` datetime NOT NULL, `issuer` text NOT NULL DEFAULT (''), `serial` text NOT NULL DEFAULT (''), `fingerprint` text NOT NULL, `cert_pem` text NOT NULL, `chain_pem` text NOT NULL DEFAULT (''), `key_sealed` blob NOT NULL, `source` text NOT NULL, `challenge` text NOT NULL DEFAULT (''), `directory_url` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('active'), `domain_id` integer NOT NULL, CONSTRAINT `certificates_domains_certificates` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE);
-- Create index "certificate_domain_id_status" to table: "certificates"
CREATE INDEX `certificate_domain_id_status` ON `certificates` (`domain_id`, `status`);
-- Create index "certificate_status_not_after" to table: "certificates"
CREATE INDEX `certificate_status_not_after` ON `certificates` (`status`, `not_after`);
-- Create "dns_checks" table
CREATE TABLE `dns_checks` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `name` text NOT NULL, `kind` text NOT NULL, `status` text NOT NULL, `message` text NOT NULL, `addresses` json NULL, `checked_at` datetime NOT NULL, `domain_id` integer NOT NULL, CONSTRAINT `dns_checks_domains_dns_checks` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE);
-- Create index "dnscheck_domain_id_checked_at" to table: "dns_checks"
CREATE INDEX `dnscheck_domain_id_checked_at` ON `dns_checks` (`domain_id`, `checked_at`);
-- Create "dns_providers" table
CREATE TABLE `dns_providers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `settings` json NULL, `secret_sealed` blob NOT NULL);
-- Create index "dns_providers_name_key" to table: "dns_providers"
CREATE UNIQUE INDEX `dns_providers_name_key` ON `dns_providers` (`name`);
-- Create "served_certificates" table
CREATE TABLE `served_certificates` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `address` text NOT NULL, `fingerprint` text NOT NULL DEFAULT (''), `serial` text NOT NULL DEFAULT (''), `issuer` text NOT NULL DEFAULT (''), `not_after` datetime NULL, `matches` bool NOT NULL DEFAULT (false), `message` text NOT NULL DEFAULT (''), `observed_at` datetime NOT NULL, `domain_id` integer NOT NULL, `server_id` integer NOT NULL, CONSTRAINT `served_certificates_domains_served_certificates` FOREIGN KEY (`domain_id`) REFERENCES `domains` (`id`) ON DELETE CASCADE, CONSTRAINT `served_certificates_servers_served_certificates` FOREIGN KEY (`server_id`) REFERENCES `servers` (`id`) ON DELETE CASCADE);
-- Create index "servedcertificate_domain_id_server_id_observed_at" to table: "served_certificates"
CREATE INDEX `servedcertificate_domain_id_server_id_observed_at` ON `served_certificates` (`domain_id`, `server_id`, `observed_at`);
