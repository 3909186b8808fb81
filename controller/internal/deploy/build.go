package deploy

import (
	"context"
	"fmt"

	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/proxyconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/route"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/streamproxy"
	"github.com/gatehousehq/gatehouse/ent/upstream"
	"github.com/gatehousehq/gatehouse/ent/upstreamtarget"
)

// Webroot is where the agent serves ACME HTTP-01 challenges from, below its nginx dir.
func (d *Deployer) Webroot() string { return d.cfg.NginxDir + "/acme" }

// ConfigDir is where nginx reaches the agent's current release.
func (d *Deployer) ConfigDir() string { return d.cfg.NginxDir + "/current" }

// NodeConfig builds the server's configuration from the database: the domains and
// streams assigned to it and the upstreams they use.
func (d *Deployer) NodeConfig(ctx context.Context, serverID int) (nginxconf.NodeConfig, error) {
	cfg, _, _, err := d.nodeConfig(ctx, serverID)
	return cfg, err
}

// nodeConfig is NodeConfig with the certificate files the release must carry,
// and the domains that ask for HTTPS but are served over plain HTTP for want
// of a certificate.
func (d *Deployer) nodeConfig(ctx context.Context, serverID int) (cfg nginxconf.NodeConfig, extra []file, plain []string, err error) {
	c := d.db.Client
	srv, err := c.Server.Get(ctx, serverID)
	if err != nil {
		return nginxconf.NodeConfig{}, nil, nil, fmt.Errorf("load server %d: %w", serverID, err)
	}
	nn, err := d.NodeNginx(ctx, srv)
	if err != nil {
		return nginxconf.NodeConfig{}, nil, nil, err
	}
	cfg = nn.apply(nginxconf.NodeConfig{})
	if len(srv.RealIPFrom) > 0 {
		cfg.RealIP = &nginxconf.RealIP{From: srv.RealIPFrom, Header: srv.RealIPHeader}
	}
	cfg.UnknownNames = nginxconf.UnknownAnswer(srv.UnknownNames)
	cfg.CacheMaxSize = srv.CacheMaxSize
	onServer := server.ID(serverID)
	doms, err := c.Domain.Query().Where(domain.HasServersWith(onServer)).
		WithRoutes(proxyconf.WithRoutes).WithBasicAuthUsers(proxyconf.WithUsers).
		Order(ent.Asc(domain.FieldName)).All(ctx)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("load domains of server %d: %w", serverID, err)
	}
	streams, err := c.StreamProxy.Query().Where(streamproxy.HasServersWith(onServer)).WithUpstream().
		Order(ent.Asc(streamproxy.FieldName)).All(ctx)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("load streams of server %d: %w", serverID, err)
	}
	ups, err := c.Upstream.Query().Where(upstream.Or(
		upstream.HasRoutesWith(route.HasDomainWith(domain.HasServersWith(onServer))),
		upstream.HasStreamsWith(streamproxy.HasServersWith(onServer)),
	)).WithTargets(func(q *ent.UpstreamTargetQuery) {
		q.Order(ent.Asc(upstreamtarget.FieldPosition), ent.Asc(upstreamtarget.FieldID))
	}).Order(ent.Asc(upstream.FieldName)).All(ctx)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("load upstreams of server %d: %w", serverID, err)
	}
	for _, u := range ups {
		cfg.Upstreams = append(cfg.Upstreams, proxyconf.UpstreamConf(u))
	}
	for _, dm := range doms {
		nd := proxyconf.DomainConf(dm)
		switch {
		case d.cfg.TLS != nil:
			cert, files, err := d.tlsFor(ctx, cfg.ConfigDir, dm.Name)
			if err != nil {
				return cfg, nil, nil, fmt.Errorf("look up certificate for %s: %w", dm.Name, err)
			}
			nd.Certificate = cert
			extra = append(extra, files...)
		case d.cfg.Certificate != nil:
			cert, err := d.cfg.Certificate(ctx, dm.Name)
			if err != nil {
				return cfg, nil, nil, fmt.Errorf("look up certificate for %s: %w", dm.Name, err)
			}
			nd.Certificate = cert
		}
		if nd.Certificate == nil && (nd.ForceHTTPS || nd.HSTS || nd.HTTP2) {
			plain = append(plain, dm.Name)
			nd.ForceHTTPS, nd.HSTS, nd.HTTP2 = false, false, false
		}
		cfg.Domains = append(cfg.Domains, nd)
	}
	for _, st := range streams {
		cfg.Streams = append(cfg.Streams, proxyconf.StreamConf(st))
	}
	return cfg, extra, plain, nil
}
