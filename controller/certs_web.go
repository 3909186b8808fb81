package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/certs"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/task"
)

// certsWeb serves a domain's TLS page (DNS status, certificate and its
// history, what the nodes serve, live issuance) and the JSON API behind it.
// Anyone signed in may read; checks, issuance and changes need an admin.
type certsWeb struct {
	c *Controller
	w *web.Server
}

func (cw *certsWeb) register() error {
	route := func(kind web.Kind, method, pattern string, p web.Policy, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Pattern: pattern, Policy: p, Kind: kind, Handler: h}
	}
	page, api := web.KindPage, web.KindAPI
	user, admin := web.PolicyUser, web.PolicyAdmin
	for _, r := range []web.Route{
		route(page, "GET", "/domains/{id}/tls", user, cw.domainPage),
		route(page, "POST", "/domains/{id}/tls/check", admin, cw.checkPage),
		route(page, "POST", "/domains/{id}/tls/issue", admin, cw.issuePage),
		route(page, "POST", "/domains/{id}/tls/policy", admin, cw.policyPage),
		route(page, "POST", "/domains/{id}/tls/upload", admin, cw.uploadPage),
		route(page, "GET", "/domains/{id}/tls/tasks/{task}", user, cw.taskPage),

		route(api, "GET", "/api/v1/domains/{id}/tls", user, cw.apiStatus),
		route(api, "POST", "/api/v1/domains/{id}/dns/check", admin, cw.apiCheck),
		route(api, "POST", "/api/v1/domains/{id}/certificate/preflight", admin, cw.apiPreflight),
		route(api, "POST", "/api/v1/domains/{id}/certificate/issue", admin, cw.apiIssue),
		route(api, "PUT", "/api/v1/domains/{id}/certificate/policy", admin, cw.apiPolicy),
		route(api, "POST", "/api/v1/domains/{id}/certificate/upload", admin, cw.apiUpload),
		route(api, "POST", "/api/v1/domains/{id}/certificate/watch", admin, cw.apiWatch),
		route(api, "GET", "/api/v1/certificate-tasks/{task}", user, cw.apiTask),
		route(api, "GET", "/api/v1/dns-providers", user, cw.apiProviders),
		route(api, "POST", "/api/v1/dns-providers", admin, cw.apiCreateProvider),
		route(api, "DELETE", "/api/v1/dns-providers/{id}", admin, cw.apiDeleteProvider),
	} {
		if err := cw.w.Register(r); err != nil {
			return err
		}
	}
	return cw.registerOverview()
}

func (cw *certsWeb) record(r *http.Request, action string, domainID int, detail string) {
	e := audit.For(cw.w.Actor(r), action, "domain:"+strconv.Itoa(domainID), detail)
	if err := cw.c.audit.Record(r.Context(), e); err != nil {
		cw.c.log.Error("audit", "action", action, "error", err)
	}
}

// --- views ---

type certJSON struct {
	ID          int       `json:"id"`
	Names       []string  `json:"names"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint"`
	Source      string    `json:"source"`
	Challenge   string    `json:"challenge,omitempty"`
	Status      string    `json:"status"`
	CertPEM     string    `json:"cert_pem"`
}

func certOf(c *ent.Certificate) certJSON {
	return certJSON{ID: c.ID, Names: c.Names, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Issuer: c.Issuer, Serial: c.Serial,
		Fingerprint: c.Fingerprint, Source: string(c.Source), Challenge: c.Challenge, Status: string(c.Status), CertPEM: c.CertPem}
}

type dnsCheckJSON struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Status    string    `json:"status"`
	Message   string    `json:"message"`
	Addresses []string  `json:"addresses,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

type dnsJSON struct {
	Status    string         `json:"status"`
	Summary   string         `json:"summary"`
	CheckedAt *time.Time     `json:"checked_at,omitempty"`
	Results   []dnsCheckJSON `json:"results"`
}

func dnsOf(rep certs.DNSReport) dnsJSON {
	out := dnsJSON{Status: rep.Worst(), Summary: rep.Summary(), Results: []dnsCheckJSON{}}
	if !rep.CheckedAt.IsZero() {
		t := rep.CheckedAt
		out.CheckedAt = &t
	}
	for _, r := range rep.Results {
		out.Results = append(out.Results, dnsCheckJSON{Name: r.Name, Kind: string(r.Kind), Status: r.Status, Message: r.Message, Addresses: r.Addresses, CheckedAt: r.CheckedAt})
	}
	return out
}

type servedCertJSON struct {
	Server      string     `json:"server"`
	ServerID    int        `json:"server_id"`
	Address     string     `json:"address"`
	Fingerprint string     `json:"fingerprint"`
	Serial      string     `json:"serial"`
	Issuer      string     `json:"issuer"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	Matches     bool       `json:"matches"`
	Message     string     `json:"message"`
	ObservedAt  time.Time  `json:"observed_at"`
}

func servedCertOf(o *ent.ServedCertificate) servedCertJSON {
	v := servedCertJSON{ServerID: o.ServerID, Address: o.Address, Fingerprint: o.Fingerprint, Serial: o.Serial, Issuer: o.Issuer,
		NotAfter: o.NotAfter, Matches: o.Matches, Message: o.Message, ObservedAt: o.ObservedAt}
	if o.Edges.Server != nil {
		v.Server = o.Edges.Server.Name
	}
	return v
}

type certTaskJSON struct {
	ID         int        `json:"id"`
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Log        string     `json:"log"`
	Error      string     `json:"error"`
}

func certTaskOf(t *ent.Task) certTaskJSON {
	return certTaskJSON{ID: t.ID, Status: string(t.Status), StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, Log: t.Log, Error: t.Error}
}

type certPolicyJSON struct {
	Mode          string     `json:"mode"`
	Challenge     string     `json:"challenge"`
	DNSProviderID int        `json:"dns_provider_id,omitempty"`
	Failures      int        `json:"failures"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastError     string     `json:"last_error"`
}

// tlsStatus is everything the domain's TLS page and API show.
type tlsStatus struct {
	Domain      string `json:"domain"`
	DomainID    int    `json:"domain_id"`
	Directory   string `json:"acme_directory"`
	RenewBefore string `json:"renew_before"`
	// RenewBeforeText is RenewBefore in words, for the page.
	RenewBeforeText string            `json:"-"`
	Policy          certPolicyJSON    `json:"policy"`
	Active          *certJSON         `json:"certificate"`
	History         []certJSON        `json:"history"`
	DNS             dnsJSON           `json:"dns"`
	Served          []servedCertJSON  `json:"served"`
	Tasks           []certTaskJSON    `json:"tasks"`
	Providers       []dnsProviderJSON `json:"-"`
	Expiring        bool              `json:"expiring"`
}

func (cw *certsWeb) status(ctx context.Context, id int) (*tlsStatus, error) {
	d, err := cw.c.db.Client.Domain.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("domain %d: %w", id, certs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	svc := cw.c.certs
	st := &tlsStatus{Domain: d.Name, DomainID: d.ID, Directory: svc.DirectoryURL(), RenewBefore: svc.RenewBefore().String(), RenewBeforeText: alerts.HumanDuration(svc.RenewBefore()), History: []certJSON{}, Served: []servedCertJSON{}, Tasks: []certTaskJSON{}}
	p, err := svc.Policy(ctx, id)
	if err != nil {
		return nil, err
	}
	st.Policy = certPolicyJSON{Mode: string(p.Mode), Challenge: string(p.Challenge), DNSProviderID: p.DNSProviderID, Failures: p.Failures, NextAttemptAt: p.NextAttemptAt, LastError: p.LastError}
	all, err := svc.Certificates(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		v := certOf(c)
		if c.Status == "active" && st.Active == nil {
			st.Active = &v
			st.Expiring = time.Until(c.NotAfter) < svc.RenewBefore()
		}
		st.History = append(st.History, v)
	}
	latest, err := svc.LatestDNS(ctx, []int{id})
	if err != nil {
		return nil, err
	}
	st.DNS = dnsOf(latest[id])
	served, err := svc.Served(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, o := range served {
		st.Served = append(st.Served, servedCertOf(o))
	}
	tasks, err := svc.Tasks(ctx, d.Name, 10)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		st.Tasks = append(st.Tasks, certTaskOf(t))
	}
	provs, err := svc.Providers(ctx)
	if err != nil {
		return nil, err
	}
	for _, pr := range provs {
		st.Providers = append(st.Providers, dnsProviderOf(pr))
	}
	return st, nil
}

type dnsProviderJSON struct {
	ID         int       `json:"id"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Nameserver string    `json:"nameserver,omitempty"`
	TSIGKey    string    `json:"tsig_key,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

func dnsProviderOf(p *ent.DNSProvider) dnsProviderJSON {
	return dnsProviderJSON{ID: p.ID, Name: p.Name, Kind: string(p.Kind), Nameserver: p.Settings["nameserver"], TSIGKey: p.Settings["tsig_key"], CreatedAt: p.CreatedAt}
}

// apiFail maps service errors to API responses.
func certsAPIFail(w http.ResponseWriter, err error) {
	var fe *certs.FieldError
	var pe *acme.PreflightError
	switch {
	case errors.As(err, &fe):
		web.WriteError(w, http.StatusUnprocessableEntity, "invalid", fe.Message, map[string]string{fe.Field: fe.Message})
	case errors.Is(err, certs.ErrNotFound):
		web.WriteError(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.Is(err, certs.ErrBusy):
		web.WriteError(w, http.StatusConflict, "busy", err.Error(), nil)
	case errors.As(err, &pe):
		web.WriteError(w, http.StatusUnprocessableEntity, "preflight_failed", err.Error(), nil)
	default:
		web.WriteError(w, http.StatusBadGateway, "failed", err.Error(), nil)
	}
}

// --- API ---

func (cw *certsWeb) apiStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	st, err := cw.status(r.Context(), id)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, st)
}

func (cw *certsWeb) apiCheck(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	rep, err := cw.c.certs.CheckDomain(r.Context(), id)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, dnsOf(rep))
}

func (cw *certsWeb) apiPreflight(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	f, err := cw.c.certs.Preflight(r.Context(), id)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	type finding struct {
		Name    string `json:"name"`
		Check   string `json:"check"`
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	out := struct {
		OK       bool      `json:"ok"`
		Findings []finding `json:"findings"`
	}{OK: acme.Blocking(f) == nil, Findings: []finding{}}
	for _, x := range f {
		out.Findings = append(out.Findings, finding{x.Name, string(x.Check), x.OK, x.Message})
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (cw *certsWeb) apiIssue(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	taskID, err := cw.c.certs.Start(r.Context(), id, issueTimeout)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	cw.record(r, "certificate.issue", id, "task "+strconv.Itoa(taskID))
	web.WriteJSON(w, http.StatusAccepted, map[string]int{"task_id": taskID})
}

func (cw *certsWeb) apiTask(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "task")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	t, err := cw.c.certs.Task(r.Context(), id)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, certTaskOf(t))
}

func (cw *certsWeb) apiPolicy(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	var in struct {
		Mode          string `json:"mode"`
		Challenge     string `json:"challenge"`
		DNSProviderID int    `json:"dns_provider_id"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	p, err := cw.c.certs.SetPolicy(r.Context(), id, certs.PolicyInput{Mode: in.Mode, Challenge: in.Challenge, DNSProviderID: in.DNSProviderID})
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	cw.record(r, "certificate.policy", id, fmt.Sprintf("mode %s, challenge %s", p.Mode, p.Challenge))
	web.WriteJSON(w, http.StatusOK, certPolicyJSON{Mode: string(p.Mode), Challenge: string(p.Challenge), DNSProviderID: p.DNSProviderID, Failures: p.Failures, NextAttemptAt: p.NextAttemptAt, LastError: p.LastError})
}

func (cw *certsWeb) apiUpload(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	var in struct {
		Certificate string `json:"certificate"`
		Key         string `json:"key"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	c, err := cw.c.certs.Upload(r.Context(), id, []byte(in.Certificate), []byte(in.Key))
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	cw.record(r, "certificate.upload", id, "serial "+c.Serial)
	web.WriteJSON(w, http.StatusCreated, certOf(c))
}

func (cw *certsWeb) apiWatch(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	obs, err := cw.c.certs.WatchDomain(r.Context(), id)
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	out := []servedCertJSON{}
	for _, o := range obs {
		out = append(out, servedCertOf(o))
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (cw *certsWeb) apiProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := cw.c.certs.Providers(r.Context())
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	out := []dnsProviderJSON{}
	for _, p := range ps {
		out = append(out, dnsProviderOf(p))
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (cw *certsWeb) apiCreateProvider(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name          string `json:"name"`
		Kind          string `json:"kind"`
		Nameserver    string `json:"nameserver"`
		TSIGKey       string `json:"tsig_key"`
		TSIGAlgorithm string `json:"tsig_algorithm"`
		TSIGSecret    string `json:"tsig_secret"`
		APIToken      string `json:"api_token"`
		ZoneToken     string `json:"zone_token"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	p, err := cw.c.certs.CreateProvider(r.Context(), certs.ProviderInput{Name: in.Name, Kind: in.Kind, Nameserver: in.Nameserver,
		TSIGKey: in.TSIGKey, TSIGAlgorithm: in.TSIGAlgorithm, TSIGSecret: in.TSIGSecret, APIToken: in.APIToken, ZoneToken: in.ZoneToken})
	if err != nil {
		certsAPIFail(w, err)
		return
	}
	if err := cw.c.audit.Record(r.Context(), audit.For(cw.w.Actor(r), "dns_provider.create", "dns_provider:"+p.Name, string(p.Kind))); err != nil {
		cw.c.log.Error("audit", "error", err)
	}
	web.WriteJSON(w, http.StatusCreated, dnsProviderOf(p))
}

func (cw *certsWeb) apiDeleteProvider(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	if !ok {
		certsAPIFail(w, certs.ErrNotFound)
		return
	}
	if err := cw.c.certs.DeleteProvider(r.Context(), id); err != nil {
		if errors.Is(err, certs.ErrNotFound) {
			certsAPIFail(w, err)
			return
		}
		web.WriteError(w, http.StatusConflict, "in_use", err.Error(), nil)
		return
	}
	if err := cw.c.audit.Record(r.Context(), audit.For(cw.w.Actor(r), "dns_provider.delete", "dns_provider:"+strconv.Itoa(id), "")); err != nil {
		cw.c.log.Error("audit", "error", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- pages ---

func (cw *certsWeb) domainPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathInt(r, "id")
	st, err := cw.status(r.Context(), id)
	if !ok || errors.Is(err, certs.ErrNotFound) {
		cw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/domains", map[string]string{"Heading": "No such domain", "Message": "It may have been deleted."})
		return
	}
	if err != nil {
		cw.w.Render(w, r, http.StatusInternalServerError, "error", "Error", "/domains", map[string]string{"Heading": "Could not load the domain", "Message": err.Error()})
		return
	}
	cw.w.Render(w, r, http.StatusOK, "cert_domain", "TLS and DNS: "+st.Domain, "/domains", st)
}

func (cw *certsWeb) back(w http.ResponseWriter, r *http.Request, id int, kind, msg string) {
	cw.w.Flash(r, kind, msg)
	http.Redirect(w, r, "/domains/"+strconv.Itoa(id)+"/tls", http.StatusSeeOther)
}

func (cw *certsWeb) checkPage(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	rep, err := cw.c.certs.CheckDomain(r.Context(), id)
	if err != nil {
		cw.back(w, r, id, "error", err.Error())
		return
	}
	cw.back(w, r, id, "success", "DNS checked: "+rep.Summary())
}

func (cw *certsWeb) issuePage(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	taskID, err := cw.c.certs.Start(r.Context(), id, issueTimeout)
	if err != nil {
		cw.back(w, r, id, "error", err.Error())
		return
	}
	cw.record(r, "certificate.issue", id, "task "+strconv.Itoa(taskID))
	http.Redirect(w, r, fmt.Sprintf("/domains/%d/tls/tasks/%d", id, taskID), http.StatusSeeOther)
}

func (cw *certsWeb) policyPage(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	if err := r.ParseForm(); err != nil {
		cw.back(w, r, id, "error", "the form could not be read")
		return
	}
	prov, _ := strconv.Atoi(r.PostForm.Get("dns_provider_id"))
	p, err := cw.c.certs.SetPolicy(r.Context(), id, certs.PolicyInput{Mode: r.PostForm.Get("mode"), Challenge: r.PostForm.Get("challenge"), DNSProviderID: prov})
	if err != nil {
		cw.back(w, r, id, "error", err.Error())
		return
	}
	cw.record(r, "certificate.policy", id, fmt.Sprintf("mode %s, challenge %s", p.Mode, p.Challenge))
	cw.back(w, r, id, "success", "Saved.")
}

func (cw *certsWeb) uploadPage(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "id")
	if err := r.ParseForm(); err != nil {
		cw.back(w, r, id, "error", "the form could not be read")
		return
	}
	c, err := cw.c.certs.Upload(r.Context(), id, []byte(r.PostForm.Get("certificate")), []byte(r.PostForm.Get("key")))
	if err != nil {
		cw.back(w, r, id, "error", err.Error())
		return
	}
	cw.record(r, "certificate.upload", id, "serial "+c.Serial)
	cw.back(w, r, id, "success", "Certificate stored; it is deployed with the next revision.")
}

func (cw *certsWeb) taskPage(w http.ResponseWriter, r *http.Request) {
	id, _ := pathInt(r, "task")
	t, err := cw.c.certs.Task(r.Context(), id)
	if err != nil {
		cw.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/domains", map[string]string{"Heading": "No such issuance", "Message": "It may have been removed."})
		return
	}
	d := taskPageData{Task: t, Topic: "task." + strconv.Itoa(t.ID), Done: t.Status == task.StatusSucceeded || t.Status == task.StatusFailed}
	cw.w.Render(w, r, http.StatusOK, "task", fmt.Sprintf("Issuance %d: %s", t.ID, t.Subject), "/domains", d)
}
