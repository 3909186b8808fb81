package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/certs"
	"github.com/gatehousehq/gatehouse/controller/internal/events"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyweb"
	"github.com/gatehousehq/gatehouse/controller/internal/scheduler"
	"github.com/gatehousehq/gatehouse/ent"
)

// issueTimeout bounds one issuance started from the UI or API.
const issueTimeout = 10 * time.Minute

// buildCerts creates the certificate service and adds its scheduled jobs: DNS
// checks, renewals and the served-certificate watch. It runs after the
// deployer, whose node setup tells where each node's nginx answers.
func (c *Controller) buildCerts() error {
	hc, err := acmeHTTPClient(c.cfg.ACMECARoots)
	if err != nil {
		return err
	}
	c.certs, err = certs.New(c.db, c.box, c.hub, c.deployer, certs.Config{
		DirectoryURL: c.cfg.ACMEDirectory,
		Email:        c.cfg.ACMEEmail,
		HTTPClient:   hc,
		CAAIdentity:  c.cfg.ACMECAAIdentity,
		Resolvers:    c.cfg.DNSResolvers,
		RenewBefore:  c.cfg.RenewBefore,
		ProbePort:    c.cfg.ACMEHTTPPort,
		Endpoint:     c.nodeEndpoint,
		OnEvent:      c.onCertEvent,
	}, c.log)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	for _, j := range []scheduler.Job{
		{
			Name: "dns.check", Title: "Check where every domain points, its delegation and CAA",
			Every: c.cfg.DNSCheckInterval,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				return c.certs.CheckAll(ctx, l.Printf)
			},
		},
		{
			Name: "certs.renew", Title: "Order and renew certificates that are due",
			Every: c.cfg.CertCheckInterval, Timeout: max(c.cfg.CertCheckInterval, 30*time.Minute),
			Run: func(ctx context.Context, l *scheduler.Log) error {
				return c.certs.RenewDue(ctx, l.Printf)
			},
		},
		{
			Name: "certs.watch", Title: "Check the certificate every node serves",
			Every: c.cfg.CertCheckInterval,
			Run: func(ctx context.Context, l *scheduler.Log) error {
				return c.certs.WatchAll(ctx, l.Printf)
			},
		},
	} {
		if err := c.sched.Add(j); err != nil {
			return err
		}
	}
	return nil
}

// nodeEndpoint is where a server's nginx answers, as its agent reported,
// at an address certs.ProbeHost allows.
func (c *Controller) nodeEndpoint(ctx context.Context, srv *ent.Server) (certs.Endpoint, error) {
	n, err := c.deployer.NodeNginx(ctx, srv)
	if err != nil {
		return certs.Endpoint{}, err
	}
	if !n.Reported && !c.hub.Connected(strconv.Itoa(srv.ID)) {
		// Its agent never reported: ports 80 and 443 would be a guess. An
		// agent too old to report is connected.
		return certs.Endpoint{}, certs.ErrEndpointUnknown
	}
	host, err := certs.ProbeHost(srv, n.BindAddress)
	if err != nil {
		return certs.Endpoint{}, err
	}
	return certs.Endpoint{Host: host, HTTPPort: n.HTTPPort, HTTPSPort: n.HTTPSPort}, nil
}

// acmeHTTPClient trusts the system roots plus those in rootsFile, if any.
func acmeHTTPClient(rootsFile string) (*http.Client, error) {
	if rootsFile == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(rootsFile)
	if err != nil {
		return nil, fmt.Errorf("acme_ca_roots: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("acme_ca_roots: %s holds no PEM certificate", rootsFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// onCertEvent forwards the service's news: to the domain's topic for its
// page, and an issuance's lines to its task topic, which the task view follows.
func (c *Controller) onCertEvent(domainID int, name string, data map[string]any) {
	c.events.Publish(events.Event{Topic: "domain." + strconv.Itoa(domainID), Name: name, Data: data})
	taskID, _ := data["task_id"].(int)
	if taskID == 0 {
		return
	}
	topic := "task." + strconv.Itoa(taskID)
	switch name {
	case "cert.log":
		line, _ := data["line"].(string)
		c.events.Publish(events.Event{Topic: topic, Name: "task.step", Data: map[string]any{"task_id": taskID, "text": line + "\n"}})
	case "cert":
		if st, _ := data["status"].(string); st != "running" {
			c.events.Publish(events.Event{Topic: topic, Name: "task.done", Data: map[string]any{"task_id": taskID, "status": st, "error": data["error"]}})
		}
	}
}

// domainStatus summarises each domain's latest DNS check and active
// certificate for the domain list.
func (c *Controller) domainStatus(ctx context.Context, ids []int) map[int]proxyweb.DomainStatus {
	out := make(map[int]proxyweb.DomainStatus, len(ids))
	dns, err := c.certs.LatestDNS(ctx, ids)
	if err != nil {
		c.log.Error("latest DNS checks for the domain list", "error", err)
	}
	active, activeErr := c.certs.ActiveFor(ctx, ids)
	if activeErr != nil {
		c.log.Error("active certificates for the domain list", "error", activeErr)
	}
	healthy, err := c.health.Summaries(ctx, ids)
	if err != nil {
		c.log.Error("health of the domain list", "error", err)
	}
	week, err := c.health.DomainUptime(ctx, ids, 7*24*time.Hour)
	if err != nil {
		c.log.Error("uptime of the domain list", "error", err)
	}
	for _, id := range ids {
		var st proxyweb.DomainStatus
		if u, ok := week[id]; ok {
			st.Uptime = u.Label()
		}
		if h, ok := healthy[id]; ok {
			switch {
			case h.Maintenance:
				st.Health, st.HealthClass, st.HealthState = "maintenance", "warn", "maintenance"
			case h.Down == 0:
				st.Health, st.HealthClass, st.HealthState = "up", "ok", "up"
			case h.Up == 0:
				st.Health, st.HealthClass, st.HealthState = "down", "bad", "down"
			default:
				st.Health, st.HealthClass, st.HealthState = fmt.Sprintf("down on %d of %d", h.Down, h.Up+h.Down), "bad", "down"
			}
		}
		if r, ok := dns[id]; ok {
			st.DNS = r.Summary()
			switch r.Worst() {
			case certs.StatusOK:
				st.DNSClass = "ok"
			case "":
				st.DNSClass = "warn"
			default:
				st.DNSClass = "bad"
			}
		}
		cert := active[id]
		switch {
		case activeErr != nil:
		case cert == nil:
			st.Cert, st.CertClass = "none", "warn"
		default:
			days := int(time.Until(cert.NotAfter).Hours() / 24)
			switch {
			case days < 0:
				st.Cert, st.CertClass = "expired", "bad"
			case days < 14:
				st.Cert, st.CertClass = fmt.Sprintf("expires in %d days", days), "warn"
			default:
				st.Cert, st.CertClass = fmt.Sprintf("valid, %d days left", days), "ok"
			}
		}
		out[id] = st
	}
	return out
}
