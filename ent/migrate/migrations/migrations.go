// Package migrations embeds the versioned schema migrations, one directory per
// SQL dialect. They are generated from the ent schema by `make generate`.
package migrations

import "embed"

// FS holds sqlite/*.sql and postgres/*.sql with their atlas.sum files.
//
//go:embed sqlite/*.sql sqlite/atlas.sum postgres/*.sql postgres/atlas.sum
var FS embed.FS
