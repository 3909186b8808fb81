-- Modify "monitors" table
ALTER TABLE "monitors" ADD COLUMN "status_page" boolean NOT NULL DEFAULT false;
