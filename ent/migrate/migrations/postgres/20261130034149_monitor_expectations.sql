-- Modify "monitors" table
ALTER TABLE "monitors" ADD COLUMN "interval_s" bigint NOT NULL DEFAULT 60, ADD COLUMN "expect_status" character varying NOT NULL DEFAULT '', ADD COLUMN "expect_body" character varying NOT NULL DEFAULT '';
