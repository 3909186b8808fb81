-- Modify "servers" table
ALTER TABLE "servers" ADD COLUMN "unknown_names" character varying NOT NULL DEFAULT '';
