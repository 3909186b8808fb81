// Package ent holds the generated data access code for Gatehouse. The schema lives in ./schema.
package ent

//go:generate go tool ent generate --feature sql/versioned-migration,sql/upsert,sql/execquery,sql/modifier ./schema
