// Package monitors checks endpoints that are not managed domains: an HTTP(S)
// URL answers 2xx or 3xx with a valid certificate, a TCP host:port accepts a
// connection, a TLS host:port completes a handshake, or (push) an outside
// job calls the monitor's secret URL often enough. Each check's result is
// kept on the monitor and counted in its hour for uptime figures.
package monitors

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/uptime"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/monitor"
	"github.com/gatehousehq/gatehouse/ent/monitorhour"
	"github.com/gatehousehq/gatehouse/ent/monitoroutage"
)

// Retention is how long hourly counts and ended outages are kept.
const Retention = 90 * 24 * time.Hour

// UserAgent is sent with every HTTP check.
const UserAgent = "Gatehouse-Monitor/1"

// bodyLimit is how much of a response body is read (and discarded).
const bodyLimit = 64 << 10

// ErrNotFound means there is no such monitor.
var ErrNotFound = errors.New("no such monitor")

// Config configures a Service.
type Config struct {
	// Parallel is how many monitors are checked at once; default 8.
	Parallel int
	Now      func() time.Time
	Audit    *audit.Recorder
	// OnChange, when set, is called after a monitor was created, changed or
	// deleted (the status page drops its cached view).
	OnChange func()
	// Every is how often ProbeAll runs. A monitor is checked on the run
	// nearest to its due time, so one checked every 60 s by a job ticking
	// every 20 s does not drift to 80 s. Default 20 s.
	Every time.Duration
	// RootCAs are the roots https certificates are verified against; nil
	// means the system's.
	RootCAs *x509.CertPool
}

// Tick is how often the scheduled job looks for monitors that are due: the
// shortest interval a monitor may have.
const Tick = MinIntervalS * time.Second

// Service keeps monitors, checks them and takes their pushes. Its only
// state is the push rate limit, so the job and the pages may each hold one
// as long as pushes go through one.
type Service struct {
	db     *store.DB
	cfg    Config
	log    hclog.Logger
	pushes *limiter
}

// New returns a Service.
func New(db *store.DB, cfg Config, log hclog.Logger) *Service {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Every <= 0 {
		cfg.Every = Tick
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: db, cfg: cfg, log: log.Named("monitors"), pushes: newLimiter()}
}

// List returns every monitor by name.
func (s *Service) List(ctx context.Context) ([]*ent.Monitor, error) {
	return s.db.Client.Monitor.Query().Order(ent.Asc(monitor.FieldName)).All(ctx)
}

// Get returns one monitor.
func (s *Service) Get(ctx context.Context, id int) (*ent.Monitor, error) {
	m, err := s.db.Client.Monitor.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	return m, err
}

// record writes a change to the audit log and tells OnChange.
func (s *Service) record(ctx context.Context, actor audit.Actor, action, name, detail string) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange()
	}
	if s.cfg.Audit == nil {
		return
	}
	if err := s.cfg.Audit.Record(ctx, audit.For(actor, action, "monitor:"+name, detail)); err != nil {
		s.log.Error("audit", "error", err)
	}
}

func describe(in Input) string {
	if in.Kind == KindPush {
		return describePush(in)
	}
	state := "on"
	if !in.Enabled {
		state = "off"
	}
	if in.StatusPage {
		state += ", on the status page"
	}
	expect := ""
	if in.Kind == KindHTTP {
		expect = ", status " + DefaultExpectText
		if in.ExpectStatus != "" {
			expect = ", status " + in.ExpectStatus
		}
		if in.ExpectBody != "" {
			expect += fmt.Sprintf(", body holds %q", in.ExpectBody)
		}
		if in.IgnoreTLSErrors {
			expect += ", any certificate"
		}
	}
	if in.Retries > 0 {
		expect += fmt.Sprintf(", down after %d failed checks", in.Retries+1)
	}
	return fmt.Sprintf("%s %s every %d s%s, timeout %d ms, %s", in.Kind, in.Target, in.IntervalS, expect, in.TimeoutMS, state)
}

// nameTaken turns a unique-name violation into a field error.
func (s *Service) nameTaken(ctx context.Context, name string, except int) error {
	taken, err := s.db.Client.Monitor.Query().Where(monitor.Name(name), monitor.IDNEQ(except)).Exist(ctx)
	if err != nil {
		return err
	}
	if taken {
		return FieldErrors{"name": "another monitor has this name"}
	}
	return nil
}

// storedTimeout is the timeout kept for in: a push monitor has none, and
// keeps the default in its place.
func storedTimeout(in Input) int {
	if in.Kind == KindPush {
		return DefaultTimeoutMS
	}
	return in.TimeoutMS
}

// Create adds a monitor. A push monitor is given a push token, returned
// here and nowhere else (only its hash is kept); token is "" for the other
// kinds.
func (s *Service) Create(ctx context.Context, actor audit.Actor, in Input) (m *ent.Monitor, token string, err error) {
	in, err = Validate(in)
	if err != nil {
		return nil, "", err
	}
	if err := s.nameTaken(ctx, in.Name, 0); err != nil {
		return nil, "", err
	}
	c := s.db.Client.Monitor.Create().SetName(in.Name).SetKind(monitor.Kind(in.Kind)).SetTarget(in.Target).
		SetTimeoutMs(storedTimeout(in)).SetIntervalS(in.IntervalS).SetRetries(in.Retries).SetExpectStatus(in.ExpectStatus).SetExpectBody(in.ExpectBody).
		SetIgnoreTLSErrors(in.IgnoreTLSErrors).SetEnabled(in.Enabled).SetStatusPage(in.StatusPage)
	if in.Kind == KindPush {
		var hash string
		if token, hash, err = newPushToken(); err != nil {
			return nil, "", err
		}
		c.SetPushTokenHash(hash)
		if in.Enabled {
			c.SetPushDueAt(pushDeadline(s.cfg.Now(), in.IntervalS))
		}
	}
	m, err = c.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, "", FieldErrors{"name": "another monitor has this name"}
	}
	if err != nil {
		return nil, "", fmt.Errorf("save the monitor: %w", err)
	}
	s.record(ctx, actor, "monitor.create", m.Name, describe(in))
	return m, token, nil
}

// Update changes a monitor's settings. A changed target or kind starts
// afresh: the newest result and the run of failures are cleared. A monitor
// that becomes a push monitor is given a push token, returned here once
// ("" otherwise); a push monitor keeps its token through edits, and one
// that stops being one loses it.
func (s *Service) Update(ctx context.Context, actor audit.Actor, id int, in Input) (m *ent.Monitor, token string, err error) {
	old, err := s.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	in, err = Validate(in)
	if err != nil {
		return nil, "", err
	}
	if err := s.nameTaken(ctx, in.Name, id); err != nil {
		return nil, "", err
	}
	// Seq moves on, so a result judged on the old settings is judged again.
	upd := old.Update().SetName(in.Name).SetKind(monitor.Kind(in.Kind)).SetTarget(in.Target).
		SetTimeoutMs(storedTimeout(in)).SetIntervalS(in.IntervalS).SetRetries(in.Retries).SetExpectStatus(in.ExpectStatus).SetExpectBody(in.ExpectBody).
		SetIgnoreTLSErrors(in.IgnoreTLSErrors).SetEnabled(in.Enabled).SetStatusPage(in.StatusPage).AddSeq(1)
	afresh := old.Target != in.Target || string(old.Kind) != in.Kind
	if afresh {
		upd.ClearCheckedAt().ClearFailingSince().ClearCertNotAfter().SetOk(false).SetFailedChecks(0).SetStatus(0).SetLatencyMs(0).SetMessage("")
	}
	if token, err = s.pushSettings(upd, old, in, afresh); err != nil {
		return nil, "", err
	}
	// An outage ends when what failed is no longer watched: the target
	// changed or the monitor was turned off.
	if afresh || !in.Enabled {
		if err := s.endOutage(ctx, id, s.cfg.Now().UTC()); err != nil {
			return nil, "", err
		}
	}
	m, err = upd.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, "", FieldErrors{"name": "another monitor has this name"}
	}
	if ent.IsNotFound(err) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("save the monitor: %w", err)
	}
	detail := describe(in)
	if old.Name != in.Name {
		detail = "renamed from " + old.Name + "; " + detail
	}
	if token != "" {
		detail += "; new push URL"
	}
	s.record(ctx, actor, "monitor.update", m.Name, detail)
	return m, token, nil
}

// Delete removes a monitor and its hourly counts.
func (s *Service) Delete(ctx context.Context, actor audit.Actor, id int) error {
	m, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	err = s.db.Client.Monitor.DeleteOneID(id).Exec(ctx)
	if ent.IsNotFound(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete the monitor: %w", err)
	}
	s.record(ctx, actor, "monitor.delete", m.Name, describe(InputOf(m)))
	return nil
}

// Result is the outcome of one check.
type Result struct {
	At        time.Time
	OK        bool
	Status    int
	LatencyMS int
	Message   string
	// CertNotAfter is when the certificate an https target presented
	// expires; nil when the check did not reach the TLS handshake.
	CertNotAfter *time.Time
}

// Check checks one monitor now, whether or not it is enabled, and records
// the result.
func (s *Service) Check(ctx context.Context, id int) (*ent.Monitor, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.check(ctx, m)
}

func (s *Service) check(ctx context.Context, m *ent.Monitor) (*ent.Monitor, error) {
	if m.Kind == monitor.KindPush {
		return s.overdue(ctx, m)
	}
	r := s.Probe(ctx, SpecOf(m))
	return s.apply(ctx, m, func(cur *ent.Monitor) (outcome, bool, error) {
		// A result of what the monitor no longer watches is dropped.
		return outcome{Result: r}, cur.Kind == m.Kind && cur.Target == m.Target, nil
	})
}

// outcome is a result to record, with what a push monitor adds to it.
type outcome struct {
	Result
	// pushed says a push brought it: its time becomes the last push.
	pushed bool
	// due is a push monitor's next deadline; zero for the other kinds.
	due time.Time
}

// judge decides, from the newest row of a monitor, what to record; ok
// false records nothing.
type judge func(m *ent.Monitor) (o outcome, ok bool, err error)

// maxAttempts bounds how often apply reads and judges a monitor that
// others keep writing.
const maxAttempts = 5

// errMoved is a row written by someone else since it was read.
var errMoved = errors.New("the monitor changed while its check was recorded")

// apply records what decide makes of m, reading m again and asking again
// whenever another result or edit was written in between (a push and the
// scheduled job at the same moment): every result is judged on the row it
// is written over, so none is counted twice and no outage is lost.
func (s *Service) apply(ctx context.Context, m *ent.Monitor, decide judge) (*ent.Monitor, error) {
	for attempt := 1; ; attempt++ {
		o, ok, err := decide(m)
		if err != nil || !ok {
			return m, err
		}
		row, err := s.write(ctx, m, o)
		if !errors.Is(err, errMoved) {
			return row, err
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("record the check: %w %d times; try again", err, attempt)
		}
		if m, err = s.Get(ctx, m.ID); err != nil {
			return nil, err // ErrNotFound when it was removed
		}
	}
}

// write records o over m in one transaction: the newest result on the row
// (only if the row is still the one o was judged on), the hourly count and
// the outage.
func (s *Service) write(ctx context.Context, m *ent.Monitor, o outcome) (_ *ent.Monitor, err error) {
	r := o.Result
	// The monitor is down once more checks than its retries failed in a
	// row; until then it is up, retrying.
	failed := 0
	if !r.OK {
		failed = m.FailedChecks + 1
	}
	down := failed > m.Retries
	tx, err := s.db.Client.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("record the check: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			err = errors.Join(err, rerr)
		}
	}()
	upd := tx.Monitor.UpdateOneID(m.ID).Where(monitor.Seq(m.Seq)).AddSeq(1).SetCheckedAt(r.At).SetOk(!down).SetStatus(r.Status).
		SetFailedChecks(failed).SetLatencyMs(r.LatencyMS).SetMessage(clip(r.Message, 1000)).SetNillableCertNotAfter(r.CertNotAfter)
	if o.pushed {
		upd.SetLastPushAt(r.At)
	}
	if !o.due.IsZero() {
		upd.SetPushDueAt(o.due)
	}
	if r.OK {
		upd.ClearFailingSince()
	} else {
		// A failure continues the run of failures the previous check was in.
		since := r.At
		if m.FailingSince != nil { // cleared by every good check
			since = *m.FailingSince
		}
		upd.SetFailingSince(since)
	}
	row, err := upd.Save(ctx)
	if ent.IsNotFound(err) {
		return nil, errMoved // written or removed since it was read
	}
	if err != nil {
		return nil, fmt.Errorf("record the check: %w", err)
	}
	if err := count(ctx, tx.Client(), m.ID, r); err != nil {
		return nil, err
	}
	runStart := r.At
	if row.FailingSince != nil {
		runStart = *row.FailingSince
	}
	// An outage can be open only after a failed check, so a good check
	// after good ones has nothing to end.
	if down || m.FailingSince != nil {
		res := r
		res.OK = !down
		if err := uptime.RecordOutage(ctx, monitorOutages{tx.Client(), m.ID}, res.OK, res.At, runStart, clip(res.Message, 1000)); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("record the check: %w", err)
	}
	return row, nil
}

// endOutage ends the monitor's open outage, if any, at.
func (s *Service) endOutage(ctx context.Context, id int, at time.Time) error {
	return monitorOutages{s.db.Client, id}.End(ctx, at)
}

// monitorOutages are one monitor's runs of failed checks.
type monitorOutages struct {
	client *ent.Client
	id     int
}

func (o monitorOutages) open() *ent.MonitorOutageUpdate {
	return o.client.MonitorOutage.Update().Where(monitoroutage.MonitorID(o.id), monitoroutage.EndedAtIsNil())
}

func (o monitorOutages) Extend(ctx context.Context) (bool, error) {
	n, err := o.open().AddChecks(1).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("count a failed check: %w", err)
	}
	return n > 0, nil
}

func (o monitorOutages) LastEnded(ctx context.Context) (*time.Time, error) {
	last, err := o.client.MonitorOutage.Query().Where(monitoroutage.MonitorID(o.id), monitoroutage.EndedAtNotNil()).
		Order(ent.Desc(monitoroutage.FieldEndedAt)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outages: %w", err)
	}
	return last.EndedAt, nil
}

func (o monitorOutages) Open(ctx context.Context, start time.Time, message string) error {
	err := o.client.MonitorOutage.Create().SetMonitorID(o.id).SetStartedAt(start).SetMessage(message).Exec(ctx)
	if ent.IsConstraintError(err) {
		return ErrNotFound // removed while it was checked
	}
	if err != nil {
		return fmt.Errorf("record an outage: %w", err)
	}
	return nil
}

func (o monitorOutages) End(ctx context.Context, at time.Time) error {
	if err := o.open().SetEndedAt(at).Exec(ctx); err != nil {
		return fmt.Errorf("end an outage: %w", err)
	}
	return nil
}

// Outages returns a monitor's newest runs of failures, newest first.
func (s *Service) Outages(ctx context.Context, id, limit int) ([]*ent.MonitorOutage, error) {
	out, err := s.db.Client.MonitorOutage.Query().Where(monitoroutage.MonitorID(id)).
		Order(ent.Desc(monitoroutage.FieldStartedAt), ent.Desc(monitoroutage.FieldID)).Limit(limit).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read outages: %w", err)
	}
	return out, nil
}

// count adds one check to its hour.
func count(ctx context.Context, client *ent.Client, id int, r Result) error {
	var up, down int
	var latency int64
	if r.OK {
		up, latency = 1, int64(r.LatencyMS)
	} else {
		down = 1
	}
	err := client.MonitorHour.Create().SetMonitorID(id).SetHour(r.At.UTC().Truncate(time.Hour)).
		SetUp(up).SetDown(down).SetLatencyMsSum(latency).
		OnConflictColumns(monitorhour.FieldMonitorID, monitorhour.FieldHour).
		Update(func(u *ent.MonitorHourUpsert) {
			u.AddUp(up)
			u.AddDown(down)
			u.AddLatencyMsSum(latency)
		}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("count a check: %w", err)
	}
	return nil
}

// Spec is what one check asks of a target.
type Spec struct {
	Kind    string
	Target  string
	Timeout time.Duration
	// Statuses count as up (HTTP); empty means DefaultStatuses.
	Statuses Statuses
	// Body must appear in the first 64 KiB of the answer (HTTP); empty
	// means any body.
	Body string
	// IgnoreTLSErrors accepts any certificate (https).
	IgnoreTLSErrors bool

	roots *x509.CertPool // from Config.RootCAs
}

// SpecOf is the check a stored monitor asks for.
func SpecOf(m *ent.Monitor) Spec {
	sp := Spec{Kind: string(m.Kind), Target: m.Target, Timeout: time.Duration(m.TimeoutMs) * time.Millisecond, Body: m.ExpectBody,
		IgnoreTLSErrors: m.IgnoreTLSErrors}
	if m.ExpectStatus != "" {
		// Stored settings passed Validate; a row edited by hand that no
		// longer parses falls back to the default rather than to "any".
		sp.Statuses, _ = ParseStatuses(m.ExpectStatus)
	}
	return sp
}

// Probe checks a target once without recording anything. The target is
// dialled as given: monitors are set by admins, and loopback is allowed.
func (s *Service) Probe(ctx context.Context, sp Spec) Result {
	sp.roots = s.cfg.RootCAs
	r := Result{At: s.cfg.Now().UTC()}
	ctx, cancel := context.WithTimeout(ctx, sp.Timeout)
	defer cancel()
	start := time.Now()
	var err error
	switch sp.Kind {
	case KindHTTP:
		r.Status, r.CertNotAfter, err = probeHTTP(ctx, sp)
	case KindTCP:
		err = probeTCP(ctx, sp.Target)
	case KindTLS:
		r.CertNotAfter, err = probeTLS(ctx, sp)
	default:
		err = fmt.Errorf("unknown kind %q", sp.Kind)
	}
	r.LatencyMS = int(time.Since(start).Milliseconds())
	if err != nil {
		r.Message = explain(err, sp.Timeout)
		return r
	}
	r.OK = true
	return r
}

// errStatus is an HTTP answer that counts as down.
type errStatus struct {
	code int
	want Statuses // nil for the default
}

func (e errStatus) Error() string {
	msg := strings.TrimSpace(fmt.Sprintf("answered %d %s", e.code, http.StatusText(e.code)))
	if e.want != nil {
		msg += ", expected " + e.want.String()
	}
	return msg
}

// errBody is an answer without the expected text.
type errBody string

func (e errBody) Error() string {
	return fmt.Sprintf("the answer's first 64 KiB do not contain %q", string(e))
}

func probeHTTP(ctx context.Context, sp Spec) (status int, certNotAfter *time.Time, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sp.Target, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", UserAgent)
	client := &http.Client{
		Transport: &http.Transport{
			// Go's own verification is replaced by verifyPeer, which also
			// keeps the expiry of a certificate it refuses or is told to
			// accept.
			TLSClientConfig:        tlsConfig(sp, req.URL.Hostname(), &certNotAfter),
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, certNotAfter, err
	}
	defer resp.Body.Close()
	status, err = checkAnswer(resp, sp)
	return status, certNotAfter, err
}

// verifyPeer checks the chain an https target presented against roots (nil:
// the system's) and the target's host name or IP address, as Go's TLS
// client would.
func verifyPeer(cs tls.ConnectionState, host string, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server presented no certificate")
	}
	opts := x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// checkAnswer judges a response: its status, then the expected text.
func checkAnswer(resp *http.Response, sp Spec) (int, error) {
	want := sp.Statuses
	if len(want) == 0 {
		want = DefaultStatuses
	}
	if !want.Has(resp.StatusCode) {
		return resp.StatusCode, errStatus{code: resp.StatusCode, want: sp.Statuses}
	}
	if sp.Body == "" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
		return resp.StatusCode, nil
	}
	found, err := bodyHolds(resp.Body, sp.Body)
	switch {
	case found:
		return resp.StatusCode, nil
	case err != nil:
		return resp.StatusCode, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, errBody(clip(sp.Body, 60))
}

// bodyHolds reads up to bodyLimit bytes of r and stops as soon as they hold
// text, so a large or endless answer is not read further than needed.
func bodyHolds(r io.Reader, text string) (bool, error) {
	buf := make([]byte, 0, 16<<10)
	want := []byte(text)
	for len(buf) < bodyLimit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), bodyLimit)])
		// Only the new bytes and the len(text)-1 before them can complete
		// a match not seen before.
		from := max(0, len(buf)-len(want)+1)
		buf = buf[:len(buf)+n]
		if bytes.Contains(buf[from:], want) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// tlsConfig verifies a target's certificate with verifyPeer (unless any is
// accepted), noting its expiry in *notAfter either way.
func tlsConfig(sp Spec, host string, notAfter **time.Time) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, ServerName: serverName(host),
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				t := cs.PeerCertificates[0].NotAfter.UTC()
				*notAfter = &t
			}
			if sp.IgnoreTLSErrors {
				return nil
			}
			return verifyPeer(cs, host, sp.roots)
		}}
}

// serverName is the SNI sent to host: none for an IP address.
func serverName(host string) string {
	if net.ParseIP(host) != nil {
		return ""
	}
	return host
}

// probeTLS completes a TLS handshake with host:port.
func probeTLS(ctx context.Context, sp Spec) (*time.Time, error) {
	host, _, err := net.SplitHostPort(sp.Target)
	if err != nil {
		return nil, err
	}
	var notAfter *time.Time
	d := tls.Dialer{Config: tlsConfig(sp, host, &notAfter)}
	conn, err := d.DialContext(ctx, "tcp", sp.Target)
	if err != nil {
		return notAfter, err
	}
	return notAfter, conn.Close()
}

func probeTCP(ctx context.Context, target string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	return conn.Close()
}

// explain says why a check failed.
func explain(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is the monitor's target, shown beside
	}
	var (
		ne  net.Error
		cve *tls.CertificateVerificationError
		st  errStatus
		eb  errBody
	)
	switch {
	case errors.As(err, &st):
		return st.Error()
	case errors.As(err, &eb):
		return eb.Error()
	case errors.As(err, &cve):
		return "the TLS certificate is not valid: " + cve.Err.Error()
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

// clip makes text for storing and showing: valid UTF-8, control characters
// as spaces, at most n bytes.
func clip(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) {
			r = ' '
		}
		if b.Len()+len(string(r)) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// InputOf is a stored monitor's settings.
func InputOf(m *ent.Monitor) Input {
	in := Input{Name: m.Name, Kind: string(m.Kind), Target: m.Target, TimeoutMS: m.TimeoutMs, IntervalS: m.IntervalS, Retries: m.Retries,
		ExpectStatus: m.ExpectStatus, ExpectBody: m.ExpectBody, IgnoreTLSErrors: m.IgnoreTLSErrors, Enabled: m.Enabled, StatusPage: m.StatusPage}
	if m.Kind == monitor.KindPush {
		in.TimeoutMS = 0
	}
	return in
}

// Due reports whether the run of ProbeAll at now should check m: it was
// never checked, or its interval ends before the next run is half way. A
// push monitor is due once its deadline passed without a push, never
// early.
func (s *Service) Due(m *ent.Monitor, now time.Time) bool {
	if m.Kind == monitor.KindPush {
		return m.PushDueAt != nil && !now.Before(*m.PushDueAt)
	}
	if m.CheckedAt == nil {
		return true
	}
	next := m.CheckedAt.Add(time.Duration(m.IntervalS) * time.Second)
	return !now.Add(s.cfg.Every / 2).Before(next)
}

// ProbeAll checks every enabled monitor that is due, a few at a time, for
// the scheduled job, and prunes old hourly counts. It fails when a monitor
// it checked is down, naming it.
func (s *Service) ProbeAll(ctx context.Context, logf func(string, ...any)) error {
	if _, err := s.Prune(ctx); err != nil {
		return fmt.Errorf("prune hourly counts: %w", err)
	}
	all, err := s.db.Client.Monitor.Query().Where(monitor.Enabled(true)).All(ctx)
	if err != nil {
		return fmt.Errorf("list monitors: %w", err)
	}
	now := s.cfg.Now()
	var ms []*ent.Monitor
	for _, m := range all {
		if s.Due(m, now) {
			ms = append(ms, m)
		}
	}
	problems := uptime.Each(ms, s.cfg.Parallel, func(m *ent.Monitor) []string {
		row, err := s.check(ctx, m)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return []string{m.Name + ": " + err.Error()}
		case !row.Ok:
			return []string{fmt.Sprintf("%s (%s): %s", m.Name, watched(m), row.Message)}
		}
		return nil
	})
	// The job is quiet: a run is kept only when something is down.
	if len(problems) > 0 {
		logf("checked %d monitors", len(ms))
		return fmt.Errorf("%d monitor(s) down: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// watched is what a monitor watches, for messages: its target, or "push".
func watched(m *ent.Monitor) string {
	if m.Kind == monitor.KindPush {
		return KindPush
	}
	return m.Target
}

// Prune deletes hourly counts, and outages that ended, older than
// Retention.
func (s *Service) Prune(ctx context.Context) (int, error) {
	cut := s.cfg.Now().UTC().Add(-Retention)
	n, err := s.db.Client.MonitorHour.Delete().Where(monitorhour.HourLT(cut)).Exec(ctx)
	if err != nil {
		return n, err
	}
	o, err := s.db.Client.MonitorOutage.Delete().Where(monitoroutage.EndedAtLT(cut)).Exec(ctx)
	return n + o, err
}

// rows reads the hourly counts of the given monitors from first on.
func (s *Service) rows(ctx context.Context, ids []int, first time.Time) ([]uptime.Row, error) {
	hours, err := s.db.Client.MonitorHour.Query().Where(monitorhour.MonitorIDIn(ids...), monitorhour.HourGTE(first)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hourly counts: %w", err)
	}
	out := make([]uptime.Row, len(hours))
	for i, h := range hours {
		out[i] = uptime.Row{Key: h.MonitorID, Hour: h.Hour, Up: h.Up, Down: h.Down, LatencySum: h.LatencyMsSum}
	}
	return out, nil
}

// Uptime returns the uptime of the given monitors over each of
// uptime.Spans, by span name. Monitors without counted checks are absent.
func (s *Service) Uptime(ctx context.Context, ids []int) (map[string]map[int]uptime.Uptime, error) {
	out := make(map[string]map[int]uptime.Uptime, len(uptime.Spans))
	if len(ids) == 0 {
		for _, sp := range uptime.Spans {
			out[sp.Name] = map[int]uptime.Uptime{}
		}
		return out, nil
	}
	longest := uptime.Spans[len(uptime.Spans)-1].Span
	rows, err := s.rows(ctx, ids, uptime.Since(s.cfg.Now(), longest))
	if err != nil {
		return nil, err
	}
	for _, sp := range uptime.Spans {
		first := uptime.Since(s.cfg.Now(), sp.Span)
		in := make([]uptime.Row, 0, len(rows))
		for _, r := range rows {
			if !r.Hour.Before(first) {
				in = append(in, r)
			}
		}
		out[sp.Name] = uptime.ByKey(in)
	}
	return out, nil
}

// Hours returns the last n hours of a monitor, oldest first, including
// hours without checks.
func (s *Service) Hours(ctx context.Context, id, n int) ([]uptime.Bucket, error) {
	first := uptime.Since(s.cfg.Now(), time.Duration(n)*time.Hour)
	rows, err := s.rows(ctx, []int{id}, first)
	if err != nil {
		return nil, err
	}
	return uptime.Hours(rows, first, n), nil
}

// Days returns the last n UTC days (today last) of a monitor, including
// days without checks.
func (s *Service) Days(ctx context.Context, id, n int) ([]uptime.Bucket, error) {
	first := uptime.FirstDay(s.cfg.Now(), n)
	rows, err := s.rows(ctx, []int{id}, first)
	if err != nil {
		return nil, err
	}
	return uptime.Days(rows, []int{id}, first, n)[id], nil
}
