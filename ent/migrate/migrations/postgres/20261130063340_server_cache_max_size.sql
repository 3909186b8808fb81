-- Modify "servers" table
ALTER TABLE "servers" ADD COLUMN "cache_max_size" character varying NOT NULL DEFAULT '';
