package proxyweb

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/deploy"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/schema"
)

// Revision list sizes.
const (
	pageRevisions    = 50
	defaultRevisions = 50
	maxRevisions     = 500
)

// revisionNumber reads the {n} path value.
func revisionNumber(r *http.Request) (int64, bool) {
	s := r.PathValue("n")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && len(s) <= 18 && strconv.FormatInt(n, 10) == s
}

// fileView is one rendered file.
type fileView struct {
	Path    string
	Content string
}

// diffLine is one line of a unified diff with its kind for styling: file, hunk, add, del
// or ctx.
type diffLine struct {
	Kind string
	Text string
}

func diffLines(diff string) []diffLine {
	if diff == "" {
		return nil
	}
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
		k := "ctx"
		switch {
		case strings.HasPrefix(l, "+++ "), strings.HasPrefix(l, "--- "):
			k = "file"
		case strings.HasPrefix(l, "@@"):
			k = "hunk"
		case strings.HasPrefix(l, "+"):
			k = "add"
		case strings.HasPrefix(l, "-"):
			k = "del"
		}
		out = append(out, diffLine{Kind: k, Text: l})
	}
	return out
}

// --- pages ---

type revisionsPageData struct {
	Server    *ent.Server
	Revisions []*ent.ConfigRevision
	Drift     *schema.NginxDrift
	Drifted   bool
	Admin     bool
	More      bool
}

func (h *handler) revisionsPage(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.failed(w, r, "/servers", "server", err)
		return
	}
	revs, err := h.dep.Revisions(r.Context(), s.ID, pageRevisions+1)
	if err != nil {
		h.failed(w, r, "/servers", "revision list", err)
		return
	}
	d := revisionsPageData{Server: s, Revisions: revs, Drift: s.Drift, Drifted: s.Drift.Drifted(), Admin: isAdmin(r)}
	if len(revs) > pageRevisions {
		d.Revisions, d.More = revs[:pageRevisions], true
	}
	h.w.Render(w, r, http.StatusOK, "proxy_revisions", "nginx revisions of "+s.Name, "/servers", d)
}

type revisionPageData struct {
	Server    *ent.Server
	Rev       *ent.ConfigRevision
	Files     []fileView
	Against   int64
	Diff      []diffLine
	Previous  []int64 // older revisions to diff against
	Desired   bool
	Applied   bool
	AgainstOK bool
}

func (h *handler) revisionPage(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.failed(w, r, "/servers", "server", err)
		return
	}
	n, ok := revisionNumber(r)
	if !ok {
		h.notFound(w, r, "/servers")
		return
	}
	rev, err := h.dep.Revision(r.Context(), s.ID, n)
	if err != nil {
		h.failed(w, r, "/servers", "revision", err)
		return
	}
	files, err := deploy.Files(rev)
	if err != nil {
		h.failed(w, r, "/servers", "revision", err)
		return
	}
	against, ok := againstParam(r, n)
	if !ok {
		h.w.Render(w, r, http.StatusBadRequest, "error", "Bad request", "/servers",
			errorData{"Bad request", "against must be the number of an earlier revision, or 0 for none."})
		return
	}
	diff, err := h.dep.Diff(r.Context(), s.ID, against, n)
	if err != nil {
		h.failed(w, r, "/servers", "revision diff", err)
		return
	}
	d := revisionPageData{Server: s, Rev: rev, Against: against, Diff: diffLines(diff),
		Desired: s.DesiredRevision == n, Applied: s.AppliedRevision == n}
	for _, f := range files {
		d.Files = append(d.Files, fileView{Path: f.Path, Content: string(f.Content)})
	}
	for i := n - 1; i >= 1 && i >= n-20; i-- {
		d.Previous = append(d.Previous, i)
	}
	h.w.Render(w, r, http.StatusOK, "proxy_revision", fmt.Sprintf("Revision %d of %s", n, s.Name), "/servers", d)
}

// againstParam reads ?against=, the revision to diff with: by default the one before n,
// 0 for none.
func againstParam(r *http.Request, n int64) (int64, bool) {
	s := r.URL.Query().Get("against")
	if s == "" {
		return n - 1, true
	}
	m, err := strconv.ParseInt(s, 10, 64)
	if err != nil || m < 0 || len(s) > 18 {
		return 0, false
	}
	return m, true
}

// deployOutcome describes the result of a deploy for people.
func deployOutcome(s *ent.Server, rev *ent.ConfigRevision, err error) (kind, msg string) {
	switch {
	case errors.Is(err, deploy.ErrOffline):
		n := int64(0)
		if rev != nil {
			n = rev.Number
		}
		return "error", fmt.Sprintf("%s is offline; revision %d is applied when its agent reconnects.", s.Name, n)
	case errors.Is(err, deploy.ErrApplyFailed) && rev != nil:
		return "error", fmt.Sprintf("Revision %d was not applied on %s (%s): %s", rev.Number, s.Name, rev.Outcome, firstLine(rev.Output))
	case err != nil:
		return "error", "The deploy failed: " + err.Error()
	case rev == nil:
		return "error", "There is nothing to apply on " + s.Name + "."
	}
	return "success", fmt.Sprintf("Revision %d is applied on %s.", rev.Number, s.Name)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (h *handler) deployPage(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.failed(w, r, "/servers", "server", err)
		return
	}
	rev, err := h.dep.Deploy(r.Context(), s.ID)
	h.recordDeploy(r, s, rev, err)
	kind, msg := deployOutcome(s, rev, err)
	if kind == "error" && !errors.Is(err, deploy.ErrOffline) && !errors.Is(err, deploy.ErrApplyFailed) && err != nil {
		h.log.Error("deploy", "server", s.ID, "error", err)
		msg = "The deploy failed because of a problem on our side; see the controller log."
	}
	h.w.Flash(r, kind, msg)
	http.Redirect(w, r, fmt.Sprintf("/servers/%d/revisions", s.ID), http.StatusSeeOther)
}

func (h *handler) recordDeploy(r *http.Request, s *ent.Server, rev *ent.ConfigRevision, err error) {
	detail := "nothing to apply"
	if rev != nil {
		detail = fmt.Sprintf("revision=%d status=%s outcome=%s", rev.Number, rev.Status, rev.Outcome)
	}
	if errors.Is(err, deploy.ErrOffline) {
		detail += " agent offline"
	}
	h.record(r, "server.deploy", "server:"+s.Name, detail)
}

func (h *handler) driftPage(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.failed(w, r, "/servers", "server", err)
		return
	}
	drift, err := h.dep.CheckDrift(r.Context(), s.ID)
	switch {
	case err != nil:
		h.w.Flash(r, "error", "The drift check did not run: "+err.Error())
	case drift.Drifted():
		h.record(r, "server.drift_check", "server:"+s.Name, "drifted")
		h.w.Flash(r, "error", fmt.Sprintf("The nginx files on %s were changed outside Gatehouse; re-apply to restore revision %d.", s.Name, drift.Revision))
	default:
		h.record(r, "server.drift_check", "server:"+s.Name, "in sync")
		h.w.Flash(r, "success", fmt.Sprintf("The nginx files on %s match revision %d.", s.Name, drift.Revision))
	}
	http.Redirect(w, r, fmt.Sprintf("/servers/%d/revisions", s.ID), http.StatusSeeOther)
}

// --- API ---

type revisionJSON struct {
	Number    int64      `json:"number"`
	Hash      string     `json:"hash"`
	Status    string     `json:"status"`
	Outcome   string     `json:"outcome"`
	Output    string     `json:"output"`
	Desired   bool       `json:"desired"`
	Applied   bool       `json:"applied"`
	CreatedAt time.Time  `json:"created_at"`
	AppliedAt *time.Time `json:"applied_at"`
}

func toRevisionJSON(s *ent.Server, rev *ent.ConfigRevision) revisionJSON {
	return revisionJSON{Number: rev.Number, Hash: rev.Hash, Status: string(rev.Status), Outcome: rev.Outcome, Output: rev.Output,
		Desired: s.DesiredRevision == rev.Number, Applied: s.AppliedRevision == rev.Number, CreatedAt: rev.CreatedAt, AppliedAt: rev.AppliedAt}
}

type fileJSON struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

func (h *handler) apiRevisions(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	limit := defaultRevisions
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRevisions {
			msg := fmt.Sprintf("must be between 1 and %d", maxRevisions)
			web.WriteError(w, http.StatusBadRequest, "invalid", "limit "+msg, map[string]string{"limit": msg})
			return
		}
		limit = n
	}
	revs, err := h.dep.Revisions(r.Context(), s.ID, limit)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	out := make([]revisionJSON, len(revs))
	for i, rev := range revs {
		out[i] = toRevisionJSON(s, rev)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"server_id": s.ID, "desired_revision": s.DesiredRevision, "applied_revision": s.AppliedRevision,
		"drift": s.Drift, "drifted": s.Drift.Drifted(), "revisions": out,
	})
}

func (h *handler) apiRevision(w http.ResponseWriter, r *http.Request) {
	s, rev, ok := h.apiLoadRevision(w, r)
	if !ok {
		return
	}
	files, err := deploy.Files(rev)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = fileJSON{Path: f.Path, Content: string(f.Content)}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"revision": toRevisionJSON(s, rev), "files": out})
}

func (h *handler) apiLoadRevision(w http.ResponseWriter, r *http.Request) (*ent.Server, *ent.ConfigRevision, bool) {
	s, err := h.server(r)
	if err != nil {
		h.apiFail(w, r, err)
		return nil, nil, false
	}
	n, ok := revisionNumber(r)
	if !ok {
		web.WriteError(w, http.StatusNotFound, "not_found", "no such revision", nil)
		return nil, nil, false
	}
	rev, err := h.dep.Revision(r.Context(), s.ID, n)
	if err != nil {
		h.apiFail(w, r, err)
		return nil, nil, false
	}
	return s, rev, true
}

func (h *handler) apiRevisionDiff(w http.ResponseWriter, r *http.Request) {
	s, rev, ok := h.apiLoadRevision(w, r)
	if !ok {
		return
	}
	against, ok := againstParam(r, rev.Number)
	if !ok {
		msg := "must be the number of a revision, or 0 for none"
		web.WriteError(w, http.StatusBadRequest, "invalid", "against "+msg, map[string]string{"against": msg})
		return
	}
	diff, err := h.dep.Diff(r.Context(), s.ID, against, rev.Number)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"from": against, "to": rev.Number, "diff": diff})
}

func (h *handler) apiDeploy(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	rev, applyErr := h.dep.Deploy(r.Context(), s.ID)
	h.recordDeploy(r, s, rev, applyErr)
	if applyErr != nil && !errors.Is(applyErr, deploy.ErrApplyFailed) {
		h.apiFail(w, r, applyErr)
		return
	}
	if rev == nil {
		web.WriteJSON(w, http.StatusOK, map[string]any{"applied": false, "revision": nil})
		return
	}
	s, err = h.db.Client.Server.Get(r.Context(), s.ID)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	// An apply nginx refused is an outcome, not a failed request: the revision says why.
	web.WriteJSON(w, http.StatusOK, map[string]any{"applied": applyErr == nil && s.AppliedRevision == rev.Number, "revision": toRevisionJSON(s, rev)})
}

func (h *handler) apiDrift(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r)
	if err != nil {
		h.apiFail(w, r, err)
		return
	}
	drift, err := h.dep.CheckDrift(r.Context(), s.ID)
	if err != nil {
		web.WriteError(w, http.StatusBadGateway, "agent_error", err.Error(), nil)
		return
	}
	h.record(r, "server.drift_check", "server:"+s.Name, fmt.Sprintf("drifted=%t", drift.Drifted()))
	web.WriteJSON(w, http.StatusOK, map[string]any{"drift": drift, "drifted": drift.Drifted()})
}
