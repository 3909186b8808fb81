-- Modify "servers" table
ALTER TABLE "servers" ADD COLUMN "real_ip_from" jsonb NULL, ADD COLUMN "real_ip_header" character varying NOT NULL DEFAULT '';
