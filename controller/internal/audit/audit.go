// Package audit records who changed what, when and from where, and lists
// those records newest first.
package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/auditevent"
)

// Actor is whoever causes a change: a signed-in user, an API token's owner,
// or the system itself (the CLI, the scheduler).
type Actor struct {
	ID         *int   // the user's id; nil for the system
	Name       string // username, or a system name such as "cli"
	RemoteAddr string // client address, empty for local actions
}

// System returns an actor for changes made by the controller itself or by
// the local command line, where there is no signed-in user.
func System(name string) Actor { return Actor{Name: name} }

// Entry is one change to record.
type Entry struct {
	ActorID    *int
	Actor      string
	Action     string // dotted verb such as "user.create" or "token.revoke"
	Target     string // what was changed, e.g. "user:alice"
	Detail     string // free text; never a secret
	RemoteAddr string
}

// For builds an Entry for actor.
func For(a Actor, action, target, detail string) Entry {
	return Entry{ActorID: a.ID, Actor: a.Name, Action: action, Target: target, Detail: detail, RemoteAddr: a.RemoteAddr}
}

// Event is a recorded entry.
type Event struct {
	ID         int       `json:"id"`
	At         time.Time `json:"at"`
	ActorID    *int      `json:"actor_id,omitempty"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	Detail     string    `json:"detail"`
	RemoteAddr string    `json:"remote_addr"`
}

// Query selects events. Zero values mean "any".
type Query struct {
	Actor    string // exact actor name
	Action   string // exact action, or a prefix when it ends in "." (e.g. "user.")
	Target   string // exact target, or a prefix when it ends in ":" (e.g. "domain:")
	BeforeID int    // only events older than this id (the cursor of the previous page)
	Limit    int    // page size; defaults to DefaultLimit, capped at MaxLimit
}

// Page is one page of events, newest first. NextBefore is the cursor for the
// next (older) page, or 0 when there is none.
type Page struct {
	Events     []Event `json:"events"`
	NextBefore int     `json:"next_before,omitempty"`
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Field limits; longer values are cut, never rejected, so a change is never
// lost because its description is long.
const (
	maxShort  = 255
	maxDetail = 4000
)

// Recorder writes and reads the audit log.
type Recorder struct {
	client *ent.Client
	log    hclog.Logger
}

// New returns a Recorder on client.
func New(client *ent.Client, log hclog.Logger) *Recorder {
	return &Recorder{client: client, log: log.Named("audit")}
}

// Record writes e. Action and Actor are required.
func (r *Recorder) Record(ctx context.Context, e Entry) error {
	if e.Action == "" {
		return errors.New("audit: action is required")
	}
	if e.Actor == "" {
		return errors.New("audit: actor is required")
	}
	_, err := r.client.AuditEvent.Create().
		SetNillableActorID(e.ActorID).
		SetActor(clip(e.Actor, maxShort)).
		SetAction(clip(e.Action, maxShort)).
		SetTarget(clip(e.Target, maxShort)).
		SetDetail(clip(e.Detail, maxDetail)).
		SetRemoteAddr(clip(e.RemoteAddr, maxShort)).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	r.log.Debug("recorded", "action", e.Action, "actor", e.Actor, "target", e.Target)
	return nil
}

// List returns one page of events matching q, newest first.
func (r *Recorder) List(ctx context.Context, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	query := r.client.AuditEvent.Query()
	if q.Actor != "" {
		query = query.Where(auditevent.ActorEQ(q.Actor))
	}
	switch {
	case strings.HasSuffix(q.Action, "."):
		query = query.Where(auditevent.ActionHasPrefix(q.Action))
	case q.Action != "":
		query = query.Where(auditevent.ActionEQ(q.Action))
	}
	switch {
	case strings.HasSuffix(q.Target, ":"):
		query = query.Where(auditevent.TargetHasPrefix(q.Target))
	case q.Target != "":
		query = query.Where(auditevent.TargetEQ(q.Target))
	}
	if q.BeforeID > 0 {
		query = query.Where(auditevent.IDLT(q.BeforeID))
	}
	rows, err := query.Order(ent.Desc(auditevent.FieldID)).Limit(limit + 1).All(ctx)
	if err != nil {
		return Page{}, fmt.Errorf("list audit events: %w", err)
	}
	var p Page
	if len(rows) > limit {
		rows = rows[:limit]
		p.NextBefore = rows[len(rows)-1].ID
	}
	p.Events = make([]Event, 0, len(rows))
	for _, e := range rows {
		p.Events = append(p.Events, Event{
			ID: e.ID, At: e.At, ActorID: e.ActorID, Actor: e.Actor, Action: e.Action,
			Target: e.Target, Detail: e.Detail, RemoteAddr: e.RemoteAddr,
		})
	}
	return p, nil
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
