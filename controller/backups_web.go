package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"entgo.io/ent/dialect"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ui"
)

// Admins list, take and download the SQLite snapshots in DATA_DIR/backups
// from the Backups page (System menu) or the API, so a copy can leave the
// machine without a shell on it. Only files named as the controller names
// its snapshots are listed or served.
type backupsWeb struct {
	c *Controller
	w *web.Server
}

// snapshotName matches the scheduled and the manual snapshots.
var snapshotName = regexp.MustCompile(`^gatehouse-(manual-)?[0-9]{8}-[0-9]{6}\.[0-9]{3}\.db$`)

func (c *Controller) registerBackups(w *web.Server) error {
	bw := &backupsWeb{c: c, w: w}
	list := web.Route{Method: "GET", Pattern: "/backups", Policy: web.PolicyAdmin, Kind: web.KindPage, Handler: bw.page,
		Nav: "Backups", NavOrder: 47, NavMenu: web.NavSystem}
	for _, r := range []web.Route{
		list,
		{Method: "POST", Pattern: "/backups", Policy: web.PolicyAdmin, Kind: web.KindPage, Handler: bw.takePage},
		{Method: "GET", Pattern: "/backups/{name}", Policy: web.PolicyAdmin, Kind: web.KindPage, Handler: bw.download},
		{Method: "GET", Pattern: "/api/v1/backups", Policy: web.PolicyAdmin, Kind: web.KindAPI, Handler: bw.apiList},
		{Method: "POST", Pattern: "/api/v1/backups", Policy: web.PolicyAdmin, Kind: web.KindAPI, Handler: bw.apiTake},
		{Method: "GET", Pattern: "/api/v1/backups/{name}", Policy: web.PolicyAdmin, Kind: web.KindAPI, Handler: bw.download},
	} {
		if err := w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// backupJSON is one snapshot.
type backupJSON struct {
	Name string    `json:"name"`
	At   time.Time `json:"taken_at"`
	Size int64     `json:"size"`
	// Manual snapshots are never pruned; scheduled ones keep backup_keep.
	Manual bool `json:"manual"`
}

// sqlite reports whether the database is SQLite (snapshots exist only then).
func (bw *backupsWeb) sqlite() bool { return bw.c.db.Dialect == dialect.SQLite }

// list reads the snapshots, newest first.
func (bw *backupsWeb) list() ([]backupJSON, error) {
	entries, err := os.ReadDir(backupDir(bw.c.cfg))
	if errors.Is(err, fs.ErrNotExist) {
		return []backupJSON{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []backupJSON{}
	for _, e := range entries {
		m := snapshotName.FindStringSubmatch(e.Name())
		if !e.Type().IsRegular() || m == nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, backupJSON{Name: e.Name(), At: info.ModTime().UTC(), Size: info.Size(), Manual: m[1] != ""})
	}
	slices.SortFunc(out, func(a, b backupJSON) int { return b.At.Compare(a.At) })
	return out, nil
}

// take writes a manual snapshot and records it.
func (bw *backupsWeb) take(ctx context.Context, actor audit.Actor) (backupJSON, error) {
	if !bw.sqlite() {
		return backupJSON{}, store.ErrSnapshotUnsupported
	}
	name := backupName("gatehouse-manual-", time.Now())
	_, size, err := snapshotInto(ctx, bw.c.db, backupDir(bw.c.cfg), name)
	if err != nil {
		return backupJSON{}, err
	}
	bw.record(ctx, actor, "backup.create", name, ui.HumanBytes(size))
	return backupJSON{Name: name, At: time.Now().UTC(), Size: size, Manual: true}, nil
}

func (bw *backupsWeb) record(ctx context.Context, actor audit.Actor, action, name, detail string) {
	if err := bw.c.audit.Record(ctx, audit.For(actor, action, "backup:"+name, detail)); err != nil {
		bw.c.log.Error("audit", "action", action, "error", err)
	}
}

type backupsPageData struct {
	Backups []backupJSON
	SQLite  bool
	Keep    int
	Every   string
}

func (bw *backupsWeb) page(w http.ResponseWriter, r *http.Request) {
	list, err := bw.list()
	if err != nil {
		bw.c.log.Error("list backups", "error", err)
		bw.w.Render(w, r, http.StatusInternalServerError, "error", "Error", "/backups", map[string]string{"Heading": "Backups unavailable", "Message": "The backup directory could not be read."})
		return
	}
	d := backupsPageData{Backups: list, SQLite: bw.sqlite(), Keep: bw.c.cfg.BackupKeep}
	if bw.c.cfg.BackupInterval > 0 {
		d.Every = shortDuration(bw.c.cfg.BackupInterval)
	}
	bw.w.Render(w, r, http.StatusOK, "backups", "Backups", "/backups", d)
}

func (bw *backupsWeb) takePage(w http.ResponseWriter, r *http.Request) {
	b, err := bw.take(r.Context(), bw.w.Actor(r))
	if err != nil {
		bw.c.log.Error("take a backup", "error", err)
		bw.w.Flash(r, "error", "The snapshot could not be taken: "+err.Error())
	} else {
		bw.w.Flash(r, "success", fmt.Sprintf("Snapshot %s taken (%s).", b.Name, ui.HumanBytes(b.Size)))
	}
	http.Redirect(w, r, "/backups", http.StatusSeeOther)
}

func (bw *backupsWeb) apiList(w http.ResponseWriter, r *http.Request) {
	list, err := bw.list()
	if err != nil {
		bw.c.log.Error("list backups", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the backups could not be read", nil)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"backups": list})
}

func (bw *backupsWeb) apiTake(w http.ResponseWriter, r *http.Request) {
	b, err := bw.take(r.Context(), bw.w.Actor(r))
	switch {
	case errors.Is(err, store.ErrSnapshotUnsupported):
		web.WriteError(w, http.StatusConflict, "unsupported", err.Error(), nil)
	case err != nil:
		bw.c.log.Error("take a backup", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the snapshot could not be taken", nil)
	default:
		web.WriteJSON(w, http.StatusCreated, b)
	}
}

// download serves one snapshot. The name must be one the controller gives
// its snapshots, and the file is opened inside the backup directory only.
func (bw *backupsWeb) download(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	notFound := func() {
		if web.KindOf(r) == web.KindAPI {
			web.WriteError(w, http.StatusNotFound, "not_found", "no such backup", nil)
			return
		}
		bw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/backups", map[string]string{"Heading": "No such backup", "Message": "It may have been pruned."})
	}
	if !snapshotName.MatchString(name) {
		notFound()
		return
	}
	root, err := os.OpenRoot(backupDir(bw.c.cfg))
	if err != nil {
		notFound()
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		notFound()
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		notFound()
		return
	}
	bw.record(r.Context(), bw.w.Actor(r), "backup.download", name, ui.HumanBytes(info.Size()))
	w.Header().Set("Content-Type", "application/vnd.sqlite3")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, f); err != nil {
		bw.c.log.Warn("download a backup", "name", name, "error", err)
	}
}
