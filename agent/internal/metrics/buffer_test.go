package metrics

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func ts(i int) time.Time { return fixedTime.Add(time.Duration(i) * time.Second) }

func stamps(entries []Entry) []int {
	out := make([]int, len(entries))
	for i, e := range entries {
		out[i] = int(e.TS.Sub(fixedTime) / time.Second)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBuffer(t *testing.T) {
	t.Parallel()
	// An op pushes size bytes stamped ts(push), or, with doAck, acks up to ts(ack).
	type op struct {
		push, size int
		ack        int
		doAck      bool
	}
	tests := []struct {
		name        string
		max         int
		ops         []op
		wantPending []int
		wantBytes   int
		wantDropped uint64
	}{
		{
			name:        "within bound keeps everything in order",
			max:         100,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 20}, {push: 3, size: 30}},
			wantPending: []int{1, 2, 3}, wantBytes: 60,
		},
		{
			name:        "full buffer drops the oldest first",
			max:         25,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 10}, {push: 3, size: 10}},
			wantPending: []int{2, 3}, wantBytes: 20, wantDropped: 1,
		},
		{
			name:        "a large entry drops several",
			max:         30,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 10}, {push: 3, size: 10}, {push: 4, size: 25}},
			wantPending: []int{4}, wantBytes: 25, wantDropped: 3,
		},
		{
			name:        "an entry larger than the bound is dropped alone",
			max:         30,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 31}},
			wantPending: []int{1}, wantBytes: 10, wantDropped: 1,
		},
		{
			name:        "empty data is ignored",
			max:         30,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 0}},
			wantPending: []int{1}, wantBytes: 10,
		},
		{
			name:        "ack drops entries at or before the stamp",
			max:         100,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 10}, {push: 3, size: 10}, {ack: 2, doAck: true}},
			wantPending: []int{3}, wantBytes: 10,
		},
		{
			name:        "ack before everything keeps everything",
			max:         100,
			ops:         []op{{push: 5, size: 10}, {push: 6, size: 10}, {ack: 4, doAck: true}},
			wantPending: []int{5, 6}, wantBytes: 20,
		},
		{
			name:        "ack with out of order stamps",
			max:         100,
			ops:         []op{{push: 5, size: 10}, {push: 2, size: 10}, {push: 7, size: 10}, {push: 3, size: 10}, {ack: 4, doAck: true}},
			wantPending: []int{5, 7}, wantBytes: 20,
		},
		{
			name:        "push after ack",
			max:         20,
			ops:         []op{{push: 1, size: 10}, {push: 2, size: 10}, {ack: 1, doAck: true}, {push: 3, size: 10}},
			wantPending: []int{2, 3}, wantBytes: 20,
		},
		{
			name:        "zero bound holds nothing",
			max:         0,
			ops:         []op{{push: 1, size: 1}},
			wantPending: []int{}, wantDropped: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := NewBuffer(tt.max)
			for _, o := range tt.ops {
				if o.doAck {
					q.Ack(ts(o.ack))
					continue
				}
				q.Push(ts(o.push), make([]byte, o.size))
			}
			got := q.Pending(0)
			if !equalInts(stamps(got), tt.wantPending) {
				t.Errorf("Pending = %v, want %v", stamps(got), tt.wantPending)
			}
			if q.Len() != len(tt.wantPending) || q.Bytes() != tt.wantBytes || q.Dropped() != tt.wantDropped {
				t.Errorf("Len %d Bytes %d Dropped %d; want %d %d %d", q.Len(), q.Bytes(), q.Dropped(), len(tt.wantPending), tt.wantBytes, tt.wantDropped)
			}
		})
	}
}

func TestBufferPendingAndOwnership(t *testing.T) {
	t.Parallel()
	q := NewBuffer(1000)
	data := []byte("sample-1")
	q.Push(ts(1), data)
	data[0] = 'X' // the caller reuses its buffer
	q.Push(ts(2), []byte("sample-2"))
	q.Push(ts(3), []byte("sample-3"))

	first := q.Pending(2)
	if !equalInts(stamps(first), []int{1, 2}) {
		t.Fatalf("Pending(2) = %v, want [1 2]", stamps(first))
	}
	if string(first[0].Data) != "sample-1" {
		t.Errorf("buffer kept the caller's slice: %q", first[0].Data)
	}
	first[0].TS = ts(99) // changing the returned entries must not touch the buffer
	if again := q.Pending(0); !equalInts(stamps(again), []int{1, 2, 3}) {
		t.Errorf("Pending after editing a returned entry = %v", stamps(again))
	}
	if q.Len() != 3 {
		t.Errorf("Pending removed entries: Len = %d", q.Len())
	}
}

func TestBufferStaysCompact(t *testing.T) {
	t.Parallel()
	q := NewBuffer(64)
	for i := range 100000 {
		q.Push(ts(i), make([]byte, 8))
		if i%3 == 0 {
			q.Ack(ts(i - 2))
		}
	}
	if q.Bytes() > 64 {
		t.Errorf("Bytes = %d beyond the bound", q.Bytes())
	}
	q.mu.Lock()
	backing := cap(q.entries)
	q.mu.Unlock()
	if backing > 4096 {
		t.Errorf("backing array grew to %d entries for a buffer of at most 8", backing)
	}
}

func TestBufferConcurrent(t *testing.T) {
	t.Parallel()
	const (
		producers = 4
		perProd   = 2000
		max       = 4096
	)
	q := NewBuffer(max)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProd {
				q.Push(ts(p*perProd+i), fmt.Appendf(nil, "p%d-%06d", p, i))
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 500 {
			pending := q.Pending(16)
			for _, e := range pending {
				if len(e.Data) == 0 {
					t.Error("empty entry delivered")
				}
			}
			if len(pending) > 0 {
				q.Ack(pending[len(pending)-1].TS)
			}
			_ = q.Bytes()
			_ = q.Dropped()
		}
	}()
	wg.Wait()
	<-done

	rest := q.Pending(0)
	total := 0
	for _, e := range rest {
		total += len(e.Data)
	}
	if total != q.Bytes() || len(rest) != q.Len() {
		t.Errorf("accounting: entries %d/%d, bytes %d/%d", len(rest), q.Len(), total, q.Bytes())
	}
	if q.Bytes() > max {
		t.Errorf("Bytes = %d beyond %d", q.Bytes(), max)
	}
	// Each entry is 9 bytes, so 8000 pushes cannot fit in 4096 bytes without drops.
	if q.Dropped() == 0 {
		t.Errorf("no drops recorded after %d pushes into %d bytes", producers*perProd, max)
	}
}

func TestBufferDropAfter(t *testing.T) {
	q := NewBuffer(1 << 20)
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range 6 {
		q.Push(base.Add(time.Duration(i)*time.Minute), []byte{byte(i), 1, 2})
	}
	if n := q.DropAfter(base.Add(2 * time.Minute)); n != 3 {
		t.Fatalf("DropAfter removed %d entries, want 3", n)
	}
	got := q.Pending(0)
	if len(got) != 3 || !got[2].TS.Equal(base.Add(2*time.Minute)) || q.Bytes() != 9 || q.Dropped() != 3 {
		t.Fatalf("after DropAfter: %d entries, last %v, %d bytes, %d dropped", len(got), got[len(got)-1].TS, q.Bytes(), q.Dropped())
	}
	// New samples follow the kept ones.
	q.Push(base.Add(90*time.Second), []byte{9})
	if got := q.Pending(0); len(got) != 4 || !got[3].TS.Equal(base.Add(90*time.Second)) {
		t.Fatalf("push after DropAfter: %+v", got)
	}
	if n := q.DropAfter(base.Add(time.Hour)); n != 0 {
		t.Fatalf("DropAfter past every entry removed %d", n)
	}
}
