// Package scheduler runs the controller's periodic jobs — alert evaluation,
// metrics rollups and retention, session cleanup, and later DNS checks and
// certificate renewals — and records every run as a Task with its start, end,
// outcome and log.
//
// A job never runs twice at once: a tick that arrives while the previous run
// is still going is skipped, and "Run now" is refused while it runs. The
// schedule survives restarts: a job's next run is computed from the start of
// its last recorded run, so a daily job does not run again just because the
// controller restarted. Runs that were still open when the controller stopped
// are closed as interrupted on the next start.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Outcome is how a run ended.
type Outcome string

// Outcomes of a run.
const (
	OutcomeRunning   Outcome = "running"
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
)

// Run is one recorded run of a job.
type Run struct {
	ID         int
	Job        string
	StartedAt  time.Time
	FinishedAt *time.Time // nil while running
	Outcome    Outcome
	Log        string
	Error      string
}

// Duration is how long the run took (so far).
func (r Run) Duration(now time.Time) time.Duration {
	if r.FinishedAt != nil {
		return r.FinishedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}

// Store records runs. The ent-backed implementation is EntStore.
type Store interface {
	// Begin records the start of a run and returns its id.
	Begin(ctx context.Context, job string, at time.Time) (int, error)
	// Finish records the end of a run.
	Finish(ctx context.Context, id int, at time.Time, outcome Outcome, log, errText string) error
	// Last returns the newest run of each named job that has one.
	Last(ctx context.Context, jobs []string) (map[string]Run, error)
	// History returns the newest runs of a job, newest first.
	History(ctx context.Context, job string, limit int) ([]Run, error)
	// Prune keeps the newest keep runs of a job and deletes the rest.
	Prune(ctx context.Context, job string, keep int) error
	// Interrupt closes runs left open by a previous process as failed.
	Interrupt(ctx context.Context, at time.Time, reason string) (int, error)
}

// Job is a periodic piece of work.
type Job struct {
	Name  string        // stable identifier, e.g. "alerts.evaluate"
	Title string        // what people read, e.g. "Evaluate alert rules"
	Every time.Duration // period between the starts of two runs
	// Timeout bounds one run (default: Every, at least 30s).
	Timeout time.Duration
	// Quiet jobs record only failed runs and runs that logged something,
	// for jobs that run every few seconds; their last run is still shown.
	Quiet bool
	// Run does the work. Lines written to log end up in the run's Task.
	Run func(ctx context.Context, log *Log) error
}

var jobNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// Validate checks a job definition.
func (j Job) Validate() error {
	var errs []error
	if !jobNameRE.MatchString(j.Name) {
		errs = append(errs, fmt.Errorf("name: %q must be 1-64 lowercase letters, digits and . _ - starting with a letter", j.Name))
	}
	if strings.TrimSpace(j.Title) == "" {
		errs = append(errs, errors.New("title: required"))
	}
	if j.Every < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("every: %s is too short (at least 100ms)", j.Every))
	}
	if j.Run == nil {
		errs = append(errs, errors.New("run: required"))
	}
	return errors.Join(errs...)
}

// MaxLog bounds the log kept for one run.
const MaxLog = 64 << 10

// Log collects a run's log lines. It is safe for concurrent use.
type Log struct {
	mu        sync.Mutex
	b         strings.Builder
	truncated bool
	now       func() time.Time
}

// Printf appends one timestamped line.
func (l *Log) Printf(format string, args ...any) {
	line := l.now().UTC().Format("15:04:05.000") + " " + strings.TrimRight(fmt.Sprintf(format, args...), "\n") + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return
	}
	if l.b.Len()+len(line) > MaxLog {
		l.b.WriteString("… log truncated\n")
		l.truncated = true
		return
	}
	l.b.WriteString(line)
}

// String returns the log so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Options tune a Scheduler.
type Options struct {
	// Keep is how many runs of each job are kept (default 100).
	Keep int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnRun is told when a run starts and ends, for live pages.
	OnRun func(Status)
}

// Status is a job as the jobs page shows it.
type Status struct {
	Name    string
	Title   string
	Every   time.Duration
	Running bool
	Last    *Run      // newest recorded run, nil before the first
	Next    time.Time // when the next run is due
}

type jobState struct {
	Job
	mu      sync.Mutex
	running bool
	next    time.Time
	last    *Run // newest run, recorded or not
	kick    chan struct{}
}

// Scheduler runs jobs on their periods.
type Scheduler struct {
	store Store
	log   hclog.Logger
	opts  Options

	mu      sync.Mutex
	jobs    map[string]*jobState
	started bool
	wg      sync.WaitGroup
}

// Errors from Trigger.
var (
	ErrUnknownJob = errors.New("no such job")
	ErrRunning    = errors.New("the job is running already")
)

// New returns a scheduler that records runs in store.
func New(store Store, log hclog.Logger, opts Options) *Scheduler {
	if opts.Keep <= 0 {
		opts.Keep = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Scheduler{store: store, log: log.Named("scheduler"), opts: opts, jobs: map[string]*jobState{}}
}

// Add registers a job. Jobs must be added before Run.
func (s *Scheduler) Add(j Job) error {
	if err := j.Validate(); err != nil {
		return fmt.Errorf("job %q: %w", j.Name, err)
	}
	if j.Timeout <= 0 {
		j.Timeout = max(j.Every, 30*time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("job %q: the scheduler is running already", j.Name)
	}
	if _, dup := s.jobs[j.Name]; dup {
		return fmt.Errorf("job %q: added twice", j.Name)
	}
	s.jobs[j.Name] = &jobState{Job: j, kick: make(chan struct{}, 1)}
	return nil
}

// Run closes runs interrupted by a previous process, then runs every job on
// its period until ctx ends, and waits for running jobs to return.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("scheduler: Run called twice")
	}
	s.started = true
	jobs := s.sortedLocked()
	s.mu.Unlock()

	now := s.opts.Now()
	if n, err := s.store.Interrupt(ctx, now, "interrupted: the controller stopped during the run"); err != nil {
		s.log.Error("closing interrupted runs", "error", err)
	} else if n > 0 {
		s.log.Warn("closed runs interrupted by a restart", "runs", n)
	}
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	last, err := s.store.Last(ctx, names)
	if err != nil {
		s.log.Error("reading the last runs; every job runs now", "error", err)
	}
	for _, j := range jobs {
		j.mu.Lock()
		j.next = now
		if r, ok := last[j.Name]; ok {
			r := r
			j.last = &r
			if due := r.StartedAt.Add(j.Every); due.After(now) {
				j.next = due
			}
		}
		j.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, j)
		}()
	}
	<-ctx.Done()
	s.wg.Wait()
	return nil
}

func (s *Scheduler) sortedLocked() []*jobState {
	out := make([]*jobState, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// loop runs one job on its period. Runs happen in this goroutine, so a job
// can never overlap itself; ticks missed while it ran are skipped.
func (s *Scheduler) loop(ctx context.Context, j *jobState) {
	for {
		j.mu.Lock()
		wait := j.next.Sub(s.opts.Now())
		j.mu.Unlock()
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-j.kick:
			t.Stop()
		}
		s.runOnce(ctx, j)
		j.mu.Lock()
		now := s.opts.Now()
		// The next start follows the last one by Every; ticks missed while
		// the run overran are skipped rather than caught up in a burst.
		next := j.last.StartedAt.Add(j.Every)
		for !next.After(now) {
			next = next.Add(j.Every)
		}
		j.next = next
		j.mu.Unlock()
	}
}

// Trigger asks for a run of the named job now ("Run now" in the UI).
func (s *Scheduler) Trigger(name string) error {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return ErrUnknownJob
	}
	j.mu.Lock()
	running := j.running
	j.mu.Unlock()
	if running {
		return ErrRunning
	}
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return nil
}

func (s *Scheduler) runOnce(ctx context.Context, j *jobState) {
	start := s.opts.Now()
	j.mu.Lock()
	j.running = true
	j.last = &Run{Job: j.Name, StartedAt: start, Outcome: OutcomeRunning}
	j.mu.Unlock()
	s.notify(j)

	id := 0
	if !j.Quiet {
		var err error
		if id, err = s.store.Begin(ctx, j.Name, start); err != nil && ctx.Err() == nil {
			s.log.Error("recording a job start", "job", j.Name, "error", err)
		}
	}
	lg := &Log{now: s.opts.Now}
	rctx, cancel := context.WithTimeout(ctx, j.Timeout)
	err := safeRun(rctx, j.Run, lg)
	cancel()
	end := s.opts.Now()
	outcome, errText := OutcomeSucceeded, ""
	if err != nil {
		outcome, errText = OutcomeFailed, truncate(err.Error(), 2000)
		if ctx.Err() == nil {
			s.log.Warn("job failed", "job", j.Name, "error", errText)
		}
	}
	text := lg.String()
	// Recording uses its own context so a run cut short by shutdown is
	// still closed in the store.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if j.Quiet && (err != nil || text != "") {
		if id, err = s.store.Begin(sctx, j.Name, start); err != nil {
			s.log.Error("recording a job start", "job", j.Name, "error", err)
		}
	}
	if id > 0 {
		if err := s.store.Finish(sctx, id, end, outcome, text, errText); err != nil {
			s.log.Error("recording a job end", "job", j.Name, "error", err)
		}
		if err := s.store.Prune(sctx, j.Name, s.opts.Keep); err != nil {
			s.log.Error("pruning old runs", "job", j.Name, "error", err)
		}
	}
	j.mu.Lock()
	j.running = false
	j.last = &Run{ID: id, Job: j.Name, StartedAt: start, FinishedAt: &end, Outcome: outcome, Log: text, Error: errText}
	j.mu.Unlock()
	s.notify(j)
}

// safeRun turns a panic in a job into a failed run.
func safeRun(ctx context.Context, f func(context.Context, *Log) error, lg *Log) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return f(ctx, lg)
}

func (s *Scheduler) notify(j *jobState) {
	if s.opts.OnRun != nil {
		s.opts.OnRun(s.status(j))
	}
}

func (s *Scheduler) status(j *jobState) Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := Status{Name: j.Name, Title: j.Title, Every: j.Every, Running: j.running, Next: j.next}
	if j.last != nil {
		r := *j.last
		st.Last = &r
	}
	return st
}

// Jobs returns every job with its last and next run, sorted by name.
func (s *Scheduler) Jobs() []Status {
	s.mu.Lock()
	jobs := s.sortedLocked()
	s.mu.Unlock()
	out := make([]Status, len(jobs))
	for i, j := range jobs {
		out[i] = s.status(j)
	}
	return out
}

// Job returns one job's status.
func (s *Scheduler) Job(name string) (Status, bool) {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return s.status(j), true
}

// History returns the newest recorded runs of a job.
func (s *Scheduler) History(ctx context.Context, name string, limit int) ([]Run, error) {
	s.mu.Lock()
	_, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return nil, ErrUnknownJob
	}
	return s.store.History(ctx, name, limit)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
