-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "compress" boolean NOT NULL DEFAULT false;
-- Modify "routes" table
ALTER TABLE "routes" ADD COLUMN "cache_ttl" bigint NOT NULL DEFAULT 0;
