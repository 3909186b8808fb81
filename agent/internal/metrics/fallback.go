package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Default time limits for the primary source in a Fallback.
const (
	DefaultPrimaryTimeout = 5 * time.Second
	DefaultProbeTimeout   = time.Second
)

// Fallback samples from a primary source and switches to a secondary one
// while the primary fails. Every call tries the primary first (with a short
// timeout while it is known to be down), so it switches back as soon as the
// primary recovers. Each switch is logged once. Safe for concurrent use.
type Fallback struct {
	primary, secondary Source
	log                hclog.Logger
	primaryTimeout     time.Duration
	probeTimeout       time.Duration

	mu      sync.Mutex
	current string
}

// NewFallback returns a Fallback that starts on primary.
func NewFallback(primary, secondary Source, log hclog.Logger) *Fallback {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Fallback{
		primary:        primary,
		secondary:      secondary,
		log:            log,
		primaryTimeout: DefaultPrimaryTimeout,
		probeTimeout:   DefaultProbeTimeout,
		current:        primary.Name(),
	}
}

// SetTimeouts changes how long the primary may take while it is in use
// (active) and while it is being probed after a failure (probe). Values <= 0
// keep the current setting.
func (f *Fallback) SetTimeouts(active, probe time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if active > 0 {
		f.primaryTimeout = active
	}
	if probe > 0 {
		f.probeTimeout = probe
	}
}

// Name returns "fallback"; Current tells which source is in use.
func (f *Fallback) Name() string { return "fallback" }

// Current returns the name of the source the last sample came from.
func (f *Fallback) Current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// Sample returns a sample from the primary, or from the secondary when the
// primary fails. It fails only when both do.
func (f *Fallback) Sample(ctx context.Context) (Sample, error) {
	f.mu.Lock()
	onPrimary := f.current == f.primary.Name()
	timeout := f.primaryTimeout
	if !onPrimary {
		timeout = f.probeTimeout
	}
	f.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, timeout)
	s, perr := f.primary.Sample(pctx)
	cancel()
	if perr == nil {
		f.switchTo(f.primary.Name(), nil)
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	s, serr := f.secondary.Sample(ctx)
	if serr != nil {
		return Sample{}, fmt.Errorf("no metrics source works: %w", errors.Join(perr, serr))
	}
	f.switchTo(f.secondary.Name(), perr)
	return s, nil
}

func (f *Fallback) switchTo(name string, cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == name {
		return
	}
	if cause != nil {
		f.log.Warn("metrics source failed; using fallback", "from", f.current, "to", name, "error", cause)
	} else {
		f.log.Info("metrics source recovered", "from", f.current, "to", name)
	}
	f.current = name
}
