-- Modify "domains" table
ALTER TABLE "domains" ADD COLUMN "redirect_aliases" boolean NOT NULL DEFAULT false;
