-- Modify "users" table
ALTER TABLE "users" ADD COLUMN "totp_secret" bytea NULL, ADD COLUMN "totp_enabled" boolean NOT NULL DEFAULT false, ADD COLUMN "totp_last_step" bigint NOT NULL DEFAULT 0;
