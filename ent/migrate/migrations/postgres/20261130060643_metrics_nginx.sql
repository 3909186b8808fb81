-- Modify "metric_rollups" table
ALTER TABLE "metric_rollups" ADD COLUMN "nginx_rps" double precision NOT NULL DEFAULT 0, ADD COLUMN "nginx_conns" double precision NOT NULL DEFAULT 0;
-- Modify "metric_samples" table
ALTER TABLE "metric_samples" ADD COLUMN "nginx_rps" double precision NOT NULL DEFAULT 0, ADD COLUMN "nginx_conns" double precision NOT NULL DEFAULT 0;
