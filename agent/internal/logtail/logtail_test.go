package logtail

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines := "one\ntwo\nthree\nfour\n"
	long := strings.Repeat("x", 100) + "\n"
	for _, tc := range []struct {
		name, content string
		max           int
		want          string
		truncated     bool
	}{
		{"whole file", lines, 1000, lines, false},
		{"empty", "", 10, "", false},
		{"cut at a line boundary", lines, 12, "three\nfour\n", true},
		{"exact line start", lines, 11, "three\nfour\n", true},
		{"unfinished last line kept", "a\nb\nc", 3, "b\nc", true},
		{"a line longer than the limit", long, 10, strings.Repeat("x", 9) + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(write(strings.ReplaceAll(tc.name, " ", "-"), tc.content), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Data) != tc.want || got.Truncated != tc.truncated || got.Size != int64(len(tc.content)) || got.Modified.IsZero() {
				t.Fatalf("Read = %q truncated %v size %d, want %q truncated %v", got.Data, got.Truncated, got.Size, tc.want, tc.truncated)
			}
		})
	}

	big := write("big", strings.Repeat("line of a log\n", MaxBytes/7))
	if got, _ := Read(big, 0); len(got.Data) > DefaultBytes || !got.Truncated {
		t.Fatalf("default read %d bytes, want at most %d", len(got.Data), DefaultBytes)
	}
	if got, _ := Read(big, 1<<30); len(got.Data) > MaxBytes {
		t.Fatalf("read %d bytes, want at most %d", len(got.Data), MaxBytes)
	}

	// Neither a directory nor a FIFO (which would block a plain open) is read.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, fifo} {
		if _, err := Read(p, 10); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Read(%s) = %v, want ErrNotRegular", p, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
