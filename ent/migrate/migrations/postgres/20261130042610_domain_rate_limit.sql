-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "rate_limit" bigint NOT NULL DEFAULT 0, ADD COLUMN "rate_unit" character varying NOT NULL DEFAULT 's', ADD COLUMN "rate_burst" bigint NOT NULL DEFAULT 0;
