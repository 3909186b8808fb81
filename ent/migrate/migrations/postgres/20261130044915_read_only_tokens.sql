-- Modify "api_tokens" table
ALTER TABLE "api_tokens" ADD COLUMN "read_only" boolean NOT NULL DEFAULT false;
