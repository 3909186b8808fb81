package metrics

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// scriptedSource is a Source whose failures the test switches on and off.
type scriptedSource struct {
	name string
	mu   sync.Mutex
	err  error
	hits int
}

func (s *scriptedSource) Name() string { return s.name }

func (s *scriptedSource) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *scriptedSource) Sample(ctx context.Context) (Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if s.err != nil {
		return Sample{}, s.err
	}
	if _, ok := ctx.Deadline(); !ok && s.name == "primary" {
		return Sample{}, errors.New("primary called without a deadline")
	}
	return Sample{Source: s.name}, nil
}

func TestFallbackSwitchesAndLogsOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	primary := &scriptedSource{name: "primary"}
	secondary := &scriptedSource{name: "secondary"}
	f := NewFallback(primary, secondary, log)
	ctx := context.Background()

	steps := []struct {
		primaryErr error
		secondErr  error
		want       string // source of the sample, "" for an error
	}{
		{want: "primary"},
		{primaryErr: errors.New("connection refused"), want: "secondary"},
		{primaryErr: errors.New("connection refused"), want: "secondary"},
		{primaryErr: errors.New("connection refused"), want: "secondary"},
		{want: "primary"},
		{want: "primary"},
		{primaryErr: errors.New("timeout"), secondErr: errors.New("no /proc"), want: ""},
		{primaryErr: errors.New("timeout"), want: "secondary"},
	}
	for i, st := range steps {
		primary.fail(st.primaryErr)
		secondary.fail(st.secondErr)
		s, err := f.Sample(ctx)
		if st.want == "" {
			if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), "no /proc") {
				t.Errorf("step %d: err = %v, want both causes", i, err)
			}
			continue
		}
		if err != nil || s.Source != st.want || f.Current() != st.want {
			t.Errorf("step %d: sample from %q (current %q), err %v; want %q", i, s.Source, f.Current(), err, st.want)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "using fallback"); n != 2 {
		t.Errorf("logged %d switches to the fallback, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "recovered"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, out)
	}
	if f.Name() != "fallback" {
		t.Errorf("Name() = %q", f.Name())
	}
}

func TestFallbackHonoursCancellation(t *testing.T) {
	t.Parallel()
	primary := &scriptedSource{name: "primary", err: errors.New("down")}
	secondary := &scriptedSource{name: "secondary"}
	f := NewFallback(primary, secondary, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Sample(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if secondary.hits != 0 {
		t.Errorf("secondary sampled %d times after cancellation", secondary.hits)
	}
}
