-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "status_page" boolean NOT NULL DEFAULT false;
