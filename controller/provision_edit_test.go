package controller

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/hostkey"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
)

// editEnv is a running controller with an admin and a non-admin, each with an
// API token.
type editEnv struct {
	t          *testing.T
	c          *Controller
	base       string
	admin      string // API token of an admin
	user       string // API token of a user without the admin role
	logs       *syncbuf.Buffer
	adminLogin url.Values
	userLogin  url.Values
}

func newEditEnv(t *testing.T) *editEnv {
	t.Helper()
	logs := &syncbuf.Buffer{}
	c, stop := start(t, testConfig(t, t.TempDir()), logs, io.Discard)
	t.Cleanup(stop)
	e := &editEnv{t: t, c: c, base: "http://" + c.HTTPAddr(), logs: logs}
	ctx := context.Background()
	for _, u := range []struct {
		name, role string
		token      *string
		login      *url.Values
	}{{"ops", auth.RoleAdmin, &e.admin, &e.adminLogin}, {"viewer", auth.RoleUser, &e.user, &e.userLogin}} {
		pw := "long enough password for " + u.name
		created, err := c.users.Create(ctx, audit.System("test"), u.name, pw, u.role)
		if err != nil {
			t.Fatal(err)
		}
		if _, *u.token, err = newTokenForTest(c, created.ID); err != nil {
			t.Fatal(err)
		}
		*u.login = url.Values{"username": {u.name}, "password": {pw}}
	}
	return e
}

// api sends a JSON request with a bearer token ("" for none) and decodes the
// answer into out when it is not nil.
func (e *editEnv) api(method, path, token string, body, out any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

type apiFields struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// create adds a server over SSH through the API.
func (e *editEnv) create(body map[string]any) int {
	e.t.Helper()
	var out struct {
		Server sshJSON `json:"server"`
	}
	if code, b := e.api("POST", "/api/v1/servers/ssh", e.admin, body, &out); code != http.StatusCreated {
		e.t.Fatalf("add server: %d %s", code, b)
	}
	return out.Server.ServerID
}

func (e *editEnv) patch(id int, body any, out any) (int, string) {
	e.t.Helper()
	return e.api("PATCH", fmt.Sprintf("/api/v1/servers/%d/ssh", id), e.admin, body, out)
}

func (e *editEnv) get(id int) sshJSON {
	e.t.Helper()
	var v sshJSON
	if code, b := e.api("GET", fmt.Sprintf("/api/v1/servers/%d/ssh", id), e.admin, nil, &v); code != http.StatusOK {
		e.t.Fatalf("GET ssh settings: %d %s", code, b)
	}
	return v
}

func (e *editEnv) row(id int) *ent.Server {
	e.t.Helper()
	s, err := e.c.db.Client.Server.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// state is every column of the server's row that an edit could touch, the
// sealed credential included, as comparable text.
func (e *editEnv) state(id int) string {
	e.t.Helper()
	s := e.row(id)
	var layout any
	if s.InstallLayout != nil {
		layout = *s.InstallLayout
	}
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s|%x|%s|%t|%t|%t|%+v|%d|%v",
		s.Name, s.Address, s.SSHHost, s.SSHPort, s.SSHUser, s.SSHAuth, s.SSHSecret, s.SSHPublicKey,
		s.SSHSudo, s.InstallNginx, s.InstallGlances, layout, s.UpdatedAt.UnixNano(), e.hostKeys(id))
}

// secret opens the server's sealed credential as the provisioner does.
func (e *editEnv) secret(id int) string {
	e.t.Helper()
	s := e.row(id)
	plain, err := e.c.box.Open(s.SSHSecret, secretAAD(id))
	if err != nil {
		e.t.Fatalf("open the sealed credential: %v", err)
	}
	if bytes.Contains(s.SSHSecret, plain) {
		e.t.Fatalf("the SSH credential is stored in plain text")
	}
	return string(plain)
}

func (e *editEnv) auditEvents(action string) []string {
	e.t.Helper()
	var out struct {
		Events []struct {
			Action string `json:"action"`
			Detail string `json:"detail"`
		} `json:"events"`
	}
	e.api("GET", "/api/v1/audit?limit=200", e.admin, nil, &out)
	var details []string
	for _, ev := range out.Events {
		if ev.Action == action {
			details = append(details, ev.Detail)
		}
	}
	return details
}

// browser signs in through the login form and returns a client that keeps
// the session and does not follow redirects.
func (e *editEnv) browser(login url.Values) *http.Client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if login == nil {
		return cl
	}
	resp, err := cl.PostForm(e.base+"/login", login)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return cl
}

func send(t *testing.T, cl *http.Client, method, u string, form url.Values) (int, string, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "GET" {
		resp, err = cl.Get(u)
	} else {
		resp, err = cl.PostForm(u, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

const oldPassword = "old secret pw 1"

func passwordServer(name string) map[string]any {
	return map[string]any{"name": name, "host": "192.0.2.10", "port": 22, "user": "root", "auth": "password",
		"password": oldPassword, "install_glances": true}
}

func TestEditSSHSettingsThroughTheAPI(t *testing.T) {
	e := newEditEnv(t)
	id := e.create(passwordServer("web-1"))

	// Port and user change; everything else and the credential stay.
	var view sshJSON
	if code, b := e.patch(id, map[string]any{"port": 2222, "user": "deploy", "sudo": true}, &view); code != http.StatusOK {
		t.Fatalf("edit port and user: %d %s", code, b)
	}
	got := e.get(id)
	if got.Port != 2222 || got.User != "deploy" || !got.Sudo || got.Host != "192.0.2.10" || got.Auth != "password" || !got.HasCredential || !got.InstallGlances {
		t.Fatalf("after the edit GET shows %+v", got)
	}
	if !reflect.DeepEqual(view, got) {
		t.Fatalf("the PATCH answered %+v, GET shows %+v", view, got)
	}
	if s := e.secret(id); s != oldPassword {
		t.Fatalf("a blank credential changed the stored password to %q", s)
	}

	// An empty string keeps it too; a new password replaces it.
	if code, b := e.patch(id, map[string]any{"password": ""}, nil); code != http.StatusOK {
		t.Fatalf("edit with an empty password: %d %s", code, b)
	}
	if s := e.secret(id); s != oldPassword {
		t.Fatalf("an empty password replaced the stored one with %q", s)
	}
	const newPassword = "new secret pw 2"
	if code, b := e.patch(id, map[string]any{"password": newPassword}, nil); code != http.StatusOK || strings.Contains(b, newPassword) {
		t.Fatalf("replace the password: %d %s", code, b)
	}
	if s := e.secret(id); s != newPassword {
		t.Fatalf("the password was not replaced: %q", s)
	}

	// Switching to key auth needs a key, with the same message as when adding.
	var fail, createFail apiFields
	if code, _ := e.patch(id, map[string]any{"auth": "key"}, &fail); code != http.StatusUnprocessableEntity {
		t.Fatalf("switch to key auth without a key: %d", code)
	}
	body := passwordServer("web-2")
	body["auth"] = "key"
	e.api("POST", "/api/v1/servers/ssh", e.admin, body, &createFail)
	if fail.Error.Fields["private_key"] == "" || fail.Error.Fields["private_key"] != createFail.Error.Fields["private_key"] {
		t.Fatalf("edit says %q, adding says %q", fail.Error.Fields["private_key"], createFail.Error.Fields["private_key"])
	}

	// "generate" makes a new key pair; a later blank edit keeps that key.
	if code, b := e.patch(id, map[string]any{"auth": "generate"}, &view); code != http.StatusOK {
		t.Fatalf("generate a key: %d %s", code, b)
	}
	if view.Auth != "key" || !strings.HasPrefix(view.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("after generating a key: %+v", view)
	}
	generated := e.secret(id)
	signer, err := ssh.ParsePrivateKey([]byte(generated))
	if err != nil {
		t.Fatal(err)
	}
	shown, _, _, _, err := ssh.ParseAuthorizedKey([]byte(view.PublicKey))
	if err != nil || !bytes.Equal(shown.Marshal(), signer.PublicKey().Marshal()) {
		t.Fatalf("the stored key is not the shown public key's pair: %v", err)
	}
	if code, b := e.patch(id, map[string]any{"auth": "key", "port": 2200}, &view); code != http.StatusOK {
		t.Fatalf("edit keeping the generated key: %d %s", code, b)
	}
	if e.secret(id) != generated || !strings.HasPrefix(view.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("a blank key field dropped the generated key: %+v", view)
	}
	// A pasted key replaces it, and the old public half is no longer shown.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	pasted := string(pem.EncodeToMemory(block))
	view = sshJSON{} // public_key is left out when empty
	if code, b := e.patch(id, map[string]any{"private_key": pasted}, &view); code != http.StatusOK || strings.Contains(b, "PRIVATE KEY") {
		t.Fatalf("paste a key: %d %s", code, b)
	}
	if strings.TrimSpace(e.secret(id)) != strings.TrimSpace(pasted) || view.PublicKey != "" || view.Auth != "key" {
		t.Fatalf("the pasted key did not replace the generated one: %+v", view)
	}

	// Install paths: set, then back to the defaults with {}.
	paths := map[string]string{"bin_dir": "/opt/gh/bin", "nginx_conf": "/opt/nginx/nginx.conf"}
	if code, b := e.patch(id, map[string]any{"install_paths": paths}, &view); code != http.StatusOK {
		t.Fatalf("set install paths: %d %s", code, b)
	}
	if view.InstallPaths == nil || view.InstallPaths.BinDir != "/opt/gh/bin" || view.InstallPaths.NginxConf != "/opt/nginx/nginx.conf" {
		t.Fatalf("install paths: %+v", view.InstallPaths)
	}
	view = sshJSON{}
	if code, _ := e.patch(id, map[string]any{"install_paths": map[string]string{}}, &view); code != http.StatusOK || view.InstallPaths != nil {
		t.Fatalf("reset install paths: %d %+v", code, view.InstallPaths)
	}

	// Unknown servers and fields.
	for _, path := range []string{"/api/v1/servers/9999/ssh", "/api/v1/servers/abc/ssh", "/api/v1/servers/0/ssh"} {
		if code, _ := e.api("PATCH", path, e.admin, map[string]any{"port": 22}, nil); code != http.StatusNotFound {
			t.Errorf("PATCH %s: %d, want 404", path, code)
		}
	}
	if code, _ := e.patch(id, map[string]any{"name": "renamed"}, nil); code != http.StatusBadRequest {
		t.Errorf("PATCH with a name: %d, want 400 (the name is not an SSH setting)", code)
	}

	// The audit log names what changed, never a credential.
	details := e.auditEvents("server.ssh.update")
	all := strings.Join(details, "\n")
	for _, want := range []string{"port 22 → 2222", "user root → deploy", "credential replaced", "new key pair generated", "install paths"} {
		if !strings.Contains(all, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, all)
		}
	}
	for _, secret := range []string{oldPassword, newPassword, generated[40:80], pasted[40:80]} {
		if strings.Contains(all, secret) || strings.Contains(e.logs.String(), secret) {
			t.Errorf("a credential is in the audit log or the controller log")
		}
	}
}

// TestEditSSHRefusesHostileInput: every refused edit names the field and
// leaves the row, its credential and its approved host key as they were.
func TestEditSSHRefusesHostileInput(t *testing.T) {
	e := newEditEnv(t)
	body := passwordServer("web-1")
	body["host_key"] = map[string]string{"type": "ssh-ed25519", "fingerprint": "SHA256:" + strings.Repeat("A", 43)}
	id := e.create(body)
	before := e.state(id)
	keysBefore := e.hostKeys(id)
	if len(keysBefore) != 1 {
		t.Fatalf("the pasted host key was not approved: %v", keysBefore)
	}
	for _, h := range []struct {
		field string
		patch map[string]any
	}{
		{"host", map[string]any{"host": "192.0.2.10;touch /tmp/pwned"}},
		{"host", map[string]any{"host": "$(touch /tmp/pwned)"}},
		{"host", map[string]any{"host": "a\nb"}},
		{"host", map[string]any{"host": ""}},
		{"port", map[string]any{"port": 70000}},
		{"port", map[string]any{"port": -1}},
		{"user", map[string]any{"user": "root'\""}},
		{"user", map[string]any{"user": "`touch /tmp/pwned`"}},
		{"sudo", map[string]any{"user": "deploy", "sudo": false}},
		{"auth", map[string]any{"auth": "key;rm"}},
		{"password", map[string]any{"password": "pw\ntouch /tmp/pwned"}},
		{"password", map[string]any{"password": strings.Repeat("x", 1025)}},
		{"private_key", map[string]any{"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n"}},
		{"install_paths", map[string]any{"install_paths": map[string]string{"bin_dir": "/tmp/$(touch /tmp/pwned)"}}},
		{"install_paths", map[string]any{"install_paths": map[string]string{"nginx_conf": "relative/nginx.conf"}}},
		{"host_key", map[string]any{"host": "192.0.2.11", "host_key": map[string]string{"type": "ssh-ed25519", "fingerprint": "SHA256:x;rm"}}},
	} {
		var fail apiFields
		code, b := e.patch(id, h.patch, &fail)
		if code != http.StatusUnprocessableEntity || fail.Error.Fields[h.field] == "" {
			t.Errorf("hostile %s %v: %d %s, want 422 with a message for %s", h.field, h.patch, code, b, h.field)
		}
		// Adding a server with the same value gives the same message.
		create := passwordServer("hostile")
		for k, v := range h.patch {
			create[k] = v
		}
		if _, ok := h.patch["private_key"]; ok {
			create["auth"] = "key"
		}
		var cf apiFields
		e.api("POST", "/api/v1/servers/ssh", e.admin, create, &cf)
		if cf.Error.Fields[h.field] != fail.Error.Fields[h.field] {
			t.Errorf("%s: editing says %q, adding says %q", h.field, fail.Error.Fields[h.field], cf.Error.Fields[h.field])
		}
	}
	after := e.state(id)
	if before != after {
		t.Fatalf("refused edits changed the server:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := e.hostKeys(id); !reflect.DeepEqual(got, keysBefore) {
		t.Fatalf("refused edits changed the approved host keys: %v, want %v", got, keysBefore)
	}
	if len(e.auditEvents("server.ssh.update")) != 0 {
		t.Fatal("a refused edit was written to the audit log")
	}
}

func (e *editEnv) hostKeys(id int) []string {
	e.t.Helper()
	keys, err := e.c.db.Client.HostKey.Query().Where(hostkey.HasServerWith(server.ID(id))).All(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyType+" "+k.Fingerprint)
	}
	return out
}

func TestEditSSHNeedsTheAdminRole(t *testing.T) {
	e := newEditEnv(t)
	id := e.create(passwordServer("web-1"))
	before := e.state(id)
	path := fmt.Sprintf("/api/v1/servers/%d/ssh", id)
	if code, _ := e.api("PATCH", path, e.user, map[string]any{"port": 2222}, nil); code != http.StatusForbidden {
		t.Errorf("a non-admin's PATCH: %d, want 403", code)
	}
	if code, _ := e.api("PATCH", path, "", map[string]any{"port": 2222}, nil); code != http.StatusUnauthorized {
		t.Errorf("an anonymous PATCH: %d, want 401", code)
	}
	page := fmt.Sprintf("%s/servers/%d/ssh/edit", e.base, id)
	form := url.Values{"host": {"192.0.2.10"}, "port": {"2222"}, "user": {"root"}, "auth": {"password"}}
	anon, viewer := e.browser(nil), e.browser(e.userLogin)
	if code, loc, _ := send(t, anon, "GET", page, nil); code != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape(fmt.Sprintf("/servers/%d/ssh/edit", id)) {
		t.Errorf("anonymous edit page: %d to %q, want the login redirect", code, loc)
	}
	if code, loc, _ := send(t, anon, "POST", page, form); code != http.StatusSeeOther || loc != "/login" {
		t.Errorf("anonymous edit post: %d to %q, want the login redirect", code, loc)
	}
	if code, _, _ := send(t, viewer, "GET", page, nil); code != http.StatusForbidden {
		t.Errorf("a non-admin's edit page: %d, want 403", code)
	}
	if code, _, _ := send(t, viewer, "POST", page, form); code != http.StatusForbidden {
		t.Errorf("a non-admin's edit post: %d, want 403", code)
	}
	if after := e.state(id); after != before {
		t.Fatalf("a refused edit changed the server: %+v", after)
	}
}

// sshHost is an in-process SSH server on loopback that presents a host key
// and refuses every credential, which is as far as these tests need
// provisioning to get.
type sshHost struct {
	port int
}

func startSSHHost(t *testing.T, key ssh.Signer) sshHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PasswordCallback:  func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, fmt.Errorf("denied") },
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, fmt.Errorf("denied") },
	}
	cfg.AddHostKey(key)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				if sc, _, _, err := ssh.NewServerConn(conn, cfg); err == nil {
					sc.Close()
				}
			}()
		}
	}()
	return sshHost{port: ln.Addr().(*net.TCPAddr).Port}
}

func newHostKey(t *testing.T) (ssh.Signer, provision.KnownKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, provision.KnownKey{Type: s.PublicKey().Type(), Fingerprint: provision.Fingerprint(s.PublicKey())}
}

// provisionError runs a provisioning task and returns its error.
func (e *editEnv) provisionError(id int) string {
	e.t.Helper()
	var started struct {
		Task taskJSON `json:"task"`
	}
	if code, b := e.api("POST", fmt.Sprintf("/api/v1/servers/%d/provision", id), e.admin, nil, &started); code != http.StatusAccepted {
		e.t.Fatalf("start provisioning: %d %s", code, b)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var tv taskJSON
		e.api("GET", fmt.Sprintf("/api/v1/tasks/%d", started.Task.ID), e.admin, nil, &tv)
		if tv.Status == "failed" || tv.Status == "succeeded" {
			e.waitIdle(id)
			return tv.Error
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %d did not finish: %+v", tv.ID, tv)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until the provisioner no longer counts a task for id.
func (e *editEnv) waitIdle(id int) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		e.c.prov.mu.Lock()
		_, busy := e.c.prov.running[id]
		e.c.prov.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the task stays registered as running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEditSSHAddressChangeWithdrawsHostKeyApproval provisions against real
// SSH servers on loopback: an approved key gets past the host key check (to
// the refused login), a new port with the very same key does not until it is
// approved again.
func TestEditSSHAddressChangeWithdrawsHostKeyApproval(t *testing.T) {
	e := newEditEnv(t)
	signer, key := newHostKey(t)
	a, b := startSSHHost(t, signer), startSSHHost(t, signer)
	body := passwordServer("web-1")
	body["host"], body["port"] = "127.0.0.1", a.port
	body["host_key"] = map[string]string{"type": key.Type, "fingerprint": key.Fingerprint}
	id := e.create(body)
	if msg := e.provisionError(id); !strings.Contains(msg, "refused the key or password") {
		t.Fatalf("provisioning with the approved key: %q, want the login refused", msg)
	}

	// A change that keeps host and port keeps the approval.
	if code, b := e.patch(id, map[string]any{"user": "deploy", "sudo": true}, nil); code != http.StatusOK {
		t.Fatalf("edit the user: %d %s", code, b)
	}
	if got := e.get(id).HostKeys; len(got) != 1 || got[0].Fingerprint != key.Fingerprint {
		t.Fatalf("editing the user dropped the approved key: %+v", got)
	}
	if msg := e.provisionError(id); !strings.Contains(msg, "refused the key or password") {
		t.Fatalf("provisioning after editing the user: %q", msg)
	}

	// Another port: the approval is withdrawn, so provisioning stops at the
	// host key although the key is the same.
	var view sshJSON
	if code, b := e.patch(id, map[string]any{"port": b.port}, &view); code != http.StatusOK {
		t.Fatalf("edit the port: %d %s", code, b)
	}
	if len(view.HostKeys) != 0 || len(e.get(id).HostKeys) != 0 {
		t.Fatalf("the approval survived the port change: %+v", view.HostKeys)
	}
	if msg := e.provisionError(id); !strings.Contains(msg, "unknown host key") || !strings.Contains(msg, key.Fingerprint) {
		t.Fatalf("provisioning after the port change: %q, want it to stop at the unknown host key", msg)
	}
	withdrawn := e.auditEvents("server.ssh.update")
	if len(withdrawn) != 2 || !strings.Contains(withdrawn[0]+withdrawn[1], "host key approval withdrawn: "+key.String()) {
		t.Fatalf("the audit log does not show the withdrawn approval: %q", withdrawn)
	}

	// Approving again (here with the edit itself) lets it through.
	patch := map[string]any{"host": "localhost", "host_key": map[string]string{"type": key.Type, "fingerprint": key.Fingerprint}}
	if code, b := e.patch(id, patch, &view); code != http.StatusOK || len(view.HostKeys) != 1 {
		t.Fatalf("edit the host with its key: %d %s", code, b)
	}
	if msg := e.provisionError(id); !strings.Contains(msg, "refused the key or password") {
		t.Fatalf("provisioning after approving the new address: %q", msg)
	}
}

// TestEditSSHRefusedWhileATaskRuns holds a provisioning task in its SSH
// handshake with a listener that never answers, then edits.
func TestEditSSHRefusedWhileATaskRuns(t *testing.T) {
	e := newEditEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			accepted <- conn
		}
	}()
	body := passwordServer("web-1")
	body["host"], body["port"] = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	id := e.create(body)
	if code, b := e.api("POST", fmt.Sprintf("/api/v1/servers/%d/provision", id), e.admin, nil, nil); code != http.StatusAccepted {
		t.Fatalf("start provisioning: %d %s", code, b)
	}
	conn := <-accepted // the task is in its handshake until this closes
	ln.Close()
	before := e.state(id)

	var fail apiFields
	if code, _ := e.patch(id, map[string]any{"port": 2222, "password": "another secret"}, &fail); code != http.StatusConflict || fail.Error.Code != "busy" {
		t.Errorf("edit while provisioning: %d %+v, want 409 busy", code, fail)
	}
	admin := e.browser(e.adminLogin)
	form := url.Values{"host": {"127.0.0.1"}, "port": {"2222"}, "user": {"root"}, "auth": {"password"}}
	code, _, page := send(t, admin, "POST", fmt.Sprintf("%s/servers/%d/ssh/edit", e.base, id), form)
	if code != http.StatusConflict || !strings.Contains(page, "A provisioning task for this server is running") {
		t.Errorf("edit form while provisioning: %d\n%s", code, page)
	}
	if after := e.state(id); after != before {
		t.Fatalf("an edit during a task changed the server: %+v", after)
	}

	conn.Close()
	e.waitIdle(id)
	if code, b := e.patch(id, map[string]any{"port": 2222}, nil); code != http.StatusOK {
		t.Fatalf("edit after the task ended: %d %s", code, b)
	}
}

// TestEditSSHForm edits through the page an admin uses.
func TestEditSSHForm(t *testing.T) {
	e := newEditEnv(t)
	body := passwordServer("web-1")
	body["install_paths"] = map[string]string{"bin_dir": "/opt/gh/bin"}
	id := e.create(body)
	admin := e.browser(e.adminLogin)
	edit := fmt.Sprintf("%s/servers/%d/ssh/edit", e.base, id)

	_, _, page := send(t, admin, "GET", fmt.Sprintf("%s/servers/%d/ssh", e.base, id), nil)
	if !strings.Contains(page, fmt.Sprintf(`href="/servers/%d/ssh/edit"`, id)) {
		t.Fatal("the provisioning page has no link to edit the SSH settings")
	}
	code, _, page := send(t, admin, "GET", edit, nil)
	if code != http.StatusOK {
		t.Fatalf("edit page: %d", code)
	}
	for _, want := range []string{`name="host" required maxlength="253" value="192.0.2.10"`, `name="port" type="number" min="1" max="65535" required value="22"`,
		`value="root"`, `value="password" checked`, `name="install_glances" value="1" checked`, `name="bin_dir"`, `value="/opt/gh/bin"`,
		`placeholder="leave empty to keep the stored password"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the edit page lacks %s", want)
		}
	}
	if strings.Contains(page, oldPassword) {
		t.Fatal("the edit page shows the stored password")
	}

	// A bad port: the message adding a server gives, and nothing changes.
	before := e.state(id)
	form := url.Values{"host": {"192.0.2.10"}, "port": {"22x"}, "user": {"root"}, "auth": {"password"}, "install_glances": {"1"},
		"password": {"typed secret"}, "bin_dir": {"/opt/gh/bin"}}
	code, _, page = send(t, admin, "POST", edit, form)
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "enter a whole number from 1 to 65535") || strings.Contains(page, "typed secret") {
		t.Fatalf("bad port: %d\n%s", code, page)
	}
	_, _, createPage := send(t, admin, "POST", e.base+"/servers/ssh", url.Values{"name": {"other"}, "host": {"192.0.2.10"}, "port": {"22x"}, "user": {"root"}, "auth": {"password"}, "password": {"x"}})
	if !strings.Contains(createPage, `<p class="field-error">enter a whole number from 1 to 65535</p>`) || !strings.Contains(page, `<p class="field-error">enter a whole number from 1 to 65535</p>`) {
		t.Fatal("the edit form's port message differs from the add form's")
	}
	if after := e.state(id); after != before {
		t.Fatalf("a refused form changed the server: %+v", after)
	}

	// Port and host change with the password left blank.
	form.Set("port", "2222")
	form.Set("host", "192.0.2.20")
	form.Set("password", "")
	code, loc, _ := send(t, admin, "POST", edit, form)
	if code != http.StatusSeeOther || loc != fmt.Sprintf("/servers/%d/ssh", id) {
		t.Fatalf("save: %d to %q", code, loc)
	}
	_, _, page = send(t, admin, "GET", e.base+loc, nil)
	if !strings.Contains(page, "approve it again before provisioning") || !strings.Contains(page, "root@192.0.2.20:2222") {
		t.Fatalf("the page after saving does not show the new address and the host key warning:\n%s", page)
	}
	if got := e.get(id); got.Port != 2222 || got.Host != "192.0.2.20" || got.InstallPaths == nil || got.InstallPaths.BinDir != "/opt/gh/bin" {
		t.Fatalf("after the form: %+v", got)
	}
	if s := e.secret(id); s != oldPassword {
		t.Fatalf("a blank password field replaced the stored one with %q", s)
	}

	// "Generate a new key pair" from the form shows the new public key.
	form.Set("auth", "generate")
	if code, loc, _ = send(t, admin, "POST", edit, form); code != http.StatusSeeOther {
		t.Fatalf("generate: %d", code)
	}
	_, _, page = send(t, admin, "GET", e.base+loc, nil)
	page = html.UnescapeString(page)
	pub := e.get(id).PublicKey
	if pub == "" || !strings.Contains(page, pub) || !strings.Contains(page, "Add the new public key") {
		t.Fatalf("the generated key is not shown:\n%s", page)
	}
	code, _, page = send(t, admin, "GET", edit, nil)
	if code != http.StatusOK || !strings.Contains(page, `value="key" checked`) || !strings.Contains(page, "the stored generated key") {
		t.Fatalf("edit page after generating: %d\n%s", code, page)
	}
}

// TestAddSSHFormInstallPaths sets install paths when adding a server through
// the page: the section shows the defaults, a bad path is refused with its
// message and the section open, and good paths are stored.
func TestAddSSHFormInstallPaths(t *testing.T) {
	e := newEditEnv(t)
	admin := e.browser(e.adminLogin)
	code, _, page := send(t, admin, "GET", e.base+"/servers/ssh/new", nil)
	if code != http.StatusOK {
		t.Fatalf("add page: %d", code)
	}
	if !strings.Contains(page, `<details>`) || !strings.Contains(page, `name="nginx_conf" maxlength="256" placeholder="/etc/nginx/nginx.conf" value=""`) {
		t.Fatalf("the add page lacks the closed install paths section with its defaults:\n%s", page)
	}
	form := url.Values{"name": {"edge-9"}, "host": {"192.0.2.30"}, "port": {"22"}, "user": {"root"}, "auth": {"password"},
		"password": {"typed secret"}, "bin_dir": {"/tmp/$(touch /tmp/pwned)"}}
	code, _, page = send(t, admin, "POST", e.base+"/servers/ssh", form)
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "<details open>") || !strings.Contains(page, `class="field-error"`) ||
		strings.Contains(page, "typed secret") {
		t.Fatalf("a hostile path: %d\n%s", code, page)
	}
	form.Set("bin_dir", "/opt/gh/bin")
	form.Set("nginx_conf", "/opt/nginx/nginx.conf")
	code, loc, _ := send(t, admin, "POST", e.base+"/servers/ssh", form)
	if code != http.StatusSeeOther {
		t.Fatalf("add with paths: %d", code)
	}
	id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(loc, "/servers/"), "/ssh"))
	if err != nil {
		t.Fatalf("redirected to %q", loc)
	}
	if got := e.get(id); got.InstallPaths == nil || got.InstallPaths.BinDir != "/opt/gh/bin" || got.InstallPaths.NginxConf != "/opt/nginx/nginx.conf" {
		t.Fatalf("stored paths: %+v", got.InstallPaths)
	}
}
