package controller

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/metrics"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyweb"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// buildWeb creates the web layer and adds the controller's own routes.
func (c *Controller) buildWeb() error {
	w, err := web.New(web.Options{
		Log:       c.log,
		DB:        c.db,
		Box:       c.box,
		Config:    c.cfg,
		Events:    c.events,
		Users:     c.users,
		Tokens:    c.tokens,
		Audit:     c.audit,
		Version:   version.Version,
		Tiles:     c.tileValues,
		Attention: c.attention,
		// Provisioning logs are for admins, like the tasks' pages and API.
		AdminTopics: []string{provisionTopics},
		// The scheduler's sessions.cleanup job deletes expired sessions.
		SessionCleanup: -1,
	})
	if err != nil {
		return err
	}
	sv := &serversWeb{c: c, w: w}
	if err := sv.register(); err != nil {
		w.Close()
		return err
	}
	if err := (&provisionWeb{c: c, p: c.prov, w: w}).register(); err != nil {
		w.Close()
		return err
	}
	if err := (&alertsWeb{c: c, w: w}).register(); err != nil {
		w.Close()
		return err
	}
	if err := c.registerPrometheus(w); err != nil {
		return err
	}
	status := &statusWeb{c: c, w: w}
	c.status = status
	if err := status.register(); err != nil {
		return err
	}
	if err := (&healthWeb{c: c, w: w}).register(); err != nil {
		return err
	}
	if err := c.registerMonitors(w); err != nil {
		return err
	}
	if err := c.registerBackups(w); err != nil {
		return err
	}
	if err := (&certsWeb{c: c, w: w}).register(); err != nil {
		w.Close()
		return err
	}
	if err := proxyweb.Register(w, proxyweb.Deps{Proxy: c.proxy, Deploy: c.deployer, DB: c.db, Log: c.log, Status: c.domainStatus,
		TargetHealth: func(addresses []string) map[string][]proxyweb.TargetState {
			return c.upstreamProbes.states(addresses, time.Now())
		}}); err != nil {
		w.Close()
		return err
	}
	c.webClose = w.Close
	c.webRoutes = w.Routes
	c.httpSrv = &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          c.log.Named("http").StandardLogger(nil),
	}
	return nil
}

// tileValues formats the latest summaries of servers for dashboard tiles.
func (c *Controller) tileValues(ctx context.Context, ids []int) map[int]web.TileValues {
	sums, err := c.query.LatestSummaries(ctx, ids)
	if err != nil {
		c.log.Error("latest metrics for the dashboard", "error", err)
		return nil
	}
	out := make(map[int]web.TileValues, len(sums))
	for id, s := range sums {
		out[id] = tileOf(s)
	}
	return out
}

func pct(used, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(used) / float64(total) * 100
}

// tileOf turns a summary into the values a tile shows.
func tileOf(s metrics.Summary) web.TileValues {
	mem, disk := pct(s.MemUsed, s.MemTotal), pct(s.DiskUsed, s.DiskTotal)
	v := web.TileValues{
		"cpu":       fmt.Sprintf("%.0f%%", s.CPU),
		"cpu_pct":   fmt.Sprintf("%.1f", s.CPU),
		"mem":       fmt.Sprintf("%.0f%%", mem),
		"mem_pct":   fmt.Sprintf("%.1f", mem),
		"disk":      fmt.Sprintf("%.0f%%", disk),
		"disk_pct":  fmt.Sprintf("%.1f", disk),
		"load":      fmt.Sprintf("%.2f / %.2f / %.2f", s.Load1, s.Load5, s.Load15),
		"last_seen": time.UnixMilli(s.TS).UTC().Format(time.RFC3339),
	}
	if s.Nginx {
		v["nginx"] = fmt.Sprintf("%s req/s · %.0f conn", rate(s.NginxRPS), s.NginxConns)
	}
	return v
}

// rate shows a request rate with a precision that suits its size.
func rate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}
