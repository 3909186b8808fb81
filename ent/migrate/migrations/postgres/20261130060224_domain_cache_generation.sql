-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "cache_generation" bigint NOT NULL DEFAULT 0;
