package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthz answers while the process is up.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// readyz answers 200 when the database answers and its schema is current.
// Details of a failure go to the log, not to this public endpoint.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("not ready: database does not answer", "error", err)
		WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable", Reason: "the database does not answer"})
		return
	}
	n, err := s.db.Pending(ctx)
	if err != nil {
		s.log.Warn("not ready: cannot read migration state", "error", err)
		WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable", Reason: "the migration state cannot be read"})
		return
	}
	if n > 0 {
		WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable",
			Reason: fmt.Sprintf("%d database migrations are pending; run 'gatehouse migrate' or restart the controller", n)})
		return
	}
	WriteJSON(w, http.StatusOK, readiness{Status: "ready"})
}
