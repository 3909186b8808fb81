-- Modify "monitors" table
ALTER TABLE "monitors" ADD COLUMN "retries" bigint NOT NULL DEFAULT 0, ADD COLUMN "failed_checks" bigint NOT NULL DEFAULT 0;
