// Command migrategen writes the next versioned migration for each SQL dialect
// from the difference between the ent schema and the migrations already in
// ent/migrate/migrations. PostgreSQL needs a scratch server, which it starts
// itself. With -check it only reports whether they agree.
//
//	go run ./controller/internal/store/migrategen [-check] NAME
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"entgo.io/ent/dialect"

	"github.com/gatehousehq/gatehouse/controller/internal/store/schemadiff"
)

func main() {
	check := flag.Bool("check", false, "fail if the schema needs a new migration instead of writing one")
	dir := flag.String("dir", "ent/migrate/migrations", "migrations root")
	flag.Parse()
	name := flag.Arg(0)
	if name == "" && !*check {
		fmt.Fprintln(os.Stderr, "usage: migrategen [-check] [-dir DIR] NAME")
		os.Exit(2)
	}
	ctx := context.Background()
	for d, sub := range map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"} {
		changed, err := schemadiff.Diff(ctx, d, *dir+"/"+sub, name, !*check)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", d, err)
			os.Exit(1)
		}
		switch {
		case changed && *check:
			fmt.Fprintf(os.Stderr, "%s: the ent schema and the committed migrations disagree; run make migration NAME=...\n", d)
			os.Exit(1)
		case changed:
			fmt.Printf("%s: wrote migration %q\n", d, name)
		default:
			fmt.Printf("%s: schema and migrations agree\n", d)
		}
	}
}
