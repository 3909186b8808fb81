package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/incident"
	"github.com/gatehousehq/gatehouse/ent/silence"
)

// Rule returns one rule.
func (e *Engine) Rule(ctx context.Context, id int) (Rule, error) {
	r, err := e.db.Client.AlertRule.Get(ctx, id)
	if ent.IsNotFound(err) {
		return Rule{}, ErrNotFound
	}
	if err != nil {
		return Rule{}, err
	}
	return ruleFromEnt(r), nil
}

// SaveRule validates and stores a rule: created when r.ID is 0, replaced
// otherwise. The error is FieldErrors for invalid input.
func (e *Engine) SaveRule(ctx context.Context, r Rule, by audit.Actor) (Rule, error) {
	if err := r.Validate(); err != nil {
		return r, err
	}
	var saved *ent.AlertRule
	var err error
	if r.ID == 0 {
		saved, err = e.db.Client.AlertRule.Create().SetName(r.Name).SetKind(string(r.Kind)).SetEnabled(r.Enabled).
			SetMetric(string(r.Metric)).SetMount(r.Mount).SetOp(string(r.Op)).SetNillableWarning(r.Warning).
			SetNillableCritical(r.Critical).SetSeverity(string(r.severityOrDefault())).
			SetWindowSeconds(int(r.Window / time.Second)).SetDays(r.Days).SetServerIds(r.ServerIDs).
			SetLabels(r.Labels).SetChannelIds(r.ChannelIDs).SetRepeatSeconds(int(r.Repeat / time.Second)).Save(ctx)
	} else {
		upd := e.db.Client.AlertRule.UpdateOneID(r.ID).SetName(r.Name).SetKind(string(r.Kind)).SetEnabled(r.Enabled).
			SetMetric(string(r.Metric)).SetMount(r.Mount).SetOp(string(r.Op)).SetSeverity(string(r.severityOrDefault())).
			SetWindowSeconds(int(r.Window / time.Second)).SetDays(r.Days).SetServerIds(r.ServerIDs).
			SetLabels(r.Labels).SetChannelIds(r.ChannelIDs).SetRepeatSeconds(int(r.Repeat / time.Second))
		if r.Warning != nil {
			upd.SetWarning(*r.Warning)
		} else {
			upd.ClearWarning()
		}
		if r.Critical != nil {
			upd.SetCritical(*r.Critical)
		} else {
			upd.ClearCritical()
		}
		saved, err = upd.Save(ctx)
	}
	switch {
	case ent.IsConstraintError(err):
		return r, FieldErrors{"name": "a rule with this name exists; choose another name"}
	case ent.IsNotFound(err):
		return r, ErrNotFound
	case err != nil:
		return r, fmt.Errorf("save rule: %w", err)
	}
	action := "alert_rule.update"
	if r.ID == 0 {
		action = "alert_rule.create"
	}
	out := ruleFromEnt(saved)
	e.record(ctx, by, action, "alert_rule:"+out.Name, out.Explain(nil))
	return out, nil
}

func (r Rule) severityOrDefault() Severity {
	if r.Kind == KindMetric {
		return SeverityCritical
	}
	return r.Severity
}

// DeleteRule removes a rule; its open incidents resolve at the next evaluation.
func (e *Engine) DeleteRule(ctx context.Context, id int, by audit.Actor) error {
	r, err := e.db.Client.AlertRule.Get(ctx, id)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := e.db.Client.AlertRule.DeleteOneID(id).Exec(ctx); err != nil {
		return fmt.Errorf("delete rule: %w", err)
	}
	e.record(ctx, by, "alert_rule.delete", "alert_rule:"+r.Name, "")
	return nil
}

// IncidentFilter selects incidents.
type IncidentFilter struct {
	Open  bool // pending and firing only
	Limit int  // default 100, at most 1000
}

// Incidents lists incidents, newest first.
func (e *Engine) Incidents(ctx context.Context, f IncidentFilter) ([]*ent.Incident, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := e.db.Client.Incident.Query()
	if f.Open {
		q = q.Where(incident.StateIn(incident.StatePending, incident.StateFiring))
	}
	list, err := q.Order(ent.Desc(incident.FieldStartedAt), ent.Desc(incident.FieldID)).Limit(f.Limit).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return list, nil
}

// SilenceInput is a silence to create.
type SilenceInput struct {
	RuleID   int
	ServerID int
	StartsAt time.Time
	EndsAt   time.Time
	Comment  string
}

// MaxSilence bounds how long one silence may last.
const MaxSilence = 90 * 24 * time.Hour

// Validate checks a silence; the error is FieldErrors.
func (s SilenceInput) Validate(now time.Time) error {
	errs := FieldErrors{}
	if s.RuleID < 0 {
		errs["rule_id"] = "must be a rule id, or 0 for every rule"
	}
	if s.ServerID < 0 {
		errs["server_id"] = "must be a server id, or 0 for every server"
	}
	if s.StartsAt.IsZero() {
		errs["starts_at"] = "required"
	}
	switch {
	case s.EndsAt.IsZero():
		errs["ends_at"] = "required"
	case !s.EndsAt.After(s.StartsAt):
		errs["ends_at"] = "must be after the start"
	case !s.EndsAt.After(now):
		errs["ends_at"] = "must be in the future"
	case s.EndsAt.Sub(s.StartsAt) > MaxSilence:
		errs["ends_at"] = "a silence lasts at most 90 days"
	}
	if len([]rune(s.Comment)) > 500 || strings.ContainsAny(s.Comment, "\x00\r") {
		errs["comment"] = "must be at most 500 characters of text"
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CreateSilence validates and stores a silence.
func (e *Engine) CreateSilence(ctx context.Context, in SilenceInput, by audit.Actor) (*ent.Silence, error) {
	if err := in.Validate(e.opts.Now()); err != nil {
		return nil, err
	}
	if in.RuleID > 0 {
		if ok, err := e.db.Client.AlertRule.Get(ctx, in.RuleID); err != nil || ok == nil {
			return nil, FieldErrors{"rule_id": "no such rule"}
		}
	}
	if in.ServerID > 0 {
		if _, err := e.db.Client.Server.Get(ctx, in.ServerID); err != nil {
			return nil, FieldErrors{"server_id": "no such server"}
		}
	}
	s, err := e.db.Client.Silence.Create().SetRuleID(in.RuleID).SetServerID(in.ServerID).SetStartsAt(in.StartsAt).
		SetEndsAt(in.EndsAt).SetComment(in.Comment).SetCreatedBy(clip(by.Name, 128)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("save silence: %w", err)
	}
	e.record(ctx, by, "silence.create", fmt.Sprintf("silence:%d", s.ID),
		fmt.Sprintf("rule %d, server %d, until %s: %s", in.RuleID, in.ServerID, in.EndsAt.UTC().Format(time.RFC3339), in.Comment))
	return s, nil
}

// EndSilence ends a silence now.
func (e *Engine) EndSilence(ctx context.Context, id int, by audit.Actor) error {
	s, err := e.db.Client.Silence.Get(ctx, id)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	now := e.opts.Now()
	if s.EndsAt.After(now) {
		if err := s.Update().SetEndsAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("end silence: %w", err)
		}
	}
	e.record(ctx, by, "silence.end", fmt.Sprintf("silence:%d", id), s.Comment)
	return nil
}

// Silences lists silences that have not ended, and those ended in the last day.
func (e *Engine) Silences(ctx context.Context) ([]*ent.Silence, error) {
	return e.db.Client.Silence.Query().Where(silence.EndsAtGT(e.opts.Now().Add(-24 * time.Hour))).
		Order(ent.Desc(silence.FieldEndsAt)).Limit(500).All(ctx)
}
