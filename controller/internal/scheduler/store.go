package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/task"
)

// TaskKind is the kind of the Task rows that record job runs.
const TaskKind = "job"

// EntStore records runs as Task rows (kind "job", subject the job name).
type EntStore struct {
	client *ent.Client
}

// NewEntStore returns a store on client.
func NewEntStore(client *ent.Client) *EntStore { return &EntStore{client: client} }

// Begin implements Store.
func (s *EntStore) Begin(ctx context.Context, job string, at time.Time) (int, error) {
	t, err := s.client.Task.Create().SetKind(TaskKind).SetSubject(job).SetStatus(task.StatusRunning).
		SetStartedAt(at).SetCreatedAt(at).Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("record run of %s: %w", job, err)
	}
	return t.ID, nil
}

// Finish implements Store.
func (s *EntStore) Finish(ctx context.Context, id int, at time.Time, outcome Outcome, log, errText string) error {
	st := task.StatusSucceeded
	if outcome == OutcomeFailed {
		st = task.StatusFailed
	}
	if err := s.client.Task.UpdateOneID(id).SetStatus(st).SetFinishedAt(at).SetLog(log).SetError(errText).Exec(ctx); err != nil {
		return fmt.Errorf("record end of run %d: %w", id, err)
	}
	return nil
}

func toRun(t *ent.Task) Run {
	r := Run{ID: t.ID, Job: t.Subject, FinishedAt: t.FinishedAt, Log: t.Log, Error: t.Error}
	if t.StartedAt != nil {
		r.StartedAt = *t.StartedAt
	} else {
		r.StartedAt = t.CreatedAt
	}
	switch t.Status {
	case task.StatusSucceeded:
		r.Outcome = OutcomeSucceeded
	case task.StatusFailed:
		r.Outcome = OutcomeFailed
	default:
		r.Outcome = OutcomeRunning
	}
	return r
}

// Last implements Store.
func (s *EntStore) Last(ctx context.Context, jobs []string) (map[string]Run, error) {
	out := make(map[string]Run, len(jobs))
	for _, j := range jobs {
		t, err := s.client.Task.Query().Where(task.Kind(TaskKind), task.Subject(j)).
			Order(ent.Desc(task.FieldCreatedAt), ent.Desc(task.FieldID)).First(ctx)
		if ent.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("last run of %s: %w", j, err)
		}
		out[j] = toRun(t)
	}
	return out, nil
}

// History implements Store.
func (s *EntStore) History(ctx context.Context, job string, limit int) ([]Run, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	list, err := s.client.Task.Query().Where(task.Kind(TaskKind), task.Subject(job)).
		Order(ent.Desc(task.FieldCreatedAt), ent.Desc(task.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("runs of %s: %w", job, err)
	}
	out := make([]Run, len(list))
	for i, t := range list {
		out[i] = toRun(t)
	}
	return out, nil
}

// Prune implements Store.
func (s *EntStore) Prune(ctx context.Context, job string, keep int) error {
	ids, err := s.client.Task.Query().Where(task.Kind(TaskKind), task.Subject(job)).
		Order(ent.Desc(task.FieldCreatedAt), ent.Desc(task.FieldID)).Offset(keep).Limit(1).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	oldest, err := s.client.Task.Get(ctx, ids[0])
	if err != nil {
		return err
	}
	_, err = s.client.Task.Delete().Where(task.Kind(TaskKind), task.Subject(job),
		task.Or(task.CreatedAtLT(oldest.CreatedAt), task.And(task.CreatedAt(oldest.CreatedAt), task.IDLTE(oldest.ID)))).Exec(ctx)
	return err
}

// Interrupt implements Store.
func (s *EntStore) Interrupt(ctx context.Context, at time.Time, reason string) (int, error) {
	n, err := s.client.Task.Update().Where(task.Kind(TaskKind), task.StatusEQ(task.StatusRunning)).
		SetStatus(task.StatusFailed).SetFinishedAt(at).SetError(reason).Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("close interrupted runs: %w", err)
	}
	return n, nil
}
