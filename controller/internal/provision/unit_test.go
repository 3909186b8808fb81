package provision

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the rendered text (go test -update rewrites it):\n%s", p, got)
	}
}

func TestAgentUnitGolden(t *testing.T) {
	golden(t, "gatehouse-agent.service.golden", DefaultLayout().AgentUnit())
}

func TestGlancesUnitGolden(t *testing.T) {
	golden(t, "gatehouse-glances.service.golden", GlancesUnit("/usr/bin/glances", DefaultGlancesPort))
}
