-- Modify "servers" table
ALTER TABLE "servers" ADD COLUMN "nginx_node" jsonb NULL;
