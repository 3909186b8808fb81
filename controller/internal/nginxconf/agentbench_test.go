package nginxconf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// agentBenchDir holds the agent's apply benchmark fixture: a release rendered
// here, so that the agent benchmarks apply domains shaped exactly as the
// controller renders them (the agent cannot import this package).
const agentBenchDir = "../../../agent/internal/nginx/testdata/rendered"

// TestAgentBenchmarkReleaseIsCurrent renders the shape of BenchmarkRender10kDomains at
// eight domains (every upstream, TLS and plain domains) into the agent's benchmark
// fixture, and fails when the fixture no longer matches the renderer (-update rewrites it).
func TestAgentBenchmarkReleaseIsCurrent(t *testing.T) {
	t.Parallel()
	r, err := Render(bigConfig(8))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.RemoveAll(agentBenchDir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range r.Files {
		path := filepath.Join(agentBenchDir, filepath.FromSlash(f.Path))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(f.Content, want) {
			t.Errorf("%s differs from the renderer's output (run go test -update):\n%s", path, lineDiff(string(want), string(f.Content)))
		}
	}
	entries, err := os.ReadDir(filepath.Join(agentBenchDir, "http"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(r.Files) {
		t.Errorf("%s holds %d files, the release %d (run go test -update)", agentBenchDir, len(entries), len(r.Files))
	}
}
