package proxyconf

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/route"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/ent/streamproxy"
	"github.com/gatehousehq/gatehouse/ent/upstream"
	"github.com/gatehousehq/gatehouse/ent/upstreamtarget"
)

// TargetInput is one backend server of an upstream.
type TargetInput struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Weight      int    `json:"weight"`
	MaxFails    int    `json:"max_fails"`
	FailTimeout int    `json:"fail_timeout"`
	Backup      bool   `json:"backup"`
	Down        bool   `json:"down"`
}

// UpstreamInput is an upstream as a form or API request gives it.
type UpstreamInput struct {
	Name           string        `json:"name"`
	Method         string        `json:"method"` // empty means round_robin
	HashKey        string        `json:"hash_key"`
	Consistent     bool          `json:"consistent"`
	Keepalive      int           `json:"keepalive"`
	ConnectTimeout int           `json:"connect_timeout"`
	ReadTimeout    int           `json:"read_timeout"`
	SendTimeout    int           `json:"send_timeout"`
	Targets        []TargetInput `json:"targets"`
}

func (in UpstreamInput) conf() nginxconf.Upstream {
	u := nginxconf.Upstream{
		Name: in.Name, Method: nginxconf.Method(in.Method), HashKey: in.HashKey, HashConsistent: in.Consistent,
		Keepalive: in.Keepalive, ConnectTimeout: in.ConnectTimeout, ReadTimeout: in.ReadTimeout, SendTimeout: in.SendTimeout,
	}
	for _, t := range in.Targets {
		u.Targets = append(u.Targets, nginxconf.Target{
			Host: t.Host, Port: t.Port, Weight: t.Weight, MaxFails: t.MaxFails, FailTimeout: t.FailTimeout, Backup: t.Backup, Down: t.Down,
		})
	}
	return u
}

// UpstreamConf converts a stored upstream, loaded with its targets, to nginxconf's form.
func UpstreamConf(u *ent.Upstream) nginxconf.Upstream {
	out := nginxconf.Upstream{
		Name: u.Name, Method: nginxconf.Method(u.Method), HashKey: u.HashKey, HashConsistent: u.Consistent,
		Keepalive: u.Keepalive, ConnectTimeout: u.ConnectTimeout, ReadTimeout: u.ReadTimeout, SendTimeout: u.SendTimeout,
	}
	for _, t := range u.Edges.Targets {
		out.Targets = append(out.Targets, nginxconf.Target{
			Host: t.Host, Port: t.Port, Weight: t.Weight, MaxFails: t.MaxFails, FailTimeout: t.FailTimeout, Backup: t.Backup, Down: t.Down,
		})
	}
	return out
}

// StreamConf converts a stored stream, loaded with its upstream, to nginxconf's form.
func StreamConf(s *ent.StreamProxy) nginxconf.Stream {
	out := nginxconf.Stream{Name: s.Name, ListenPort: s.ListenPort, Protocol: nginxconf.Protocol(s.Protocol)}
	if s.Edges.Upstream != nil {
		out.Upstream = s.Edges.Upstream.Name
	}
	return out
}

func withTargets(q *ent.UpstreamTargetQuery) {
	q.Order(ent.Asc(upstreamtarget.FieldPosition), ent.Asc(upstreamtarget.FieldID))
}

// Upstreams lists every upstream with its targets, by name.
func (s *Service) Upstreams(ctx context.Context) ([]*ent.Upstream, error) {
	return s.db.Client.Upstream.Query().WithTargets(withTargets).Order(ent.Asc(upstream.FieldName)).All(ctx)
}

// Upstream returns one upstream with its targets.
func (s *Service) Upstream(ctx context.Context, id int) (*ent.Upstream, error) {
	u, err := s.db.Client.Upstream.Query().Where(upstream.ID(id)).WithTargets(withTargets).Only(ctx)
	if err != nil {
		return nil, notFound("upstream", id, err)
	}
	return u, nil
}

// validateUpstream normalizes in and checks it against the streams that use the upstream
// (id 0 for a new one), since streams support fewer balancing methods than HTTP.
func (s *Service) validateUpstream(ctx context.Context, c *ent.Client, id int, in UpstreamInput) (nginxconf.Upstream, error) {
	fe := nginxconf.FieldErrors{}
	cfg := nginxconf.NodeConfig{Webroot: validationWebroot, Upstreams: []nginxconf.Upstream{in.conf()}}
	if id != 0 {
		streams, err := c.StreamProxy.Query().Where(streamproxy.UpstreamID(id)).Order(ent.Asc(streamproxy.FieldName)).All(ctx)
		if err != nil {
			return nginxconf.Upstream{}, fmt.Errorf("load streams of upstream %d: %w", id, err)
		}
		for _, st := range streams {
			// Streams are checked one per node config, as they may run on different servers.
			c := cfg
			c.Streams = []nginxconf.Stream{{Name: st.Name, ListenPort: st.ListenPort, Protocol: nginxconf.Protocol(st.Protocol), Upstream: in.Name}}
			if sfe := nginxconf.Validate(c); sfe != nil {
				if msg, ok := sfe["streams[0].upstream"]; ok {
					addErr(fe, "method", fmt.Sprintf("stream %q uses this upstream: %s", st.Name, msg))
				}
			}
		}
	}
	norm, nfe := nginxconf.Normalize(cfg)
	subErrors(nfe, "upstreams[0].", fe)
	if err := s.checkUpstreamName(ctx, c, id, in.Name, fe); err != nil {
		return nginxconf.Upstream{}, err
	}
	if err := result(fe); err != nil {
		return nginxconf.Upstream{}, err
	}
	return norm.Upstreams[0], nil
}

func (s *Service) checkUpstreamName(ctx context.Context, c *ent.Client, id int, name string, fe nginxconf.FieldErrors) error {
	if _, bad := fe["name"]; bad {
		return nil
	}
	taken, err := c.Upstream.Query().Where(upstream.Name(name), upstream.IDNEQ(id)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("check upstream name: %w", err)
	}
	if taken {
		fe["name"] = fmt.Sprintf("another upstream is already named %q", name)
	}
	return nil
}

func saveTargets(ctx context.Context, tx *ent.Tx, upstreamID int, targets []nginxconf.Target) error {
	if _, err := tx.UpstreamTarget.Delete().Where(upstreamtarget.UpstreamID(upstreamID)).Exec(ctx); err != nil {
		return fmt.Errorf("replace targets: %w", err)
	}
	builders := make([]*ent.UpstreamTargetCreate, len(targets))
	for i, t := range targets {
		builders[i] = tx.UpstreamTarget.Create().SetUpstreamID(upstreamID).SetPosition(i).
			SetHost(t.Host).SetPort(t.Port).SetWeight(t.Weight).SetMaxFails(t.MaxFails).
			SetFailTimeout(t.FailTimeout).SetBackup(t.Backup).SetDown(t.Down)
	}
	if err := tx.UpstreamTarget.CreateBulk(builders...).Exec(ctx); err != nil {
		return fmt.Errorf("store targets: %w", err)
	}
	return nil
}

func upstreamDetail(u nginxconf.Upstream) string {
	hosts := make([]string, len(u.Targets))
	for i, t := range u.Targets {
		hosts[i] = fmt.Sprintf("%s:%d", t.Host, t.Port)
	}
	return fmt.Sprintf("method=%s targets=%s", u.Method, strings.Join(hosts, ","))
}

// CreateUpstream validates and stores a new upstream.
func (s *Service) CreateUpstream(ctx context.Context, a Actor, in UpstreamInput) (*ent.Upstream, error) {
	var id int
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		u, err := s.validateUpstream(ctx, tx.Client(), 0, in)
		if err != nil {
			return audit.Entry{}, err
		}
		row, err := tx.Upstream.Create().SetName(u.Name).SetMethod(upstream.Method(u.Method)).SetHashKey(u.HashKey).
			SetConsistent(u.HashConsistent).SetKeepalive(u.Keepalive).SetConnectTimeout(u.ConnectTimeout).
			SetReadTimeout(u.ReadTimeout).SetSendTimeout(u.SendTimeout).Save(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("another upstream is already named %q", u.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("store upstream: %w", err)
		}
		id = row.ID
		if err := saveTargets(ctx, tx, row.ID, u.Targets); err != nil {
			return audit.Entry{}, err
		}
		return audit.For(a.Actor, "upstream.create", "upstream:"+u.Name, upstreamDetail(u)), nil
	})
	if err != nil {
		return nil, err
	}
	return s.Upstream(ctx, id)
}

// UpdateUpstream validates in and replaces the upstream's settings and targets.
func (s *Service) UpdateUpstream(ctx context.Context, a Actor, id int, in UpstreamInput) (*ent.Upstream, error) {
	err := s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		if _, err := tx.Upstream.Get(ctx, id); err != nil {
			return audit.Entry{}, notFound("upstream", id, err)
		}
		u, err := s.validateUpstream(ctx, tx.Client(), id, in)
		if err != nil {
			return audit.Entry{}, err
		}
		err = tx.Upstream.UpdateOneID(id).SetName(u.Name).SetMethod(upstream.Method(u.Method)).SetHashKey(u.HashKey).
			SetConsistent(u.HashConsistent).SetKeepalive(u.Keepalive).SetConnectTimeout(u.ConnectTimeout).
			SetReadTimeout(u.ReadTimeout).SetSendTimeout(u.SendTimeout).Exec(ctx)
		if ent.IsConstraintError(err) {
			return audit.Entry{}, nginxconf.FieldErrors{"name": fmt.Sprintf("another upstream is already named %q", u.Name)}
		}
		if err != nil {
			return audit.Entry{}, fmt.Errorf("update upstream: %w", err)
		}
		if err := saveTargets(ctx, tx, id, u.Targets); err != nil {
			return audit.Entry{}, err
		}
		return audit.For(a.Actor, "upstream.update", "upstream:"+u.Name, upstreamDetail(u)), nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(s.serversUsingUpstream(ctx, id))
	return s.Upstream(ctx, id)
}

// serversUsingUpstream returns the servers whose configuration includes the upstream.
func (s *Service) serversUsingUpstream(ctx context.Context, id int) []int {
	ids, err := s.db.Client.Server.Query().Where(server.Or(
		server.HasDomainsWith(domain.HasRoutesWith(route.UpstreamID(id))),
		server.HasStreamsWith(streamproxy.UpstreamID(id)),
	)).IDs(ctx)
	if err != nil {
		s.log.Error("find servers using an upstream; they are re-rendered on their next change or reconnect", "upstream", id, "error", err)
	}
	return ids
}

// DeleteUpstream removes an upstream that no route or stream uses.
func (s *Service) DeleteUpstream(ctx context.Context, a Actor, id int) error {
	return s.withTx(ctx, func(tx *ent.Tx) (audit.Entry, error) {
		u, err := tx.Upstream.Get(ctx, id)
		if err != nil {
			return audit.Entry{}, notFound("upstream", id, err)
		}
		var users []string
		doms, err := tx.Domain.Query().Where(domain.HasRoutesWith(route.UpstreamID(id))).Order(ent.Asc(domain.FieldName)).All(ctx)
		if err != nil {
			return audit.Entry{}, fmt.Errorf("find domains using upstream: %w", err)
		}
		for _, d := range doms {
			users = append(users, "domain "+d.Name)
		}
		streams, err := tx.StreamProxy.Query().Where(streamproxy.UpstreamID(id)).Order(ent.Asc(streamproxy.FieldName)).All(ctx)
		if err != nil {
			return audit.Entry{}, fmt.Errorf("find streams using upstream: %w", err)
		}
		for _, st := range streams {
			users = append(users, "stream "+st.Name)
		}
		if len(users) > 0 {
			return audit.Entry{}, fmt.Errorf("upstream %q: %w by %s; point those at another upstream or remove them first", u.Name, ErrInUse, strings.Join(users, ", "))
		}
		if err := tx.Upstream.DeleteOneID(id).Exec(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("delete upstream: %w", err)
		}
		return audit.For(a.Actor, "upstream.delete", "upstream:"+u.Name, ""), nil
	})
}
