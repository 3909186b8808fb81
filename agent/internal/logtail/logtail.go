// Package logtail reads the end of a log file: whole lines, bounded in size,
// without blocking on anything that is not a regular file.
package logtail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Limits on how much is read.
const (
	DefaultBytes = 64 << 10
	MaxBytes     = 256 << 10
)

// Tail is the end of a file.
type Tail struct {
	Data      []byte // whole lines, oldest first
	Truncated bool   // older lines exist before Data
	Size      int64
	Modified  time.Time
}

// ErrNotRegular is a path that is not a regular file (a directory, FIFO or device).
var ErrNotRegular = errors.New("not a regular file")

// Read returns up to max bytes (DefaultBytes when max is 0, at most
// MaxBytes) from the end of the file at path, starting at a line boundary.
// A line longer than max is cut to its last max bytes.
func Read(path string, max int) (Tail, error) {
	switch {
	case max <= 0:
		max = DefaultBytes
	case max > MaxBytes:
		max = MaxBytes
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Tail{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Tail{}, err
	}
	if !st.Mode().IsRegular() {
		return Tail{}, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	t := Tail{Size: st.Size(), Modified: st.ModTime()}
	start := max64(0, t.Size-int64(max))
	// One byte more before the window says whether it starts a line.
	from := max64(0, start-1)
	buf := make([]byte, t.Size-from)
	n, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return Tail{}, err
	}
	buf = buf[:n]
	if start > 0 {
		t.Truncated = true
		switch i := bytes.IndexByte(buf, '\n'); {
		case i == 0:
			buf = buf[1:] // the window starts a line
		case i > 0 && i+1 < len(buf):
			buf = buf[i+1:] // drop the partial first line
		default:
			buf = buf[1:] // one line longer than the window: its end
		}
	}
	t.Data = buf
	return t, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
