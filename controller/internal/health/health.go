// Package health probes domains through the nginx of every server that
// serves them: the controller requests a path with the domain's name as
// Host (and SNI over HTTPS) and records whether each node answers, how, and
// how fast. Alert rules read the results.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	entdomain "github.com/gatehousehq/gatehouse/ent/domain"
	"github.com/gatehousehq/gatehouse/ent/healthcheck"
	"github.com/gatehousehq/gatehouse/ent/healthoutage"
	"github.com/gatehousehq/gatehouse/ent/healthprobe"
)

// Endpoint is where a server's nginx answers.
type Endpoint struct {
	Host      string
	HTTPPort  int
	HTTPSPort int
}

// ErrEndpointUnknown means a server's agent has not said where nginx listens.
var ErrEndpointUnknown = errors.New("the server's nginx address is not known yet")

// ErrNotProbed means the controller will not dial where a server's nginx is
// said to be; NotProbed wraps the reason, which the node's result shows.
var ErrNotProbed = errors.New("not probed")

// NotProbed is an Endpoint error for a server that is not to be dialled.
func NotProbed(reason error) error { return notProbed{reason} }

type notProbed struct{ reason error }

func (e notProbed) Error() string        { return e.reason.Error() }
func (e notProbed) Unwrap() error        { return e.reason }
func (e notProbed) Is(target error) bool { return target == ErrNotProbed }

// Errors of the service.
var ErrNotFound = errors.New("no such domain")

// Config configures a Service.
type Config struct {
	// Endpoint tells where a server's nginx answers (ErrEndpointUnknown to skip it).
	Endpoint func(ctx context.Context, srv *ent.Server) (Endpoint, error)
	// Timeout bounds one probe; default 10 s.
	Timeout time.Duration
	// Parallel is how many domains are probed at once; default 8.
	Parallel int
	Now      func() time.Time
	Audit    *audit.Recorder
	// OnProbed, when set, is told a domain's newest results.
	OnProbed func(domainID int, up, down int)
}

// Service probes domains and keeps their results.
type Service struct {
	db  *store.DB
	cfg Config
	log hclog.Logger
}

// New returns a Service.
func New(db *store.DB, cfg Config, log hclog.Logger) *Service {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: db, cfg: cfg, log: log.Named("health")}
}

// ValidatePath returns a message for a health check path, or "".
func ValidatePath(p string) string {
	switch {
	case p == "":
		return "enter a path such as / or /healthz"
	case len(p) > 256:
		return "must be at most 256 bytes"
	case !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//"):
		return "must start with a single /"
	case strings.ContainsFunc(p, func(r rune) bool {
		return r > unicode.MaxASCII || unicode.IsControl(r) || r == ' ' || r == '#' || r == '\\'
	}):
		return "must be plain ASCII without spaces, #, backslashes or control characters (percent-encode the rest)"
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return "is not a valid request path"
	}
	return ""
}

// FieldError is a refused setting, by field.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Set turns a domain's health check on or off and sets its path.
func (s *Service) Set(ctx context.Context, actor audit.Actor, domainID int, path string, enabled bool) (*ent.HealthCheck, error) {
	path = strings.TrimSpace(path)
	if m := ValidatePath(path); m != "" {
		return nil, &FieldError{"path", m}
	}
	d, err := s.db.Client.Domain.Get(ctx, domainID)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	err = s.db.Client.HealthCheck.Create().SetDomainID(domainID).SetPath(path).SetEnabled(enabled).
		OnConflictColumns(healthcheck.FieldDomainID).UpdateNewValues().Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("save the health check: %w", err)
	}
	if !enabled {
		if err := (healthOutages{client: s.db.Client, domain: domainID}).End(ctx, s.cfg.Now().UTC()); err != nil {
			return nil, err
		}
	}
	if s.cfg.Audit != nil {
		state := "off"
		if enabled {
			state = "on"
		}
		if err := s.cfg.Audit.Record(ctx, audit.For(actor, "domain.health", "domain:"+d.Name, state+", path "+path)); err != nil {
			s.log.Error("audit", "error", err)
		}
	}
	return s.db.Client.HealthCheck.Query().Where(healthcheck.DomainID(domainID)).Only(ctx)
}

// Check returns a domain's health check settings, or nil when it has none.
func (s *Service) Check(ctx context.Context, domainID int) (*ent.HealthCheck, error) {
	hc, err := s.db.Client.HealthCheck.Query().Where(healthcheck.DomainID(domainID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return hc, err
}

// ProbeDomain requests the domain's health path through every server that
// serves it and records the outcomes. A domain without an enabled check is
// not probed (nil, nil).
func (s *Service) ProbeDomain(ctx context.Context, domainID int) ([]*ent.HealthProbe, error) {
	d, err := s.db.Client.Domain.Query().Where(entdomain.ID(domainID)).WithServers().WithHealthCheck().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	hc := d.Edges.HealthCheck
	if hc == nil || !hc.Enabled {
		return nil, nil
	}
	tlsOn, err := s.db.Client.Certificate.Query().Where(certificate.DomainID(d.ID), certificate.StatusEQ(certificate.StatusActive)).Exist(ctx)
	if err != nil {
		return nil, err
	}
	host := nginxconf.RequestName(d.Name)
	var out []*ent.HealthProbe
	up, down := 0, 0
	// The servers are asked at once; the answers are recorded in order.
	type asked struct {
		srv  *ent.Server
		ep   Endpoint
		p    outcome
		skip bool // not dialled; p says why
	}
	var todo []*asked
	for _, srv := range d.Edges.Servers {
		ep, err := s.cfg.Endpoint(ctx, srv)
		if errors.Is(err, ErrEndpointUnknown) {
			continue
		}
		if errors.Is(err, ErrNotProbed) {
			todo = append(todo, &asked{srv: srv, p: outcome{at: s.cfg.Now().UTC(), message: err.Error()}, skip: true})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("endpoint of server %s: %w", srv.Name, err)
		}
		todo = append(todo, &asked{srv: srv, ep: ep})
	}
	var wg sync.WaitGroup
	for _, a := range todo {
		if a.skip {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.p = s.probe(ctx, a.ep, host, hc.Path, tlsOn)
		}()
	}
	wg.Wait()
	prev, err := s.db.Client.HealthProbe.Query().Where(healthprobe.DomainID(d.ID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the previous probes: %w", err)
	}
	before := make(map[int]*ent.HealthProbe, len(prev))
	for _, p := range prev {
		before[p.ServerID] = p
	}
	serving := make([]int, 0, len(d.Edges.Servers))
	for _, srv := range d.Edges.Servers {
		serving = append(serving, srv.ID)
	}
	// A server that stopped serving the domain keeps no result, and its
	// outage ends.
	if _, err := s.db.Client.HealthProbe.Delete().Where(healthprobe.DomainID(d.ID), healthprobe.ServerIDNotIn(serving...)).Exec(ctx); err != nil {
		return nil, fmt.Errorf("drop results of former servers: %w", err)
	}
	if err := s.db.Client.HealthOutage.Update().Where(healthoutage.DomainID(d.ID), healthoutage.ServerIDNotIn(serving...), healthoutage.EndedAtIsNil()).
		SetEndedAt(s.cfg.Now().UTC()).Exec(ctx); err != nil {
		return nil, fmt.Errorf("end outages of former servers: %w", err)
	}
	for _, a := range todo {
		srv, p := a.srv, a.p
		var since *time.Time
		if !p.ok {
			// A failure continues the run of failures the previous probe was in.
			t := p.at
			if old := before[srv.ID]; old != nil && !old.Ok && old.FailingSince != nil {
				t = *old.FailingSince
			}
			since = &t
		}
		var row *ent.HealthProbe
		if old := before[srv.ID]; old != nil {
			upd := old.Update().SetAt(p.at).SetOk(p.ok).SetStatus(p.status).SetLatencyMs(p.latency).
				SetURL(clip(p.url, 600)).SetMessage(clip(p.message, 1000)).SetNillableFailingSince(since)
			if since == nil {
				upd.ClearFailingSince()
			}
			row, err = upd.Save(ctx)
		} else {
			row, err = s.db.Client.HealthProbe.Create().SetDomainID(d.ID).SetServerID(srv.ID).SetAt(p.at).SetOk(p.ok).
				SetStatus(p.status).SetLatencyMs(p.latency).SetURL(clip(p.url, 600)).SetMessage(clip(p.message, 1000)).
				SetNillableFailingSince(since).Save(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("record a probe: %w", err)
		}
		row.Edges.Server = srv
		out = append(out, row)
		if p.ok {
			up++
		} else {
			down++
		}
		outages := healthOutages{s.db.Client, d.ID, srv.ID}
		switch {
		case d.Maintenance:
			// Failures during maintenance are expected: they end an
			// outage rather than extend it.
			if err := outages.End(ctx, p.at); err != nil {
				return nil, err
			}
		case !a.skip:
			if err := s.count(ctx, d.ID, srv.ID, p); err != nil {
				return nil, err
			}
			// The run of failures dates an outage, unless the node was not
			// dialled last time: "not probed" is no evidence it was down.
			old := before[srv.ID]
			runStart := p.at
			if since != nil && (old == nil || old.URL != "") {
				runStart = *since
			}
			// An outage can be open only after a failed probe, so a good
			// probe after good ones has nothing to end.
			failing := !p.ok || (old != nil && old.FailingSince != nil)
			if failing {
				if err := uptime.RecordOutage(ctx, outages, p.ok, p.at, runStart, clip(p.message, 1000)); err != nil {
					return nil, err
				}
			}
		}
	}
	if s.cfg.OnProbed != nil {
		s.cfg.OnProbed(d.ID, up, down)
	}
	return out, nil
}

type outcome struct {
	at      time.Time
	ok      bool
	status  int
	latency int
	url     string
	message string
}

// probe makes one request: to the node's address, for the domain.
func (s *Service) probe(ctx context.Context, ep Endpoint, host, path string, tlsOn bool) outcome {
	scheme, port := "http", ep.HTTPPort
	if tlsOn {
		scheme, port = "https", ep.HTTPSPort
	}
	addr := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	o := outcome{at: s.cfg.Now().UTC(), url: scheme + "://" + host + path + " via " + addr}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		o.message = err.Error()
		return o
	}
	req.Host = host
	req.Header.Set("User-Agent", "Gatehouse-Health/1")
	// The request goes to the node's address whatever the domain resolves
	// to, and checks what the node answers, not its certificate: the
	// certificate watch does that.
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:        &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	start := time.Now()
	resp, err := client.Do(req)
	o.latency = int(time.Since(start).Milliseconds())
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL names the node's address, not the domain: say it once, in o.url
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			o.message = fmt.Sprintf("no answer within %s", s.cfg.Timeout)
		} else {
			o.message = err.Error()
		}
		return o
	}
	resp.Body.Close()
	o.status = resp.StatusCode
	o.ok = resp.StatusCode >= 200 && resp.StatusCode < 400
	if !o.ok {
		o.message = "answered " + resp.Status
	}
	return o
}

// ProbeAll probes every domain with an enabled check, for the scheduled
// job. It fails when a node does not answer well, naming it.
func (s *Service) ProbeAll(ctx context.Context, logf func(string, ...any)) error {
	if _, err := s.Prune(ctx); err != nil {
		return fmt.Errorf("prune hourly counts: %w", err)
	}
	ids, err := s.db.Client.HealthCheck.Query().Where(healthcheck.Enabled(true)).Select(healthcheck.FieldDomainID).Ints(ctx)
	if err != nil {
		return fmt.Errorf("list health checks: %w", err)
	}
	// Domains are probed a few at a time, so the run keeps to its interval.
	problems := uptime.Each(ids, s.cfg.Parallel, func(id int) []string {
		probes, err := s.ProbeDomain(ctx, id)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, p := range probes {
			if !p.Ok {
				what := p.URL
				if what == "" { // not dialled
					what = "domain #" + strconv.Itoa(p.DomainID)
				}
				out = append(out, fmt.Sprintf("%s on %s: %s", what, p.Edges.Server.Name, p.Message))
			}
		}
		return out
	})
	// The job is quiet: a run is kept only when something is down.
	if len(problems) > 0 {
		logf("probed %d domains", len(ids))
		return fmt.Errorf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// Latest returns the newest probe of each server for a domain.
func (s *Service) Latest(ctx context.Context, domainID int) ([]*ent.HealthProbe, error) {
	return s.db.Client.HealthProbe.Query().Where(healthprobe.DomainID(domainID)).
		Order(ent.Asc(healthprobe.FieldServerID)).WithServer().All(ctx)
}

// clip makes text from the network safe to store and show: valid UTF-8,
// no control characters, at most n bytes, cut between characters.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Summary counts a domain's serving nodes by the newest health probe.
// Maintenance says the domain answers 503 on purpose, so Down is expected.
type Summary struct {
	Up, Down    int
	Maintenance bool
}

// Failing reports whether the domain is down somewhere, maintenance aside.
func (s Summary) Failing() bool { return s.Down > 0 && !s.Maintenance }

// Summaries returns the newest-probe counts of the given domains that have
// an enabled health check, in one query.
func (s *Service) Summaries(ctx context.Context, domainIDs []int) (map[int]Summary, error) {
	out := map[int]Summary{}
	if len(domainIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Client.HealthProbe.Query().
		Where(healthprobe.DomainIDIn(domainIDs...), healthprobe.HasDomainWith(entdomain.HasHealthCheckWith(healthcheck.Enabled(true)))).
		Select(healthprobe.FieldDomainID, healthprobe.FieldOk).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		sum := out[r.DomainID]
		if r.Ok {
			sum.Up++
		} else {
			sum.Down++
		}
		out[r.DomainID] = sum
	}
	paused, err := s.db.Client.Domain.Query().Where(entdomain.IDIn(domainIDs...), entdomain.Maintenance(true)).IDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range paused {
		if sum, ok := out[id]; ok {
			sum.Maintenance = true
			out[id] = sum
		}
	}
	return out, nil
}
