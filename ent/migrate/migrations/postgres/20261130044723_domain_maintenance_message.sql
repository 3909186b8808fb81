-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "maintenance_message" character varying NOT NULL DEFAULT '';
