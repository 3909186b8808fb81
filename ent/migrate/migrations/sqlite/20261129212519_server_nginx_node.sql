-- Add column "nginx_node" to table: "servers"
ALTER TABLE `servers` ADD COLUMN `nginx_node` json NULL;
