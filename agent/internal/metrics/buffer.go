package metrics

import (
	"sync"
	"time"
)

// Entry is one encoded sample waiting to be delivered.
type Entry struct {
	TS   time.Time
	Data []byte
}

// Buffer is a bounded FIFO of encoded samples kept until the receiver
// acknowledges them. When a push would exceed the byte bound the oldest
// entries are dropped and counted. Safe for concurrent use.
type Buffer struct {
	mu      sync.Mutex
	max     int
	entries []Entry // entries[head:] are live, oldest first
	head    int
	bytes   int
	dropped uint64
}

// NewBuffer returns a Buffer holding at most maxBytes bytes of sample data.
func NewBuffer(maxBytes int) *Buffer {
	if maxBytes < 0 {
		maxBytes = 0
	}
	return &Buffer{max: maxBytes}
}

// Push appends a copy of b stamped with ts, dropping the oldest entries as
// needed to stay within the bound. Empty data is ignored; data larger than
// the whole bound is dropped (and counted) at once.
func (q *Buffer) Push(ts time.Time, b []byte) {
	if len(b) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(b) > q.max {
		q.dropped++
		return
	}
	for q.bytes+len(b) > q.max {
		q.bytes -= len(q.entries[q.head].Data)
		q.entries[q.head] = Entry{}
		q.head++
		q.dropped++
	}
	q.compact()
	data := make([]byte, len(b))
	copy(data, b)
	q.entries = append(q.entries, Entry{TS: ts, Data: data})
	q.bytes += len(data)
}

// compact moves live entries to the front once the dead prefix dominates,
// so the backing array does not grow without bound.
func (q *Buffer) compact() {
	if q.head == 0 || q.head < len(q.entries)/2 && q.head < 1024 {
		return
	}
	n := copy(q.entries, q.entries[q.head:])
	clear(q.entries[n:])
	q.entries = q.entries[:n]
	q.head = 0
}

// Pending returns up to max of the oldest entries (all of them when max <= 0)
// without removing them. The Data slices are shared; do not modify them.
func (q *Buffer) Pending(max int) []Entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	live := q.entries[q.head:]
	if max > 0 && len(live) > max {
		live = live[:max]
	}
	out := make([]Entry, len(live))
	copy(out, live)
	return out
}

// Ack removes every entry stamped at or before upTo.
func (q *Buffer) Ack(upTo time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	live := q.entries[q.head:]
	keep := live[:0]
	for _, e := range live {
		if e.TS.After(upTo) {
			keep = append(keep, e)
			continue
		}
		q.bytes -= len(e.Data)
	}
	clear(live[len(keep):])
	q.entries = q.entries[:q.head+len(keep)]
	q.compact()
}

// DropAfter removes every entry stamped after t and returns how many it
// removed (they count as dropped): samples stamped by a clock that has
// since been set back.
func (q *Buffer) DropAfter(t time.Time) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	live := q.entries[q.head:]
	keep := live[:0]
	for _, e := range live {
		if !e.TS.After(t) {
			keep = append(keep, e)
			continue
		}
		q.bytes -= len(e.Data)
	}
	n := len(live) - len(keep)
	clear(live[len(keep):])
	q.entries = q.entries[:q.head+len(keep)]
	q.dropped += uint64(n)
	q.compact()
	return n
}

// Len returns the number of entries held.
func (q *Buffer) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries) - q.head
}

// Bytes returns the sample bytes held.
func (q *Buffer) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Dropped returns how many entries were dropped because the buffer was full.
func (q *Buffer) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
