package controller

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/web"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/API.md from the route table")

const apiDoc = "../docs/API.md"

// TestAPIReferenceIsCurrent renders the JSON API's routes, as the running
// controller registers them, into docs/API.md: a route added, removed or
// given another policy without the reference following fails here.
// Regenerate with: go test ./controller -run TestAPIReferenceIsCurrent -update
func TestAPIReferenceIsCurrent(t *testing.T) {
	c, stop := start(t, testConfig(t, t.TempDir()), io.Discard, io.Discard)
	t.Cleanup(stop)
	got := renderAPIReference(c.webRoutes())
	if *updateDocs {
		if err := os.WriteFile(apiDoc, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("docs/API.md does not match the route table; run go test ./controller -run TestAPIReferenceIsCurrent -update and review the diff")
	}
}

func renderAPIReference(routes []web.Route) string {
	var api []web.Route
	for _, r := range routes {
		if r.Kind == web.KindAPI && strings.HasPrefix(r.Pattern, "/api/") {
			api = append(api, r)
		}
	}
	methodOrder := map[string]int{"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
	slices.SortFunc(api, func(a, b web.Route) int {
		if c := strings.Compare(a.Pattern, b.Pattern); c != 0 {
			return c
		}
		return methodOrder[a.Method] - methodOrder[b.Method]
	})
	var b strings.Builder
	b.WriteString(`# API reference

Every route of the JSON API, generated from the controller's route table (a test fails when this file and
the code disagree). Requests carry ` + "`Authorization: Bearer gh_…`" + ` (an API token, created under
**API tokens**, acting with its owner's role, or only reading — GET and HEAD — when read-only) or a browser
session. **Who** is the route's policy: *user* —
any signed-in user or token; *admin* — admins only; *public* — anyone. Bodies are JSON; errors have one
shape, ` + "`{\"error\":{\"code\":\"…\",\"message\":\"…\",\"fields\":{\"name\":\"…\"}}}`" + `, with a
message per invalid field. Secrets (passwords, private keys, bot tokens) are accepted but never returned.
Outside the API, a push monitor takes its pushes at ` + "`GET` or `POST /push/{token}`" + ` (public: the token in the
path is the credential; optional ` + "`?status=up|down&msg=TEXT&ping=MS`" + `), answered in plain text.
`)
	group := ""
	for _, r := range api {
		rest := strings.TrimPrefix(r.Pattern, "/api/v1/")
		g, _, _ := strings.Cut(rest, "/")
		if g != group {
			group = g
			fmt.Fprintf(&b, "\n## %s\n\n| Method | Path | Who |\n|---|---|---|\n", g)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", r.Method, r.Pattern, r.Policy)
	}
	return b.String()
}
