-- Modify "monitors" table
ALTER TABLE "monitors" ADD COLUMN "ignore_tls_errors" boolean NOT NULL DEFAULT false, ADD COLUMN "cert_not_after" timestamptz NULL;
