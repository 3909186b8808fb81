package main

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentLinksNoControllerCode keeps the agent binary free of the
// controller's database and code: the agent must stay small and stateless.
func TestAgentLinksNoControllerCode(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/gatehousehq/gatehouse/agent/cmd/gatehouse-agent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
	}
	seenAgent := false
	for _, p := range deps {
		if p == "github.com/gatehousehq/gatehouse/agent" {
			seenAgent = true
		}
		for _, banned := range []string{"entgo.io", "modernc.org/sqlite", "github.com/lib/pq", "/controller/", "github.com/gatehousehq/gatehouse/controller"} {
			if strings.Contains(p, banned) {
				t.Errorf("agent links %s (matches %q)", p, banned)
			}
		}
	}
	if !seenAgent {
		t.Fatal("dependency list does not include the agent package")
	}
}

func TestRunRefusesBadInvocations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte("controler = x:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown config key", []string{"-config", conf}, `unknown key "controler"`},
		{"missing explicit config", []string{"-config", filepath.Join(dir, "nope")}, "no such file"},
		{"stray argument", []string{"-config", filepath.Join(dir, "nope"), "extra"}, "unexpected argument"},
		{"token not a flag", []string{"-token", "x"}, "flag provided but not defined"},
		{"bad log level", []string{"-config", empty, "-log-level", "loud"}, `log-level "loud"`},
		{"invalid settings", []string{"-config", empty, "-controller", "nohost", "-ca_pin", "x"}, "controller:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
	if err := run([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}
