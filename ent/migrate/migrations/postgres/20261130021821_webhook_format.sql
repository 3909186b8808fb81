-- Modify "notification_channels" table
ALTER TABLE "notification_channels" ADD COLUMN "webhook_format" character varying NOT NULL DEFAULT '';
