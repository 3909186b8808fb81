package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/nodes"
	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/enrollmenttoken"
	"github.com/gatehousehq/gatehouse/ent/hostkey"
	"github.com/gatehousehq/gatehouse/ent/schema"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/task"
)

// Task kinds run by the provisioner.
const (
	taskProvision = "provision"
	taskUninstall = "uninstall"
)

// enrollWait bounds how long a provisioning task waits for the freshly
// started agent to enroll and open its session.
const enrollWait = 90 * time.Second

// interruptedMessage is the error of a task the controller stopped during.
const interruptedMessage = "interrupted: the controller stopped while this task ran; run it again (re-running is safe)"

// provisioner runs provisioning and uninstall tasks over SSH, one at a time
// per server, in the background of the controller.
type provisioner struct {
	c    *Controller
	prov *provision.Provisioner

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[int]int // server id → task id
}

func newProvisioner(c *Controller) *provisioner {
	ctx, cancel := context.WithCancel(context.Background())
	return &provisioner{c: c, prov: provision.New(c.log), ctx: ctx, cancel: cancel, running: map[int]int{}}
}

// recoverInterrupted marks tasks left running by a previous process as
// failed, so the admin sees what happened and can run them again.
func (p *provisioner) recoverInterrupted(ctx context.Context) error {
	n, err := p.c.db.Client.Task.Update().
		Where(task.KindIn(taskProvision, taskUninstall), task.StatusIn(task.StatusPending, task.StatusRunning)).
		SetStatus(task.StatusFailed).SetError(interruptedMessage).SetFinishedAt(time.Now()).Save(ctx)
	if err != nil {
		return fmt.Errorf("mark interrupted provisioning tasks: %w", err)
	}
	if n > 0 {
		p.c.log.Warn("provisioning tasks were interrupted by the last shutdown", "tasks", n)
	}
	return nil
}

// stop cancels running tasks and waits for them to record their outcome.
func (p *provisioner) stop() {
	p.cancel()
	p.wg.Wait()
}

// sshInput is the SSH access an admin submits for a server. Secrets are
// write-only: they are sealed on arrival and never returned.
type sshInput struct {
	Host           string
	Port           int
	User           string
	Auth           string // "key" (PrivateKey pasted), "generate" or "password"
	PrivateKey     string
	Password       string
	Sudo           bool
	InstallNginx   bool
	InstallGlances bool
	HostKeyType    string // optional pre-approved host key
	HostKeyFP      string
	Paths          schema.InstallLayout
}

// sshSettings is sshInput after validation.
type sshSettings struct {
	in     sshInput
	secret []byte
	pubKey string
	auth   server.SSHAuth
	// keep is set when an edit leaves the credential field empty and a
	// credential of the chosen kind is stored: secret and pubKey stay as
	// they are.
	keep   bool
	key    *provision.KnownKey
	layout *schema.InstallLayout
}

// fieldErrors maps form fields to what is wrong with them.
type fieldErrors map[string]string

func (f fieldErrors) add(field string, err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if prefix, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(prefix, " ") {
		msg = rest // "host: ..." → "..."; the field name is the key
	}
	if f[field] != "" {
		f[field] += "; "
	}
	f[field] += msg
}

// validateSSH checks every field by allowlist and prepares the secret.
// stored is the kind of credential the server already has (SSHAuthNone when
// adding one): an empty key or password field keeps a stored credential of
// the chosen kind instead of being refused.
func validateSSH(in sshInput, stored server.SSHAuth) (*sshSettings, fieldErrors) {
	errs := fieldErrors{}
	errs.add("host", provision.ValidateHost(in.Host))
	errs.add("port", provision.ValidatePort(in.Port))
	errs.add("user", provision.ValidateUser(in.User))
	if in.User != "root" && !in.Sudo && errs["user"] == "" {
		errs["sudo"] = "a user other than root needs sudo to install the agent; turn on sudo or connect as root"
	}
	s := &sshSettings{in: in}
	switch in.Auth {
	case "key":
		s.auth = server.SSHAuthKey
		if strings.TrimSpace(in.PrivateKey) == "" {
			if stored == server.SSHAuthKey {
				s.keep = true
				break
			}
			errs["private_key"] = "paste the private key (OpenSSH or PEM form, without a passphrase)"
			break
		}
		key := []byte(strings.TrimSpace(in.PrivateKey) + "\n")
		if _, err := ssh.ParsePrivateKey(key); err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				errs["private_key"] = "the key is protected by a passphrase; paste an unencrypted key or let Gatehouse generate one"
			} else {
				errs["private_key"] = "not a private key Gatehouse can read (OpenSSH or PEM form)"
			}
			break
		}
		s.secret = key
	case "generate":
		s.auth = server.SSHAuthKey
		priv, pub, err := provision.GenerateKeyPair()
		if err != nil {
			errs["auth"] = err.Error()
			break
		}
		s.secret, s.pubKey = priv, strings.TrimSpace(pub)
	case "password":
		s.auth = server.SSHAuthPassword
		switch {
		case in.Password == "" && stored == server.SSHAuthPassword:
			s.keep = true
		case in.Password == "":
			errs["password"] = "required for password authentication"
		case len(in.Password) > 1024:
			errs["password"] = "at most 1024 characters"
		case strings.ContainsAny(in.Password, "\x00\r\n"):
			errs["password"] = "must not contain NUL or line breaks"
		}
		if !s.keep {
			s.secret = []byte(in.Password)
		}
	default:
		errs["auth"] = `choose "key" (paste a private key), "generate" (Gatehouse makes a key pair) or "password"`
	}
	if in.HostKeyType != "" || in.HostKeyFP != "" {
		k := provision.KnownKey{Type: in.HostKeyType, Fingerprint: strings.TrimSpace(in.HostKeyFP)}
		if err := provision.ValidateKnownKey(k); err != nil {
			errs.add("host_key", err)
		} else {
			s.key = &k
		}
	}
	if in.Paths != (schema.InstallLayout{}) {
		l := in.Paths
		probe := provision.DefaultLayout()
		for _, f := range []struct {
			v   string
			dst *string
		}{{l.BinDir, &probe.BinDir}, {l.StateDir, &probe.StateDir}, {l.ConfigDir, &probe.ConfigDir}, {l.NginxDir, &probe.NginxDir}, {l.UnitDir, &probe.UnitDir}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if err := probe.Validate(); err != nil {
			errs["install_paths"] = strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		if l.NginxConf != "" {
			errs.add("install_paths", provision.ValidateNginxConf(l.NginxConf))
		}
		s.layout = &l
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// secretAAD binds a sealed SSH secret to its table, column and row.
func secretAAD(serverID int) []byte {
	return []byte("servers.ssh_secret." + strconv.Itoa(serverID))
}

// errInvalidSSH carries per-field problems to the handlers.
type errInvalidSSH struct{ fields fieldErrors }

func (e *errInvalidSSH) Error() string { return "the SSH settings are not valid" }

// createSSHServer adds a server with SSH access. When the admin pasted a host
// key it is approved right away.
func (p *provisioner) createSSHServer(ctx context.Context, actor audit.Actor, name string, in sshInput) (*ent.Server, error) {
	errs := fieldErrors{}
	errs.add("name", nodes.ValidName(name))
	s, ferrs := validateSSH(in, server.SSHAuthNone)
	for k, v := range ferrs {
		errs[k] = v
	}
	if len(errs) > 0 {
		return nil, &errInvalidSSH{fields: errs}
	}
	srv, err := p.c.registry.Create(ctx, name, in.Host, false)
	if err != nil {
		return nil, err
	}
	id := srv.ID
	sealed, err := p.c.box.Seal(s.secret, secretAAD(id))
	if err == nil {
		upd := p.c.db.Client.Server.UpdateOneID(srv.ID).
			SetSSHHost(in.Host).SetSSHPort(in.Port).SetSSHUser(in.User).SetSSHAuth(s.auth).SetSSHSecret(sealed).
			SetSSHPublicKey(s.pubKey).SetSSHSudo(in.Sudo).SetInstallNginx(in.InstallNginx).SetInstallGlances(in.InstallGlances)
		if s.layout != nil {
			upd.SetInstallLayout(s.layout)
		}
		srv, err = upd.Save(ctx)
	}
	if err != nil {
		if derr := p.c.registry.Delete(ctx, id); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("store SSH settings: %w", err)
	}
	detail := fmt.Sprintf("ssh %s@%s:%d, auth %s, sudo %t", in.User, in.Host, in.Port, in.Auth, in.Sudo)
	p.record(ctx, actor, "server.create", srv, detail)
	if s.key != nil {
		if err := p.approve(ctx, actor, srv, *s.key); err != nil {
			return nil, err
		}
	}
	return srv, nil
}

// storedInput is a server's SSH settings as an edit starts from: the
// credential fields are empty, which keeps the stored credential.
func storedInput(s *ent.Server) sshInput {
	in := sshInput{Host: s.SSHHost, Port: s.SSHPort, User: s.SSHUser, Auth: string(s.SSHAuth),
		Sudo: s.SSHSudo, InstallNginx: s.InstallNginx, InstallGlances: s.InstallGlances}
	if s.InstallLayout != nil {
		in.Paths = *s.InstallLayout
	}
	return in
}

// sshEdit is the outcome of updateSSH.
type sshEdit struct {
	Server *ent.Server
	// HostKeyReset is set when the host or port changed, so any approved
	// host key was withdrawn and the new address's key awaits approval.
	HostKeyReset bool
	// Changes lists what changed, for the audit log and the admin; empty
	// when the settings were saved as they were.
	Changes []string
}

// updateSSH replaces a server's SSH settings with what edit makes of the
// stored ones (see storedInput), validated exactly as when the server was
// added. An empty credential field keeps the stored credential of that kind;
// auth "generate" makes a new key pair.
//
// An approved host key vouches for whoever answers at one host and port, so
// changing either withdraws the approvals in the same transaction: the next
// provisioning run stops at "unknown host key" until an admin scans and
// approves the key of the new address (or pastes it with the edit).
//
// The edit is refused with errTaskRunning while a provisioning or uninstall
// task for the server runs, and the provisioner's lock is held until the
// change is stored, so no task starts with half-old settings.
func (p *provisioner) updateSSH(ctx context.Context, actor audit.Actor, serverID int, edit func(current sshInput) sshInput) (*sshEdit, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, err := p.c.db.Client.Server.Get(ctx, serverID)
	if ent.IsNotFound(err) {
		return nil, errNoServer
	}
	if err != nil {
		return nil, err
	}
	if old.SSHHost == "" || old.Local {
		return nil, errNoSSH
	}
	if _, busy := p.running[serverID]; busy {
		return nil, errTaskRunning
	}
	stored := old.SSHAuth
	if len(old.SSHSecret) == 0 {
		stored = server.SSHAuthNone
	}
	in := edit(storedInput(old))
	s, errs := validateSSH(in, stored)
	if len(errs) > 0 {
		return nil, &errInvalidSSH{fields: errs}
	}

	var changes []string
	changed := func(what string, before, after any) {
		if before != after {
			changes = append(changes, fmt.Sprintf("%s %v → %v", what, before, after))
		}
	}
	changed("host", old.SSHHost, in.Host)
	changed("port", old.SSHPort, in.Port)
	changed("user", old.SSHUser, in.User)
	changed("auth", old.SSHAuth, s.auth)
	changed("sudo", old.SSHSudo, in.Sudo)
	changed("install nginx", old.InstallNginx, in.InstallNginx)
	changed("install glances", old.InstallGlances, in.InstallGlances)
	var oldLayout, newLayout schema.InstallLayout
	if old.InstallLayout != nil {
		oldLayout = *old.InstallLayout
	}
	if s.layout != nil {
		newLayout = *s.layout
	}
	if oldLayout != newLayout {
		changes = append(changes, "install paths")
	}
	switch {
	case in.Auth == "generate":
		changes = append(changes, "new key pair generated")
	case !s.keep:
		changes = append(changes, "credential replaced")
	}
	reset := old.SSHHost != in.Host || old.SSHPort != in.Port

	var sealed []byte
	if !s.keep {
		if sealed, err = p.c.box.Seal(s.secret, secretAAD(old.ID)); err != nil {
			return nil, fmt.Errorf("seal the SSH credential: %w", err)
		}
	}
	tx, err := p.c.db.Client.Tx(ctx)
	if err != nil {
		return nil, err
	}
	upd := tx.Server.UpdateOneID(old.ID).
		SetSSHHost(in.Host).SetSSHPort(in.Port).SetSSHUser(in.User).SetSSHAuth(s.auth).
		SetSSHSudo(in.Sudo).SetInstallNginx(in.InstallNginx).SetInstallGlances(in.InstallGlances)
	if !s.keep {
		upd.SetSSHSecret(sealed).SetSSHPublicKey(s.pubKey)
	}
	if s.layout != nil {
		upd.SetInstallLayout(s.layout)
	} else {
		upd.ClearInstallLayout()
	}
	if old.Address == old.SSHHost {
		upd.SetAddress(in.Host) // the address was taken from the SSH host when the server was added
	}
	srv, err := upd.Save(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store SSH settings: %w", err), tx.Rollback())
	}
	var withdrawn []string
	if reset {
		keys, err := tx.HostKey.Query().Where(hostkey.HasServerWith(server.ID(old.ID))).All(ctx)
		if err == nil {
			_, err = tx.HostKey.Delete().Where(hostkey.HasServerWith(server.ID(old.ID))).Exec(ctx)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("withdraw host key approvals: %w", err), tx.Rollback())
		}
		for _, k := range keys {
			withdrawn = append(withdrawn, k.KeyType+" "+k.Fingerprint)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store SSH settings: %w", err)
	}
	if len(changes) > 0 {
		detail := fmt.Sprintf("ssh %s@%s:%d, auth %s, sudo %t; changed: %s", in.User, in.Host, in.Port, s.auth, in.Sudo, strings.Join(changes, ", "))
		if len(withdrawn) > 0 {
			detail += "; host key approval withdrawn: " + strings.Join(withdrawn, ", ")
		}
		p.record(ctx, actor, "server.ssh.update", srv, detail)
	}
	if s.key != nil {
		if err := p.approve(ctx, actor, srv, *s.key); err != nil {
			return nil, err
		}
		reset = false
	}
	return &sshEdit{Server: srv, HostKeyReset: reset, Changes: changes}, nil
}

func (p *provisioner) record(ctx context.Context, actor audit.Actor, action string, s *ent.Server, detail string) {
	if err := p.c.audit.Record(ctx, audit.For(actor, action, "server:"+s.Name, detail)); err != nil {
		p.c.log.Error("audit", "action", action, "error", err)
	}
}

// approvedKeys returns the server's approved host keys.
func (p *provisioner) approvedKeys(ctx context.Context, serverID int) ([]*ent.HostKey, error) {
	return p.c.db.Client.HostKey.Query().Where(hostkey.HasServerWith(server.ID(serverID))).
		Order(ent.Asc(hostkey.FieldID)).All(ctx)
}

func (p *provisioner) policy(ctx context.Context, serverID int) (provision.HostKeyPolicy, error) {
	keys, err := p.approvedKeys(ctx, serverID)
	if err != nil {
		return provision.HostKeyPolicy{}, err
	}
	var pol provision.HostKeyPolicy
	for _, k := range keys {
		pol.Approved = append(pol.Approved, provision.KnownKey{Type: k.KeyType, Fingerprint: k.Fingerprint})
	}
	return pol, nil
}

// approve makes k the server's only approved host key, replacing any other,
// and writes the change to the audit log.
func (p *provisioner) approve(ctx context.Context, actor audit.Actor, s *ent.Server, k provision.KnownKey) error {
	if err := provision.ValidateKnownKey(k); err != nil {
		return &errInvalidSSH{fields: fieldErrors{"host_key": strings.ReplaceAll(err.Error(), "\n", "; ")}}
	}
	old, err := p.approvedKeys(ctx, s.ID)
	if err != nil {
		return err
	}
	var replaced []string
	for _, o := range old {
		if o.KeyType == k.Type && o.Fingerprint == k.Fingerprint && len(old) == 1 {
			return nil // already the approved key
		}
		replaced = append(replaced, o.KeyType+" "+o.Fingerprint)
	}
	tx, err := p.c.db.Client.Tx(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.HostKey.Delete().Where(hostkey.HasServerWith(server.ID(s.ID))).Exec(ctx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.HostKey.Create().SetServerID(s.ID).SetKeyType(k.Type).SetFingerprint(k.Fingerprint).
		SetApprovedAt(time.Now()).SetApprovedBy(actor.Name).Exec(ctx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	detail := "approved " + k.String()
	action := "server.hostkey.approve"
	if len(replaced) > 0 {
		action = "server.hostkey.reapprove"
		detail += ", replacing " + strings.Join(replaced, ", ")
	}
	p.record(ctx, actor, action, s, detail)
	return nil
}

// scanResult is what a host key scan found compared with the approved keys.
type scanResult struct {
	Presented provision.KnownKey
	Status    string // "unknown", "approved" or "changed"
	Approved  []provision.KnownKey
}

// scan reads the host key the server presents, without authenticating.
func (p *provisioner) scan(ctx context.Context, s *ent.Server) (*scanResult, error) {
	if s.SSHHost == "" {
		return nil, errNoSSH
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := provision.ScanHostKey(ctx, s.SSHHost, s.SSHPort)
	if err != nil {
		return nil, err
	}
	pol, err := p.policy(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	res := &scanResult{Presented: got, Status: "unknown", Approved: pol.Approved}
	for _, k := range pol.Approved {
		if k == got {
			res.Status = "approved"
		}
	}
	if res.Status == "unknown" && len(pol.Approved) > 0 {
		res.Status = "changed"
	}
	return res, nil
}

var (
	errNoSSH       = errors.New("this server has no SSH settings; add it with SSH access to provision it")
	errTaskRunning = errors.New("a provisioning task for this server is running; wait for it to finish")
)

// start records a task of kind for the server and runs it in the background.
func (p *provisioner) start(ctx context.Context, actor audit.Actor, s *ent.Server, kind string) (*ent.Task, error) {
	if s.SSHHost == "" || s.SSHAuth == server.SSHAuthNone {
		return nil, errNoSSH
	}
	if p.ctx.Err() != nil {
		return nil, errors.New("the controller is shutting down")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, busy := p.running[s.ID]; busy {
		return nil, errTaskRunning
	}
	now := time.Now()
	t, err := p.c.db.Client.Task.Create().SetKind(kind).SetSubject(s.Name).SetServerID(s.ID).
		SetStatus(task.StatusRunning).SetStartedAt(now).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record task: %w", err)
	}
	p.running[s.ID] = t.ID
	p.record(ctx, actor, "server."+kind, s, "task "+strconv.Itoa(t.ID))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.running, s.ID)
			p.mu.Unlock()
		}()
		p.run(t, s.ID, kind)
	}()
	return t, nil
}

// provisionTopics prefixes the event topic of each provisioning task: its
// log is for admins only, like its pages and API.
const provisionTopics = "provision."

// taskLog accumulates a task's log, saves it after every step and streams
// each step on the topic provision.<id>.
type taskLog struct {
	p     *provisioner
	id    int
	topic string
	mu    sync.Mutex
	b     strings.Builder
}

func (l *taskLog) step(s provision.Step) {
	l.mu.Lock()
	status := "ok"
	if s.Err != nil {
		status = "failed"
	}
	entry := fmt.Sprintf("== %s (%s) %s\n", s.Name, s.Duration.Round(time.Millisecond), status)
	out := strings.TrimRight(s.Output, "\n")
	if out != "" {
		entry += out + "\n"
	}
	if s.Err != nil {
		entry += "error: " + s.Err.Error() + "\n"
	}
	l.b.WriteString(entry)
	full := l.b.String()
	l.mu.Unlock()
	// The log is saved even while the controller shuts down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.p.ctx), 10*time.Second)
	defer cancel()
	if err := l.p.c.db.Client.Task.UpdateOneID(l.id).SetLog(full).Exec(ctx); err != nil {
		l.p.c.log.Error("save task log", "task", l.id, "error", err)
	}
	data := map[string]any{"task_id": l.id, "step": s.Name, "status": status, "duration_ms": s.Duration.Milliseconds(), "text": entry}
	l.p.c.events.Publish(events.Event{Topic: l.topic, Name: "task.step", Data: data})
}

// run executes one task to its end and records the outcome.
func (p *provisioner) run(t *ent.Task, serverID int, kind string) {
	ctx := p.ctx
	log := &taskLog{p: p, id: t.ID, topic: provisionTopics + strconv.Itoa(t.ID)}
	var err error
	switch kind {
	case taskProvision:
		err = p.provision(ctx, serverID, log)
	case taskUninstall:
		err = p.uninstall(ctx, serverID, log)
	default:
		err = fmt.Errorf("unknown task kind %q", kind)
	}
	status, msg := task.StatusSucceeded, ""
	if err != nil {
		status, msg = task.StatusFailed, err.Error()
		if ctx.Err() != nil {
			msg = interruptedMessage + " (" + msg + ")"
		}
	}
	save, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.c.db.Client.Task.UpdateOneID(t.ID).SetStatus(status).SetError(msg).SetFinishedAt(time.Now()).Exec(save); err != nil {
		p.c.log.Error("save task outcome", "task", t.ID, "error", err)
	}
	p.c.log.Info("task finished", "task", t.ID, "kind", kind, "server", serverID, "status", status, "error", msg)
	p.c.events.Publish(events.Event{Topic: log.topic, Name: "task.done", Data: map[string]any{"task_id": t.ID, "status": string(status), "error": msg}})
	p.c.events.Publish(events.Event{Topic: "servers", Name: "server.task", Data: map[string]any{"id": serverID, "task_id": t.ID, "kind": kind, "status": string(status)}})
}

// target opens the sealed credential and describes the node.
func (p *provisioner) target(s *ent.Server) (provision.Target, error) {
	secret, err := p.c.box.Open(s.SSHSecret, secretAAD(s.ID))
	if err != nil {
		return provision.Target{}, fmt.Errorf("open the stored SSH credential: %w", err)
	}
	t := provision.Target{Host: s.SSHHost, Port: s.SSHPort, User: s.SSHUser, Sudo: s.SSHSudo}
	switch s.SSHAuth {
	case server.SSHAuthKey:
		t.Auth.PrivateKeyPEM = secret
	case server.SSHAuthPassword:
		t.Auth.Password = string(secret)
	default:
		return provision.Target{}, errNoSSH
	}
	return t, nil
}

// plan describes what to install, without the token and bootstrap.
func (p *provisioner) plan(s *ent.Server) provision.Plan {
	pl := provision.Plan{InstallNginx: s.InstallNginx, InstallGlances: s.InstallGlances, AgentBinary: p.agentBuild}
	if l := s.InstallLayout; l != nil {
		pl.Layout = provision.Layout{BinDir: l.BinDir, StateDir: l.StateDir, ConfigDir: l.ConfigDir, NginxDir: l.NginxDir, UnitDir: l.UnitDir}
		pl.NginxConf = l.NginxConf
	}
	return pl
}

// agentBuild opens the agent build for a platform from agent_dist_dir.
func (p *provisioner) agentBuild(pl provision.Platform) (io.ReadCloser, error) {
	name := "gatehouse-agent-" + pl.OS + "-" + pl.Arch
	f, err := os.Open(filepath.Join(p.c.cfg.AgentDistDir, name))
	if err != nil {
		return nil, fmt.Errorf("%w; build it with make build or point agent_dist_dir at a directory holding %s", err, name)
	}
	return f, nil
}

// provision installs the agent, then waits until it has enrolled and opened
// its session.
func (p *provisioner) provision(ctx context.Context, serverID int, log *taskLog) error {
	s, err := p.c.db.Client.Server.Get(ctx, serverID)
	if err != nil {
		return err
	}
	target, err := p.target(s)
	if err != nil {
		return err
	}
	pol, err := p.policy(ctx, s.ID)
	if err != nil {
		return err
	}
	if s.Status == server.StatusRemoved {
		// Provisioning again brings an uninstalled server back.
		if err := p.c.db.Client.Server.UpdateOneID(s.ID).SetStatus(server.StatusPending).Exec(ctx); err != nil {
			return err
		}
	}
	token, _, err := p.c.registry.IssueToken(ctx, s.ID, p.c.cfg.TokenLifetime)
	if err != nil {
		return err
	}
	plan := p.plan(s)
	plan.Token = token
	plan.Bootstrap = []byte(fmt.Sprintf("# Gatehouse agent bootstrap for %s\ncontroller=%s\nca_pin=%s\n", s.Name, p.c.cfg.AgentAddress, p.c.ca.Pin()))
	var started time.Time
	_, err = p.prov.Provision(ctx, target, pol, plan, func(st provision.Step) {
		if st.Name == "bootstrap" {
			started = time.Now() // the service step (re)starts the agent after this
		}
		log.step(st)
	})
	if err != nil {
		return err
	}
	begin := time.Now()
	err = p.waitOnline(ctx, s.ID, started)
	st := provision.Step{Name: "enroll", Duration: time.Since(begin), Err: err}
	if err == nil {
		// A node that already had an identity did not need this run's token.
		n, derr := p.c.db.Client.EnrollmentToken.Delete().
			Where(enrollmenttoken.HasServerWith(server.ID(s.ID)), enrollmenttoken.UsedAtIsNil()).Exec(ctx)
		if derr != nil {
			p.c.log.Warn("discard unused enrollment tokens", "server", s.Name, "error", derr)
		}
		st.Output = fmt.Sprintf("# agent connected over mutual TLS to %s", p.c.cfg.AgentAddress)
		if n > 0 {
			st.Output += fmt.Sprintf("\n# %d unused enrollment token(s) discarded", n)
		}
	}
	log.step(st)
	return err
}

// waitOnline waits for a session of the server's agent that began after since.
func (p *provisioner) waitOnline(ctx context.Context, serverID int, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, enrollWait)
	defer cancel()
	id := strconv.Itoa(serverID)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.c.hub.Connected(id) {
			s, err := p.c.db.Client.Server.Get(ctx, serverID)
			if err == nil && s.LastSeenAt != nil && !s.LastSeenAt.Before(since.Add(-time.Millisecond)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the agent did not connect within %s: check that the node can reach %s (agent_address) and read the agent's log on the node", enrollWait, p.c.cfg.AgentAddress)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// uninstall removes the agent from the node, then revokes its certificates
// and marks the server removed.
func (p *provisioner) uninstall(ctx context.Context, serverID int, log *taskLog) error {
	s, err := p.c.db.Client.Server.Get(ctx, serverID)
	if err != nil {
		return err
	}
	target, err := p.target(s)
	if err != nil {
		return err
	}
	pol, err := p.policy(ctx, s.ID)
	if err != nil {
		return err
	}
	if err := p.prov.Uninstall(ctx, target, pol, p.plan(s), log.step); err != nil {
		return err
	}
	begin := time.Now()
	n, err := p.c.registry.Revoke(ctx, s.ID)
	if err == nil {
		_, err = p.c.db.Client.EnrollmentToken.Delete().
			Where(enrollmenttoken.HasServerWith(server.ID(s.ID)), enrollmenttoken.UsedAtIsNil()).Exec(ctx)
	}
	if err == nil {
		err = p.c.db.Client.Server.UpdateOneID(s.ID).SetStatus(server.StatusRemoved).Exec(ctx)
	}
	st := provision.Step{Name: "revoke", Duration: time.Since(begin), Err: err,
		Output: fmt.Sprintf("# %d certificate(s) revoked; the server is marked removed", n)}
	log.step(st)
	if err == nil {
		p.c.events.Publish(events.Event{Topic: "servers", Name: "server.status", Data: map[string]any{"id": s.ID, "status": "removed"}})
	}
	return err
}
