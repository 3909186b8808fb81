package controller

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/schema"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/task"
	"github.com/gatehousehq/gatehouse/internal/version"
)

// provisionWeb serves the provisioning pages and API. Every route is
// admin-only.
type provisionWeb struct {
	c *Controller
	p *provisioner
	w *web.Server
}

func (pw *provisionWeb) register() error {
	page := func(method, pattern string, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: web.PolicyAdmin, Kind: web.KindPage, Handler: h}
	}
	api := func(method, pattern string, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: web.PolicyAdmin, Kind: web.KindAPI, Handler: h}
	}
	list := page("GET", "/provisioning", pw.listPage)
	for _, r := range []web.Route{
		list,
		page("GET", "/servers/ssh/new", pw.newPage),
		page("POST", "/servers/ssh", pw.createPage),
		page("GET", "/servers/{id}/ssh", pw.serverPage),
		page("GET", "/servers/{id}/ssh/edit", pw.editPage),
		page("POST", "/servers/{id}/ssh/edit", pw.updatePage),
		page("POST", "/servers/{id}/ssh/scan", pw.scanPage),
		page("POST", "/servers/{id}/ssh/approve", pw.approvePage),
		page("POST", "/servers/{id}/provision", pw.startPage(taskProvision)),
		page("POST", "/provisioning/update-agents", pw.updateAgentsPage),
		page("POST", "/servers/{id}/uninstall", pw.startPage(taskUninstall)),
		page("GET", "/tasks/{id}", pw.taskPage),

		api("POST", "/api/v1/servers/ssh", pw.apiCreate),
		api("GET", "/api/v1/servers/{id}/ssh", pw.apiGet),
		api("PATCH", "/api/v1/servers/{id}/ssh", pw.apiUpdate),
		api("POST", "/api/v1/servers/{id}/ssh/scan", pw.apiScan),
		api("POST", "/api/v1/servers/{id}/ssh/approve", pw.apiApprove),
		api("POST", "/api/v1/servers/{id}/provision", pw.apiStart(taskProvision)),
		api("POST", "/api/v1/servers/update-agents", pw.apiUpdateAgents),
		api("POST", "/api/v1/servers/{id}/uninstall", pw.apiStart(taskUninstall)),
		api("GET", "/api/v1/servers/{id}/tasks", pw.apiTasks),
		api("GET", "/api/v1/tasks/{id}", pw.apiTask),
	} {
		if err := pw.w.Register(r); err != nil {
			return err
		}
	}
	return nil
}

// --- JSON shapes ---

// sshCreateJSON is the body of POST /api/v1/servers/ssh.
type sshCreateJSON struct {
	Name           string               `json:"name"`
	Host           string               `json:"host"`
	Port           int                  `json:"port"`
	User           string               `json:"user"`
	Auth           string               `json:"auth"`
	PrivateKey     string               `json:"private_key"`
	Password       string               `json:"password"`
	Sudo           bool                 `json:"sudo"`
	InstallNginx   bool                 `json:"install_nginx"`
	InstallGlances bool                 `json:"install_glances"`
	HostKey        *hostKeyJSON         `json:"host_key"`
	InstallPaths   schema.InstallLayout `json:"install_paths"`
}

// sshPatchJSON is the body of PATCH /api/v1/servers/{id}/ssh: the fields of
// sshCreateJSON but the name. An absent (or null) field keeps its stored
// value; an absent or empty credential keeps the stored one. install_paths,
// when present, replaces the stored layout ({} means the defaults).
type sshPatchJSON struct {
	Host           *string               `json:"host"`
	Port           *int                  `json:"port"`
	User           *string               `json:"user"`
	Auth           *string               `json:"auth"`
	PrivateKey     string                `json:"private_key"`
	Password       string                `json:"password"`
	Sudo           *bool                 `json:"sudo"`
	InstallNginx   *bool                 `json:"install_nginx"`
	InstallGlances *bool                 `json:"install_glances"`
	HostKey        *hostKeyJSON          `json:"host_key"`
	InstallPaths   *schema.InstallLayout `json:"install_paths"`
}

// apply lays the patch over the current settings.
func (p sshPatchJSON) apply(cur sshInput) sshInput {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setBool := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	in := cur
	set(&in.Host, p.Host)
	set(&in.User, p.User)
	if p.Port != nil {
		in.Port = *p.Port
	}
	switch {
	case p.Auth != nil:
		in.Auth = *p.Auth
	case p.PrivateKey != "":
		in.Auth = "key" // a new key without "auth" replaces the credential
	case p.Password != "":
		in.Auth = "password"
	}
	in.PrivateKey, in.Password = p.PrivateKey, p.Password
	setBool(&in.Sudo, p.Sudo)
	setBool(&in.InstallNginx, p.InstallNginx)
	setBool(&in.InstallGlances, p.InstallGlances)
	if p.InstallPaths != nil {
		in.Paths = *p.InstallPaths
	}
	if p.HostKey != nil {
		in.HostKeyType, in.HostKeyFP = p.HostKey.Type, p.HostKey.Fingerprint
	}
	return in
}

type hostKeyJSON struct {
	Type        string     `json:"type"`
	Fingerprint string     `json:"fingerprint"`
	ApprovedAt  *time.Time `json:"approved_at,omitempty"`
	ApprovedBy  string     `json:"approved_by,omitempty"`
}

// sshJSON is a server's SSH settings as the API shows them: never the secret.
type sshJSON struct {
	ServerID       int                   `json:"server_id"`
	Name           string                `json:"name"`
	Status         string                `json:"status"`
	Host           string                `json:"host"`
	Port           int                   `json:"port"`
	User           string                `json:"user"`
	Auth           string                `json:"auth"`
	HasCredential  bool                  `json:"has_credential"`
	PublicKey      string                `json:"public_key,omitempty"`
	Sudo           bool                  `json:"sudo"`
	InstallNginx   bool                  `json:"install_nginx"`
	InstallGlances bool                  `json:"install_glances"`
	InstallPaths   *schema.InstallLayout `json:"install_paths,omitempty"`
	HostKeys       []hostKeyJSON         `json:"host_keys"`
}

type taskJSON struct {
	ID         int        `json:"id"`
	Kind       string     `json:"kind"`
	Subject    string     `json:"subject"`
	ServerID   int        `json:"server_id,omitempty"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      string     `json:"error"`
	Log        string     `json:"log,omitempty"`
}

func toTaskJSON(t *ent.Task, withLog bool) taskJSON {
	out := taskJSON{ID: t.ID, Kind: t.Kind, Subject: t.Subject, Status: string(t.Status), StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, Error: t.Error}
	if t.Edges.Server != nil {
		out.ServerID = t.Edges.Server.ID
	}
	if withLog {
		out.Log = t.Log
	}
	return out
}

func (in sshCreateJSON) input() sshInput {
	si := sshInput{Host: in.Host, Port: in.Port, User: in.User, Auth: in.Auth, PrivateKey: in.PrivateKey, Password: in.Password,
		Sudo: in.Sudo, InstallNginx: in.InstallNginx, InstallGlances: in.InstallGlances, Paths: in.InstallPaths}
	if si.Port == 0 {
		si.Port = 22
	}
	if in.HostKey != nil {
		si.HostKeyType, si.HostKeyFP = in.HostKey.Type, in.HostKey.Fingerprint
	}
	return si
}

func (pw *provisionWeb) sshView(r *http.Request, s *ent.Server) (sshJSON, error) {
	keys, err := pw.p.approvedKeys(r.Context(), s.ID)
	if err != nil {
		return sshJSON{}, err
	}
	out := sshJSON{ServerID: s.ID, Name: s.Name, Status: string(s.Status), Host: s.SSHHost, Port: s.SSHPort, User: s.SSHUser,
		Auth: string(s.SSHAuth), HasCredential: len(s.SSHSecret) > 0, PublicKey: s.SSHPublicKey, Sudo: s.SSHSudo,
		InstallNginx: s.InstallNginx, InstallGlances: s.InstallGlances, InstallPaths: s.InstallLayout, HostKeys: []hostKeyJSON{}}
	for _, k := range keys {
		at := k.ApprovedAt
		out.HostKeys = append(out.HostKeys, hostKeyJSON{Type: k.KeyType, Fingerprint: k.Fingerprint, ApprovedAt: &at, ApprovedBy: k.ApprovedBy})
	}
	return out, nil
}

// lookup finds the server named by the {id} path value.
func (pw *provisionWeb) lookup(r *http.Request) (*ent.Server, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		return nil, errNoServer
	}
	s, err := pw.c.db.Client.Server.Get(r.Context(), id)
	if ent.IsNotFound(err) {
		return nil, errNoServer
	}
	return s, err
}

func (pw *provisionWeb) lookupTask(r *http.Request) (*ent.Task, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		return nil, errNoTask
	}
	t, err := pw.c.db.Client.Task.Query().Where(task.ID(id), task.KindIn(taskProvision, taskUninstall)).WithServer().Only(r.Context())
	if ent.IsNotFound(err) {
		return nil, errNoTask
	}
	return t, err
}

var errNoTask = errors.New("no such task")

// apiFail maps errors to API answers; per-field problems become fields.
func (pw *provisionWeb) apiFail(w http.ResponseWriter, err error) {
	var inv *errInvalidSSH
	switch {
	case errors.As(err, &inv):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", "the SSH settings are not valid", inv.fields)
	case errors.Is(err, errNoServer):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such server", nil)
	case errors.Is(err, errNoTask):
		web.WriteError(w, http.StatusNotFound, "not_found", "no such task", nil)
	case errors.Is(err, nodes.ErrNameTaken):
		web.WriteError(w, http.StatusConflict, "conflict", "a server with this name exists", map[string]string{"name": "is taken"})
	case errors.Is(err, errNoSSH):
		web.WriteError(w, http.StatusConflict, "no_ssh", err.Error(), nil)
	case errors.Is(err, errTaskRunning):
		web.WriteError(w, http.StatusConflict, "busy", err.Error(), nil)
	default:
		pw.c.log.Error("provisioning api", "error", err)
		web.WriteError(w, http.StatusInternalServerError, "internal", "the request could not be completed", nil)
	}
}

// --- API ---

func (pw *provisionWeb) apiCreate(w http.ResponseWriter, r *http.Request) {
	var in sshCreateJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	s, err := pw.p.createSSHServer(r.Context(), pw.w.Actor(r), in.Name, in.input())
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	view, err := pw.sshView(r, s)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusCreated, map[string]any{"server": view})
}

func (pw *provisionWeb) apiGet(w http.ResponseWriter, r *http.Request) {
	s, err := pw.lookup(r)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	view, err := pw.sshView(r, s)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, view)
}

func (pw *provisionWeb) apiUpdate(w http.ResponseWriter, r *http.Request) {
	var in sshPatchJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		pw.apiFail(w, errNoServer)
		return
	}
	ed, err := pw.p.updateSSH(r.Context(), pw.w.Actor(r), id, in.apply)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	view, err := pw.sshView(r, ed.Server)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, view)
}

type scanJSON struct {
	Presented hostKeyJSON   `json:"presented"`
	Status    string        `json:"status"`
	Approved  []hostKeyJSON `json:"approved"`
}

func (pw *provisionWeb) apiScan(w http.ResponseWriter, r *http.Request) {
	s, err := pw.lookup(r)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	res, err := pw.p.scan(r.Context(), s)
	if errors.Is(err, errNoSSH) {
		pw.apiFail(w, err)
		return
	}
	if err != nil {
		web.WriteError(w, http.StatusBadGateway, "unreachable", err.Error(), nil)
		return
	}
	out := scanJSON{Presented: hostKeyJSON{Type: res.Presented.Type, Fingerprint: res.Presented.Fingerprint}, Status: res.Status, Approved: []hostKeyJSON{}}
	for _, k := range res.Approved {
		out.Approved = append(out.Approved, hostKeyJSON{Type: k.Type, Fingerprint: k.Fingerprint})
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (pw *provisionWeb) apiApprove(w http.ResponseWriter, r *http.Request) {
	var in hostKeyJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	s, err := pw.lookup(r)
	if err == nil {
		err = pw.p.approve(r.Context(), pw.w.Actor(r), s, provision.KnownKey{Type: in.Type, Fingerprint: strings.TrimSpace(in.Fingerprint)})
	}
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	view, err := pw.sshView(r, s)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, view)
}

func (pw *provisionWeb) apiStart(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := pw.lookup(r)
		var t *ent.Task
		if err == nil {
			t, err = pw.p.start(r.Context(), pw.w.Actor(r), s, kind)
		}
		if err != nil {
			pw.apiFail(w, err)
			return
		}
		w.Header().Set("Location", fmt.Sprintf("/api/v1/tasks/%d", t.ID))
		web.WriteJSON(w, http.StatusAccepted, map[string]any{"task": toTaskJSON(t, false)})
	}
}

func (pw *provisionWeb) serverTasks(r *http.Request, s *ent.Server, limit int) ([]*ent.Task, error) {
	return pw.c.db.Client.Task.Query().Where(task.HasServerWith(server.ID(s.ID)), task.KindIn(taskProvision, taskUninstall)).
		Order(ent.Desc(task.FieldID)).Limit(limit).All(r.Context())
}

func (pw *provisionWeb) apiTasks(w http.ResponseWriter, r *http.Request) {
	s, err := pw.lookup(r)
	var list []*ent.Task
	if err == nil {
		list, err = pw.serverTasks(r, s, 100)
	}
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	out := make([]taskJSON, len(list))
	for i, t := range list {
		out[i] = toTaskJSON(t, false)
		out[i].ServerID = s.ID
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"tasks": out})
}

func (pw *provisionWeb) apiTask(w http.ResponseWriter, r *http.Request) {
	t, err := pw.lookupTask(r)
	if err != nil {
		pw.apiFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, toTaskJSON(t, true))
}

// --- pages ---

type provisionRow struct {
	Server *ent.Server
	Task   *ent.Task // newest provisioning task, if any
	// Outdated says its agent runs another version than the controller.
	Outdated bool
}

func (pw *provisionWeb) listPage(w http.ResponseWriter, r *http.Request) {
	list, err := pw.c.db.Client.Server.Query().Where(server.SSHHostNEQ("")).Order(ent.Asc(server.FieldName)).
		WithTasks(func(q *ent.TaskQuery) {
			q.Where(task.KindIn(taskProvision, taskUninstall)).Order(ent.Desc(task.FieldID))
		}).All(r.Context())
	if err != nil {
		http.Error(w, "the server list could not be read", http.StatusInternalServerError)
		return
	}
	rows := make([]provisionRow, len(list))
	outdated := 0
	for i, s := range list {
		rows[i] = provisionRow{Server: s, Outdated: agentOutdated(s)}
		if len(s.Edges.Tasks) > 0 {
			rows[i].Task = s.Edges.Tasks[0]
		}
		if rows[i].Outdated {
			outdated++
		}
	}
	pw.w.Render(w, r, http.StatusOK, "provision_list", "Provisioning", "/provisioning",
		map[string]any{"Rows": rows, "Outdated": outdated, "Version": version.Version})
}

// newSSHData is the add-server form: the values typed so far (never the
// secrets) and a message per field.
type newSSHData struct {
	Name     string
	In       sshInput
	Errors   fieldErrors
	Types    []string
	Defaults schema.InstallLayout
	// CustomPaths opens the install paths section: some are set or wrong.
	CustomPaths bool
	Message     string
}

func (pw *provisionWeb) newPage(w http.ResponseWriter, r *http.Request) {
	pw.w.Render(w, r, http.StatusOK, "provision_new", "Add a server over SSH", "/provisioning",
		newSSHData{In: sshInput{Port: 22, User: "root", Auth: "generate", InstallGlances: true}, Types: provision.KeyTypes,
			Defaults: defaultPaths()})
}

// defaultPaths are the install paths used for the fields left empty.
func defaultPaths() schema.InstallLayout {
	l := provision.DefaultLayout()
	return schema.InstallLayout{BinDir: l.BinDir, StateDir: l.StateDir, ConfigDir: l.ConfigDir, NginxDir: l.NginxDir, UnitDir: l.UnitDir,
		NginxConf: "/etc/nginx/nginx.conf"}
}

// formInput reads the add and edit forms; empty install path fields mean
// the defaults.
func formInput(r *http.Request) sshInput {
	port, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("port")))
	if err != nil || port < 0 {
		port = -1 // not a number: ValidatePort asks for one
	}
	on := func(k string) bool { return r.PostFormValue(k) != "" }
	path := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return sshInput{
		Host: strings.TrimSpace(r.PostFormValue("host")), Port: port, User: strings.TrimSpace(r.PostFormValue("user")),
		Auth: r.PostFormValue("auth"), PrivateKey: r.PostFormValue("private_key"), Password: r.PostFormValue("password"),
		Sudo: on("sudo"), InstallNginx: on("install_nginx"), InstallGlances: on("install_glances"),
		HostKeyType: r.PostFormValue("host_key_type"), HostKeyFP: strings.TrimSpace(r.PostFormValue("host_key_fingerprint")),
		Paths: schema.InstallLayout{
			BinDir: path("bin_dir"), StateDir: path("state_dir"), ConfigDir: path("config_dir"),
			NginxDir: path("nginx_dir"), UnitDir: path("unit_dir"), NginxConf: path("nginx_conf"),
		},
	}
}

func (pw *provisionWeb) createPage(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	in := formInput(r)
	if in.HostKeyFP == "" {
		in.HostKeyType = ""
	}
	s, err := pw.p.createSSHServer(r.Context(), pw.w.Actor(r), name, in)
	if err != nil {
		d := newSSHData{Name: name, In: in, Errors: fieldErrors{}, Types: provision.KeyTypes, Defaults: defaultPaths()}
		d.In.PrivateKey, d.In.Password = "", "" // secrets are never sent back
		var inv *errInvalidSSH
		switch {
		case errors.As(err, &inv):
			d.Errors = inv.fields
			d.Message = "Check the fields marked below."
		case errors.Is(err, nodes.ErrNameTaken):
			d.Errors["name"] = "a server with this name exists already; choose another name"
		default:
			pw.c.log.Error("add server over ssh", "error", err)
			d.Message = "The server could not be added because of a problem on our side. Try again in a moment."
		}
		if d.Errors["private_key"] == "" && d.Errors["password"] == "" && (in.PrivateKey != "" || in.Password != "") {
			d.Message += " For your safety the credential was not kept: enter it again."
		}
		d.CustomPaths = in.Paths != (schema.InstallLayout{}) || d.Errors["install_paths"] != ""
		pw.w.Render(w, r, http.StatusUnprocessableEntity, "provision_new", "Add a server over SSH", "/provisioning", d)
		return
	}
	pw.w.Flash(r, "success", fmt.Sprintf("Server %s added. Check and approve its host key, then install the agent.", s.Name))
	http.Redirect(w, r, fmt.Sprintf("/servers/%d/ssh", s.ID), http.StatusSeeOther)
}

// editSSHData is the edit form: the stored settings or the values typed so
// far, never a credential, and a message per field.
type editSSHData struct {
	Server    *ent.Server
	In        sshInput
	Stored    string // the kind of credential stored: "key", "password" or ""
	Generated bool   // the stored key is one Gatehouse generated
	Errors    fieldErrors
	Types     []string
	Defaults  schema.InstallLayout
	// CustomPaths opens the install paths section: some are set or wrong.
	CustomPaths bool
	Message     string
}

func (pw *provisionWeb) renderEdit(w http.ResponseWriter, r *http.Request, status int, s *ent.Server, in sshInput, errs fieldErrors, msg string) {
	in.PrivateKey, in.Password = "", "" // credentials are never sent back
	d := editSSHData{Server: s, In: in, Errors: errs, Types: provision.KeyTypes, Message: msg, Generated: s.SSHPublicKey != ""}
	if len(s.SSHSecret) > 0 {
		d.Stored = string(s.SSHAuth)
	}
	if d.Errors == nil {
		d.Errors = fieldErrors{}
	}
	d.CustomPaths = in.Paths != (schema.InstallLayout{}) || d.Errors["install_paths"] != ""
	d.Defaults = defaultPaths()
	pw.w.Render(w, r, status, "provision_edit", "SSH settings of "+s.Name, "/provisioning", d)
}

func (pw *provisionWeb) editPage(w http.ResponseWriter, r *http.Request) {
	s, ok := pw.pageServer(w, r)
	if !ok {
		return
	}
	if s.SSHHost == "" {
		pw.w.Flash(r, "error", errNoSSH.Error())
		http.Redirect(w, r, fmt.Sprintf("/servers/%d", s.ID), http.StatusSeeOther)
		return
	}
	pw.renderEdit(w, r, http.StatusOK, s, storedInput(s), nil, "")
}

func (pw *provisionWeb) updatePage(w http.ResponseWriter, r *http.Request) {
	s, ok := pw.pageServer(w, r)
	if !ok {
		return
	}
	in := formInput(r)
	if in.HostKeyFP == "" {
		in.HostKeyType = ""
	}
	ed, err := pw.p.updateSSH(r.Context(), pw.w.Actor(r), s.ID, func(sshInput) sshInput { return in })
	if err != nil {
		var inv *errInvalidSSH
		switch {
		case errors.As(err, &inv):
			msg := "Check the fields marked below. Nothing was changed."
			if inv.fields["private_key"] == "" && inv.fields["password"] == "" && (in.PrivateKey != "" || in.Password != "") {
				msg += " For your safety the new credential was not kept: enter it again."
			}
			pw.renderEdit(w, r, http.StatusUnprocessableEntity, s, in, inv.fields, msg)
		case errors.Is(err, errTaskRunning):
			pw.renderEdit(w, r, http.StatusConflict, s, in, nil, "A provisioning task for this server is running, so its SSH settings were not changed. Wait for it to finish, then save again.")
		case errors.Is(err, errNoSSH), errors.Is(err, errNoServer):
			pw.w.Flash(r, "error", errNoSSH.Error())
			http.Redirect(w, r, fmt.Sprintf("/servers/%d", s.ID), http.StatusSeeOther)
		default:
			pw.c.log.Error("edit ssh settings", "server", s.Name, "error", err)
			pw.renderEdit(w, r, http.StatusInternalServerError, s, in, nil, "The SSH settings could not be saved because of a problem on our side. Try again in a moment.")
		}
		return
	}
	msg := "SSH settings of " + s.Name + " saved."
	switch {
	case len(ed.Changes) == 0:
		msg = "Nothing changed in the SSH settings of " + s.Name + "."
	case ed.HostKeyReset:
		msg += " The host or port changed, so the approved host key no longer applies: check the host key and approve it again before provisioning."
	}
	if in.Auth == "generate" {
		msg += " Add the new public key below to authorized_keys on the server."
	}
	pw.w.Flash(r, "success", msg)
	http.Redirect(w, r, fmt.Sprintf("/servers/%d/ssh", s.ID), http.StatusSeeOther)
}

type sshPageData struct {
	Server  *ent.Server
	SSH     sshJSON
	Scan    *scanResult
	ScanErr string
	Tasks   []*ent.Task
	Running bool
}

func (pw *provisionWeb) renderServer(w http.ResponseWriter, r *http.Request, status int, s *ent.Server, scan *scanResult, scanErr string) {
	view, err := pw.sshView(r, s)
	if err != nil {
		http.Error(w, "the server could not be read", http.StatusInternalServerError)
		return
	}
	tasks, err := pw.serverTasks(r, s, 20)
	if err != nil {
		http.Error(w, "the server's tasks could not be read", http.StatusInternalServerError)
		return
	}
	pw.p.mu.Lock()
	_, running := pw.p.running[s.ID]
	pw.p.mu.Unlock()
	d := sshPageData{Server: s, SSH: view, Scan: scan, ScanErr: scanErr, Tasks: tasks, Running: running}
	pw.w.Render(w, r, status, "provision_server", "Provision "+s.Name, "/provisioning", d)
}

func (pw *provisionWeb) pageServer(w http.ResponseWriter, r *http.Request) (*ent.Server, bool) {
	s, err := pw.lookup(r)
	if err != nil {
		pw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/provisioning", map[string]string{"Heading": "No such server", "Message": "It may have been removed."})
		return nil, false
	}
	return s, true
}

func (pw *provisionWeb) serverPage(w http.ResponseWriter, r *http.Request) {
	if s, ok := pw.pageServer(w, r); ok {
		pw.renderServer(w, r, http.StatusOK, s, nil, "")
	}
}

func (pw *provisionWeb) scanPage(w http.ResponseWriter, r *http.Request) {
	s, ok := pw.pageServer(w, r)
	if !ok {
		return
	}
	res, err := pw.p.scan(r.Context(), s)
	if err != nil {
		pw.renderServer(w, r, http.StatusBadGateway, s, nil, err.Error())
		return
	}
	pw.renderServer(w, r, http.StatusOK, s, res, "")
}

func (pw *provisionWeb) approvePage(w http.ResponseWriter, r *http.Request) {
	s, ok := pw.pageServer(w, r)
	if !ok {
		return
	}
	k := provision.KnownKey{Type: r.PostFormValue("type"), Fingerprint: strings.TrimSpace(r.PostFormValue("fingerprint"))}
	back := fmt.Sprintf("/servers/%d/ssh", s.ID)
	if err := pw.p.approve(r.Context(), pw.w.Actor(r), s, k); err != nil {
		var inv *errInvalidSSH
		if errors.As(err, &inv) {
			pw.w.Flash(r, "error", "Host key not approved: "+inv.fields["host_key"])
		} else {
			pw.c.log.Error("approve host key", "error", err)
			pw.w.Flash(r, "error", "The host key could not be approved because of a problem on our side.")
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	pw.w.Flash(r, "success", "Host key "+k.String()+" approved for "+s.Name+".")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (pw *provisionWeb) startPage(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := pw.pageServer(w, r)
		if !ok {
			return
		}
		t, err := pw.p.start(r.Context(), pw.w.Actor(r), s, kind)
		if err != nil {
			msg := err.Error()
			if !errors.Is(err, errNoSSH) && !errors.Is(err, errTaskRunning) {
				pw.c.log.Error("start task", "kind", kind, "error", err)
				msg = "The task could not be started because of a problem on our side."
			}
			pw.w.Flash(r, "error", msg)
			http.Redirect(w, r, fmt.Sprintf("/servers/%d/ssh", s.ID), http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/tasks/%d", t.ID), http.StatusSeeOther)
	}
}

type taskPageData struct {
	Task  *ent.Task
	Topic string
	Done  bool
}

func (pw *provisionWeb) taskPage(w http.ResponseWriter, r *http.Request) {
	t, err := pw.lookupTask(r)
	if err != nil {
		pw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/provisioning", map[string]string{"Heading": "No such task", "Message": "It may have been removed with its server."})
		return
	}
	d := taskPageData{Task: t, Topic: provisionTopics + strconv.Itoa(t.ID), Done: t.Status == task.StatusSucceeded || t.Status == task.StatusFailed}
	pw.w.Render(w, r, http.StatusOK, "task", fmt.Sprintf("Task %d: %s %s", t.ID, t.Kind, t.Subject), "/provisioning", d)
}
