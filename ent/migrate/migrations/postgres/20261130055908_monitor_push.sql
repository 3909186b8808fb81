-- Modify "monitors" table
ALTER TABLE "monitors" ADD COLUMN "push_token_hash" character varying NULL, ADD COLUMN "last_push_at" timestamptz NULL, ADD COLUMN "push_due_at" timestamptz NULL, ADD COLUMN "seq" bigint NOT NULL DEFAULT 0;
-- Create index "monitors_push_token_hash_key" to table: "monitors"
CREATE UNIQUE INDEX "monitors_push_token_hash_key" ON "monitors" ("push_token_hash");
