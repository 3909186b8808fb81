package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestRemoveOrphanBinDirs(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	// A pid that is certainly gone: a child that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	dirs := map[string]string{
		binDirPrefix + "dead":    strconv.Itoa(dead),
		binDirPrefix + "alive":   strconv.Itoa(os.Getpid()),
		binDirPrefix + "noowner": "",
		binDirPrefix + "garbage": "not a pid",
		"other-dead":             strconv.Itoa(dead),
	}
	for name, owner := range dirs {
		if err := os.Mkdir(filepath.Join(tmp, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(tmp, name, "owner"), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	removeOrphanBinDirs(tmp)
	for name := range dirs {
		_, err := os.Stat(filepath.Join(tmp, name))
		if gone := os.IsNotExist(err); gone != (name == binDirPrefix+"dead") {
			t.Errorf("%s: removed=%v, want removed only for the dead owner", name, gone)
		}
	}
}
