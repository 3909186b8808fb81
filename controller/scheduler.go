package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// deliveryRetention is how long delivery records are kept.
const deliveryRetention = 30 * 24 * time.Hour

// NginxSyncEvery is how often every server's nginx configuration is rendered
// again from the database, so that changes made outside the running
// controller reach the nodes.
const NginxSyncEvery = 5 * time.Minute

// buildScheduler registers the controller's periodic jobs.
func (c *Controller) buildScheduler() error {
	c.sched = scheduler.New(scheduler.NewEntStore(c.db.Client), c.log, scheduler.Options{
		OnRun: func(st scheduler.Status) {
			c.events.Publish(events.Event{Topic: "jobs", Name: "job", Data: jobViewOf(st, time.Now())})
		},
	})
	sessions := auth.NewSessionStore(c.db.Client, c.log)
	for _, j := range []scheduler.Job{
		{
			Name: "metrics.status", Title: "Mark silent servers offline", Quiet: true,
			Every: min(c.cfg.MetricsInterval, time.Minute),
			Run: func(ctx context.Context, _ *scheduler.Log) error {
				return c.maint.Status(ctx, time.Now())
			},
		},
		{
			Name: "metrics.rollup", Title: "Roll metrics up into minute and hour buckets", Quiet: true,
			Every: time.Minute,
			Run: func(ctx context.Context, _ *scheduler.Log) error {
				return c.maint.Rollup(ctx, time.Now())
			},
		},
		{
			Name: "metrics.retention", Title: "Delete metrics past their retention",
			Every: 10 * time.Minute,
			Run: func(ctx context.Context, _ *scheduler.Log) error {
				return c.maint.Retain(ctx, time.Now())
			},
		},
		{
			Name: "alerts.evaluate", Title: "Evaluate alert rules", Quiet: true,
			Every: c.cfg.AlertInterval,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				return c.alerts.Evaluate(ctx, l)
			},
		},
		{
			// Every change made in the UI or API re-renders its servers at
			// once; this catches what reached the database another way (the
			// command line, a restore) on servers whose agent stays connected.
			Name: "nginx.sync", Title: "Re-render every server's nginx configuration and deploy what changed", Quiet: true,
			Every: NginxSyncEvery,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				ids, err := c.db.Client.Server.Query().Where(server.StatusNEQ(server.StatusRemoved)).IDs(ctx)
				if err != nil {
					return fmt.Errorf("list servers: %w", err)
				}
				c.deployer.Changed(ids...)
				return nil
			},
		},
		{
			Name: "notifications.prune", Title: "Delete delivery records older than 30 days",
			Every: 24 * time.Hour,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				n, err := c.channels.Prune(ctx, deliveryRetention)
				if n > 0 {
					l.Printf("deleted %d delivery records", n)
				}
				return err
			},
		},
		{
			Name: "sessions.cleanup", Title: "Delete expired sign-in sessions and trusted browsers",
			Every: time.Hour,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				n, err := sessions.Cleanup(ctx)
				if n > 0 {
					l.Printf("deleted %d expired sessions", n)
				}
				d, derr := c.users.PruneTrustedDevices(ctx)
				if d > 0 {
					l.Printf("deleted %d expired trusted browsers", d)
				}
				return errors.Join(err, derr)
			},
		},
	} {
		if err := c.sched.Add(j); err != nil {
			return err
		}
	}
	if j := c.backupJob(); j != nil {
		return c.sched.Add(*j)
	}
	return nil
}

// jobView is a job as the jobs page and API show it.
type jobView struct {
	Name       string     `json:"name"`
	Title      string     `json:"title"`
	Every      string     `json:"every"`
	Running    bool       `json:"running"`
	LastStart  *time.Time `json:"last_started_at"`
	LastEnd    *time.Time `json:"last_finished_at"`
	LastResult string     `json:"last_outcome"`
	LastError  string     `json:"last_error"`
	LastTook   string     `json:"last_duration"`
	Next       time.Time  `json:"next_run_at"`
}

func jobViewOf(st scheduler.Status, now time.Time) jobView {
	v := jobView{Name: st.Name, Title: st.Title, Every: shortDuration(st.Every), Running: st.Running, Next: st.Next}
	if l := st.Last; l != nil {
		start := l.StartedAt
		v.LastStart, v.LastEnd, v.LastResult, v.LastError = &start, l.FinishedAt, string(l.Outcome), l.Error
		v.LastTook = shortDuration(l.Duration(now).Round(time.Millisecond))
		if v.LastTook == "0s" {
			v.LastTook = "<1ms"
		}
	}
	return v
}

// shortDuration writes d as Go does without the zero tails: 1h rather than
// 1h0m0s, 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
