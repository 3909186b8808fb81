package proxyconf

import (
	"context"
	"fmt"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/streamproxy"
	"github.com/gatehousehq/gatehouse/ent/upstream"
)

// StreamInput is a TCP or UDP stream as a form or API request gives it.
type StreamInput struct {
	Name       string `json:"name"`
	ListenPort int    `json:"listen_port"`
	Protocol   string `json:"protocol"` // tcp (default) or udp
	Upstream   string `json:"upstream"` // upstream name
	Servers    []int  `json:"servers"`
}

// Streams lists every stream with its upstream and servers, by name.
func (s *Service) Streams(ctx context.Context) ([]*ent.StreamProxy, error) {
	return s.db.Client.StreamProxy.Query().WithUpstream().
		WithServers(func(q *ent.ServerQuery) { q.Order(ent.Asc(server.FieldName)) }).
		Order(ent.Asc(streamproxy.FieldName)).All(ctx)
}

// Stream returns one stream with its upstream and servers.
func (s *Service) Stream(ctx context.Context, id int) (*ent.StreamProxy, error) {
	st, err := s.db.Client.StreamProxy.Query().Where(streamproxy.ID(id)).WithUpstream().
		WithServers(func(q *ent.ServerQuery) { q.Order(ent.Asc(server.FieldName)) }).Only(ctx)
	if err != nil {
		return nil, notFound("stream", id, err)
	}
	return st, nil
}

type validatedStream struct {
	st         nginxconf.Stream
	upstreamID int
	servers    []int
}

func (s *Service) validateStream(ctx context.Context, c *ent.Client, id int, in StreamInput) (*validatedStream, error) {
	fe := nginxconf.FieldErrors{}
	cfg := nginxconf.NodeConfig{Webroot: validationWebroot, Streams: []nginxconf.Stream{{
		Name: in.Name, ListenPort: in.ListenPort, Protocol: nginxconf.Protocol(in.Protocol), Upstream: in.Upstream,
	}}}
	var upID int
	if in.Upstream != "" {
		u, err := c.Upstream.Query().Where(upstream.Name(in.Upstream)).WithTargets(withTargets).Only(ctx)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("load upstream: %w", err)
		default:
			upID = u.ID
			cfg.Upstreams = []nginxconf.Upstream{UpstreamConf(u)}
		}
	}
	norm, nfe := nginxconf.Normalize(cfg)
	subErrors(nfe, "streams[0].", fe)
	servers, err := checkServers(ctx, c, in.Servers, fe)
	if err != nil {
		return nil, err
	}
	if nfe != nil {
		return nil, fe
	}
	st := norm.Streams[0]
	taken, err := c.StreamProxy.Query().Where(streamproxy.Name(st.Name), streamproxy.IDNEQ(id)).Exist(ctx)
	if err != nil {
		return nil, fmt.Errorf("check stream name: %w", err)
	}
	if taken {
		fe["name"] = fmt.Sprintf("another stream is already named %q", st.Name)
	}
	if len(servers) > 0 {
		clash, err := c.StreamProxy.Query().Where(
			streamproxy.IDNEQ(id), streamproxy.ListenPort(st.ListenPort), streamproxy.ProtocolEQ(streamproxy.Protocol(st.Protocol)),
			streamproxy.HasServersWith(server.IDIn(servers...)),
		).Order(ent.Asc(streamproxy.FieldName)).First(ctx)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("check stream ports: %w", err)
		default:
			fe["listen_port"] = fmt.Sprintf("port %d/%s is already used by stream %q on one of these servers", st.ListenPort, st.Protocol, clash.Name)
		}
	}
	if err := result(fe); err != nil {
		return nil, err
	}
	return &validatedStream{st: st, upstreamID: upID, servers: servers}, nil
}

func streamDetail(v *validatedStream) string {
	return fmt.Sprintf("listen=%d/%s upstream=%s servers=%v", v.st.ListenPort, v.st.Protocol, v.st.Upstream, v.servers)
}

// CreateStream validates and stores a new stream.
func (s *Service) CreateStream(ctx context.Context, a Actor, in StreamInput) (*ent.StreamProxy, error) {
	var id int
	var servers []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		v, err := s.validateStream(ctx, tx.Client(), 0, in)
		if err != nil {
			return audit.Entry{}, err
		}
		row, err := tx.StreamProxy.Create().SetName(v.st.Name).SetListenPort(v.st.ListenPort).
			SetProtocol(streamproxy.Protocol(v.st.Protocol)).SetUpstreamID(v.upstreamID).AddServerIDs(v.servers...).Save(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("another stream is already named %q", v.st.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("store stream: %w", err)
		}
		id, servers = row.ID, v.servers
		return audit.For(a.Actor, "stream.create", "stream:"+v.st.Name, streamDetail(v)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(servers)
	return s.Stream(ctx, id)
}

// UpdateStream validates in and replaces the stream's settings and servers.
func (s *Service) UpdateStream(ctx context.Context, a Actor, id int, in StreamInput) (*ent.StreamProxy, error) {
	var affected []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		oldServers, err := tx.StreamProxy.Query().Where(streamproxy.ID(id)).QueryServers().IDs(ctx)
		if err != nil {
			return audit.Entry{}, fmt.Errorf("load stream %d: %w", id, err)
		}
		if _, err := tx.StreamProxy.Get(ctx, id); err != nil {
			return audit.Entry{}, notFound("stream", id, err)
		}
		v, err := s.validateStream(ctx, tx.Client(), id, in)
		if err != nil {
			return audit.Entry{}, err
		}
		err = tx.StreamProxy.UpdateOneID(id).SetName(v.st.Name).SetListenPort(v.st.ListenPort).
			SetProtocol(streamproxy.Protocol(v.st.Protocol)).SetUpstreamID(v.upstreamID).
			ClearServers().AddServerIDs(v.servers...).Exec(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("another stream is already named %q", v.st.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("update stream: %w", err)
		}
		affected = union(oldServers, v.servers)
		return audit.For(a.Actor, "stream.update", "stream:"+v.st.Name, streamDetail(v)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(affected)
	return s.Stream(ctx, id)
}

// DeleteStream removes a stream.
func (s *Service) DeleteStream(ctx context.Context, a Actor, id int) error {
	var affected []int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		st, err := tx.StreamProxy.Query().Where(streamproxy.ID(id)).WithServers().Only(ctx)
		if err != nil {
			return audit.Entry{}, notFound("stream", id, err)
		}
		for _, sv := range st.Edges.Servers {
			affected = append(affected, sv.ID)
		}
		if err := tx.StreamProxy.DeleteOneID(id).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("delete stream: %w", err)
		}
		return audit.For(a.Actor, "stream.delete", "stream:"+st.Name, ""), nil
	})
	if err != nil {
		return err
	}
	s.notify(affected)
	return nil
}
