package certs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/acme"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/acmeaccount"
	"github.com/gatehousehq/gatehouse/ent/certificate"
	"github.com/gatehousehq/gatehouse/ent/certpolicy"
	"github.com/gatehousehq/gatehouse/ent/task"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// TaskKind is the kind of the Task recorded for each issuance attempt.
const TaskKind = "certificate.issue"

func accountAAD(directory string) []byte { return []byte("acme_accounts.key_sealed:" + directory) }

func certKeyAAD(fingerprint string) []byte {
	return []byte("certificates.key_sealed:" + fingerprint)
}

// account returns the ACME account for the configured directory, registering
// one (and storing its key sealed) the first time.
func (s *Service) account(ctx context.Context) (acme.Account, error) {
	s.accountMu.Lock()
	defer s.accountMu.Unlock()
	dir := s.cfg.DirectoryURL
	row, err := s.db.Client.AcmeAccount.Query().Where(acmeaccount.DirectoryURL(dir)).Only(ctx)
	if err == nil {
		key, err := s.box.Open(row.KeySealed, accountAAD(dir))
		if err != nil {
			return acme.Account{}, fmt.Errorf("open the acme account key: %w", err)
		}
		return acme.Account{DirectoryURL: dir, Email: row.Email, URI: row.URI, KeyPEM: key}, nil
	}
	if !ent.IsNotFound(err) {
		return acme.Account{}, fmt.Errorf("load acme account: %w", err)
	}
	acct, err := s.client.NewAccount(ctx, s.cfg.Email)
	if err != nil {
		return acme.Account{}, err
	}
	sealed, err := s.box.Seal(acct.KeyPEM, accountAAD(dir))
	if err != nil {
		return acme.Account{}, err
	}
	if err := s.db.Client.AcmeAccount.Create().SetDirectoryURL(dir).SetEmail(acct.Email).SetURI(acct.URI).
		SetKeySealed(sealed).Exec(ctx); err != nil {
		return acme.Account{}, fmt.Errorf("store acme account: %w", err)
	}
	return acct, nil
}

// caaIdentity is the CA's CAA identity: configured, or the first of the
// caaIdentities its directory announces.
func (s *Service) caaIdentity(ctx context.Context) (string, error) {
	s.caaMu.Lock()
	defer s.caaMu.Unlock()
	if s.caaID != "" {
		return s.caaID, nil
	}
	hc := s.cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.DirectoryURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("read the CA's CAA identity from %s: %w", s.cfg.DirectoryURL, err)
	}
	defer resp.Body.Close()
	var dir struct {
		Meta struct {
			CAAIdentities []string `json:"caaIdentities"`
		} `json:"meta"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("read the CA's CAA identity: %s answered %s", s.cfg.DirectoryURL, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&dir); err != nil {
		return "", fmt.Errorf("read the CA's CAA identity: %w", err)
	}
	if len(dir.Meta.CAAIdentities) == 0 {
		return "", errors.New("the CA's directory announces no CAA identity; set acme_caa_identity")
	}
	s.caaID = dir.Meta.CAAIdentities[0]
	return s.caaID, nil
}

// Policy returns how a domain gets its certificate; a domain without a stored
// policy gets the default (acme, http-01), unsaved.
func (s *Service) Policy(ctx context.Context, domainID int) (*ent.CertPolicy, error) {
	p, err := s.db.Client.CertPolicy.Query().Where(certpolicy.DomainID(domainID)).Only(ctx)
	if ent.IsNotFound(err) {
		return &ent.CertPolicy{DomainID: domainID, Mode: certpolicy.ModeAcme, Challenge: certpolicy.ChallengeHTTP01}, nil
	}
	return p, err
}

// PolicyInput changes how a domain gets its certificate.
type PolicyInput struct {
	Mode          string // acme or upload
	Challenge     string // http-01 or dns-01
	DNSProviderID int    // required for dns-01
}

// FieldError is a problem with one input field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// SetPolicy stores how a domain gets its certificate.
func (s *Service) SetPolicy(ctx context.Context, domainID int, in PolicyInput) (*ent.CertPolicy, error) {
	if _, err := s.domain(ctx, domainID); err != nil {
		return nil, err
	}
	mode := certpolicy.Mode(in.Mode)
	if certpolicy.ModeValidator(mode) != nil {
		return nil, &FieldError{"mode", "choose acme (automatic) or upload"}
	}
	ch := certpolicy.Challenge(in.Challenge)
	if in.Challenge == "" {
		ch = certpolicy.ChallengeHTTP01
	}
	if certpolicy.ChallengeValidator(ch) != nil {
		return nil, &FieldError{"challenge", "choose http-01 or dns-01"}
	}
	if ch == certpolicy.ChallengeDNS01 {
		if in.DNSProviderID <= 0 {
			return nil, &FieldError{"dns_provider_id", "dns-01 needs a DNS provider; add one first"}
		}
		if _, err := s.db.Client.DNSProvider.Get(ctx, in.DNSProviderID); err != nil {
			return nil, &FieldError{"dns_provider_id", "no such DNS provider"}
		}
	} else {
		in.DNSProviderID = 0
	}
	id, err := s.db.Client.CertPolicy.Create().SetDomainID(domainID).SetMode(mode).SetChallenge(ch).
		SetDNSProviderID(in.DNSProviderID).
		OnConflictColumns(certpolicy.FieldDomainID).UpdateMode().UpdateChallenge().UpdateDNSProviderID().UpdateUpdatedAt().
		ID(ctx)
	if err != nil {
		return nil, fmt.Errorf("store certificate policy: %w", err)
	}
	return s.db.Client.CertPolicy.Get(ctx, id)
}

// Preflight runs the checks made before an order without ordering: each name
// resolves to a server serving the domain, that server answers the challenge
// path on the probe port, and CAA lets the CA issue.
func (s *Service) Preflight(ctx context.Context, domainID int) ([]acme.Finding, error) {
	d, err := s.domain(ctx, domainID)
	if err != nil {
		return nil, err
	}
	p, err := s.Policy(ctx, domainID)
	if err != nil {
		return nil, err
	}
	opts, err := s.preflightOptions(ctx, d, p)
	if err != nil {
		return nil, err
	}
	return s.client.Preflight(ctx, names(d), opts), nil
}

func (s *Service) preflightOptions(ctx context.Context, d *ent.Domain, p *ent.CertPolicy) (acme.PreflightOptions, error) {
	ca, err := s.caaIdentity(ctx)
	if err != nil {
		return acme.PreflightOptions{}, err
	}
	opts := acme.PreflightOptions{CAIdentity: ca}
	if p.Challenge == certpolicy.ChallengeHTTP01 {
		opts.ExpectedAddrs = serverAddrs(d.Edges.Servers)
		if len(opts.ExpectedAddrs) == 0 {
			return opts, fmt.Errorf("%s is served by no server with a known address; assign it to a server first", d.Name)
		}
		opts.Probe = s.probe(d)
	}
	return opts, nil
}

// probe places a random token through the servers of d and fetches it where
// the CA would: from each address the name resolves to, on the probe port.
func (s *Service) probe(d *ent.Domain) func(ctx context.Context, name string) error {
	return func(ctx context.Context, name string) error {
		token, keyAuth := randomToken()
		sink := &sink{s: s, d: d}
		if err := sink.Present(ctx, name, token, keyAuth); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = sink.CleanUp(cctx, name, token, keyAuth)
		}()
		res := s.checker.Check(ctx, name, nil)
		if len(res.Addrs) == 0 {
			return fmt.Errorf("%s does not resolve", name)
		}
		hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the challenge path redirects; it must answer directly over http")
		}}
		for _, a := range res.Addrs {
			if err := fetchToken(ctx, hc, a, s.cfg.ProbePort, name, token, keyAuth); err != nil {
				return err
			}
		}
		return nil
	}
}

func fetchToken(ctx context.Context, hc *http.Client, addr netip.Addr, port int, name, token, want string) error {
	u := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)) + acme.ChallengePath(token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Host = name
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetch from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s for the test token", addr, resp.Status)
	}
	if strings.TrimSpace(string(body)) != want {
		return fmt.Errorf("%s answered the test token with other content; is another server answering port %d?", addr, port)
	}
	return nil
}

func randomToken() (token, keyAuth string) {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b[:32])
	return token, token + "." + base64.RawURLEncoding.EncodeToString(b[32:])
}

// sink publishes HTTP-01 tokens on every connected server serving a domain.
type sink struct {
	s *Service
	d *ent.Domain
	// logf, optional, receives progress.
	logf func(string, ...any)
}

func (k *sink) send(ctx context.Context, what string, cmd func() *agentv1.Command) error {
	var (
		mu   sync.Mutex
		errs []error
		sent int
		wg   sync.WaitGroup
	)
	for _, srv := range k.d.Edges.Servers {
		if !k.s.sender.Connected(nodeID(srv.ID)) {
			continue
		}
		sent++
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			res, err := k.s.sender.Send(cctx, nodeID(srv.ID), cmd())
			if err == nil && res.GetError() != nil {
				err = errors.New(res.GetError().GetMessage())
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s on server %s: %w", what, srv.Name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sent == 0 {
		return fmt.Errorf("%s: no server serving %s is connected", what, k.d.Name)
	}
	if k.logf != nil && len(errs) == 0 {
		k.logf("%s on %d server(s)", what, sent)
	}
	return errors.Join(errs...)
}

// Present places the token on the servers.
func (k *sink) Present(ctx context.Context, _, token, keyAuth string) error {
	return k.send(ctx, "place the challenge token", func() *agentv1.Command {
		return &agentv1.Command{Kind: &agentv1.Command_PlaceChallenge{PlaceChallenge: &agentv1.PlaceChallenge{Token: token, KeyAuthorization: keyAuth}}}
	})
}

// CleanUp removes the token from the servers.
func (k *sink) CleanUp(ctx context.Context, _, token, _ string) error {
	return k.send(ctx, "remove the challenge token", func() *agentv1.Command {
		return &agentv1.Command{Kind: &agentv1.Command_RemoveChallenge{RemoveChallenge: &agentv1.RemoveChallenge{Token: token}}}
	})
}

// taskLog records an issuance attempt as a Task and streams its lines.
type taskLog struct {
	s        *Service
	domainID int
	id       int
	mu       sync.Mutex
	b        strings.Builder
}

func (l *taskLog) Printf(format string, args ...any) {
	line := l.s.cfg.Now().UTC().Format("15:04:05") + " " + strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	l.mu.Lock()
	l.b.WriteString(line + "\n")
	text := l.b.String()
	l.mu.Unlock()
	_ = l.s.db.Client.Task.UpdateOneID(l.id).SetLog(text).Exec(context.Background())
	l.s.event(l.domainID, "cert.log", map[string]any{"domain_id": l.domainID, "task_id": l.id, "line": line})
}

// Issue obtains a certificate for a domain now, as its policy says, stores it
// as the domain's active certificate and schedules the servers serving it for a
// new revision. The attempt is recorded as a Task whose id is returned with
// the outcome; a failure also moves the domain's next automatic attempt back.
func (s *Service) Issue(ctx context.Context, domainID int) (*ent.Certificate, int, error) {
	run, taskID, err := s.begin(ctx, domainID)
	if err != nil {
		return nil, taskID, err
	}
	c, err := run(ctx)
	return c, taskID, err
}

// Start begins an issuance in the background and returns its Task id at once,
// for pages that show its log live. The issuance is bounded by timeout.
func (s *Service) Start(ctx context.Context, domainID int, timeout time.Duration) (int, error) {
	run, taskID, err := s.begin(ctx, domainID)
	if err != nil {
		return taskID, err
	}
	go func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		_, _ = run(rctx)
	}()
	return taskID, nil
}

// begin claims the domain and records the attempt's Task; run does the work.
func (s *Service) begin(ctx context.Context, domainID int) (run func(context.Context) (*ent.Certificate, error), taskID int, err error) {
	if _, busy := s.running.LoadOrStore(domainID, struct{}{}); busy {
		return nil, 0, ErrBusy
	}
	release := func() { s.running.Delete(domainID) }
	d, err := s.domain(ctx, domainID)
	if err != nil {
		release()
		return nil, 0, err
	}
	now := s.cfg.Now()
	t, err := s.db.Client.Task.Create().SetKind(TaskKind).SetSubject(d.Name).SetStatus(task.StatusRunning).SetStartedAt(now).Save(ctx)
	if err != nil {
		release()
		return nil, 0, fmt.Errorf("record issuance task: %w", err)
	}
	s.event(domainID, "cert", map[string]any{"domain_id": domainID, "task_id": t.ID, "status": "running"})
	return func(ctx context.Context) (*ent.Certificate, error) {
		defer release()
		lg := &taskLog{s: s, domainID: domainID, id: t.ID}
		cert, err := s.issue(ctx, d, lg)
		finish := s.db.Client.Task.UpdateOneID(t.ID).SetFinishedAt(s.cfg.Now())
		status := "succeeded"
		if err != nil {
			lg.Printf("failed: %v", err)
			status = "failed"
			finish.SetStatus(task.StatusFailed).SetError(err.Error())
		} else {
			finish.SetStatus(task.StatusSucceeded)
		}
		if ferr := finish.Exec(context.WithoutCancel(ctx)); ferr != nil {
			s.log.Error("record issuance outcome", "domain", d.Name, "error", ferr)
		}
		if perr := s.recordAttempt(context.WithoutCancel(ctx), domainID, now, err); perr != nil {
			s.log.Error("record issuance attempt", "domain", d.Name, "error", perr)
		}
		data := map[string]any{"domain_id": domainID, "task_id": t.ID, "status": status}
		if err != nil {
			data["error"] = err.Error()
		}
		s.event(domainID, "cert", data)
		return cert, err
	}, t.ID, nil
}

func (s *Service) issue(ctx context.Context, d *ent.Domain, lg *taskLog) (*ent.Certificate, error) {
	p, err := s.Policy(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if p.Mode != certpolicy.ModeAcme {
		return nil, fmt.Errorf("%s takes an uploaded certificate; switch it to automatic (acme) to order one", d.Name)
	}
	req := acme.Request{Names: names(d)}
	lg.Printf("ordering a certificate for %s from %s over %s", strings.Join(req.Names, ", "), s.cfg.DirectoryURL, p.Challenge)
	switch p.Challenge {
	case certpolicy.ChallengeDNS01:
		req.Challenge = acme.DNS01
		req.DNS, err = s.provider(ctx, p.DNSProviderID)
		if err != nil {
			return nil, err
		}
	default:
		req.Challenge = acme.HTTP01
		req.HTTPSolver = &sink{s: s, d: d, logf: lg.Printf}
	}
	opts, err := s.preflightOptions(ctx, d, p)
	if err != nil {
		return nil, err
	}
	if req.Challenge == acme.DNS01 {
		opts.ExpectedAddrs, opts.Probe = nil, nil
	}
	lg.Printf("preflight: checking DNS, CAA and the challenge path before ordering")
	findings := s.client.Preflight(ctx, req.Names, opts)
	for _, f := range findings {
		mark := "ok"
		if !f.OK {
			mark = "FAILED"
		}
		lg.Printf("preflight %s %s: %s", f.Check, mark, f.Message)
	}
	if err := acme.Blocking(findings); err != nil {
		return nil, err
	}
	acct, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	lg.Printf("using acme account %s", acct.URI)
	c, err := s.client.Obtain(ctx, acct, req)
	if err != nil {
		return nil, err
	}
	lg.Printf("issued serial %s by %s, valid until %s", c.Serial, c.Issuer, c.NotAfter.UTC().Format(time.RFC3339))
	row, err := s.store(ctx, d, storeInput{
		names: c.Names, certPEM: c.CertPEM, chainPEM: c.ChainPEM, keyPEM: c.KeyPEM,
		info:   acme.Info{NotBefore: c.NotBefore, NotAfter: c.NotAfter, Issuer: c.Issuer, Serial: c.Serial, Fingerprint: c.Fingerprint},
		source: certificate.SourceAcme, challenge: p.Challenge.String(),
	})
	if err != nil {
		return nil, err
	}
	lg.Printf("stored; deploying to %d server(s)", len(d.Edges.Servers))
	return row, nil
}

// recordAttempt keeps the automatic schedule: success clears the failures,
// failure counts one more and sets the next attempt by backoff, honouring the
// CA's Retry-After.
func (s *Service) recordAttempt(ctx context.Context, domainID int, at time.Time, err error) error {
	p, perr := s.Policy(ctx, domainID)
	if perr != nil {
		return perr
	}
	if p.ID == 0 {
		if p, perr = s.db.Client.CertPolicy.Create().SetDomainID(domainID).Save(ctx); perr != nil {
			return perr
		}
	}
	u := s.db.Client.CertPolicy.UpdateOneID(p.ID).SetLastAttemptAt(at)
	if err == nil {
		u.SetFailures(0).SetLastError("").ClearNextAttemptAt()
	} else {
		failures := p.Failures + 1
		u.SetFailures(failures).SetLastError(err.Error()).SetNextAttemptAt(acme.RetryAt(at, failures, err))
	}
	return u.Exec(ctx)
}

type storeInput struct {
	names                     []string
	certPEM, chainPEM, keyPEM []byte
	info                      acme.Info
	source                    certificate.Source
	challenge                 string
}

// store saves a certificate as the domain's active one, supersedes the
// previous, and schedules the domain's servers for a new revision.
func (s *Service) store(ctx context.Context, d *ent.Domain, in storeInput) (*ent.Certificate, error) {
	sealed, err := s.box.Seal(in.keyPEM, certKeyAAD(in.info.Fingerprint))
	if err != nil {
		return nil, err
	}
	tx, err := s.db.Client.Tx(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Certificate.Update().Where(certificate.DomainID(d.ID), certificate.StatusEQ(certificate.StatusActive)).
		SetStatus(certificate.StatusSuperseded).Save(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("supersede the previous certificate: %w", err), tx.Rollback())
	}
	create := tx.Certificate.Create().SetDomainID(d.ID).SetNames(in.names).
		SetNotBefore(in.info.NotBefore).SetNotAfter(in.info.NotAfter).SetIssuer(in.info.Issuer).
		SetSerial(in.info.Serial).SetFingerprint(in.info.Fingerprint).
		SetCertPem(string(in.certPEM)).SetChainPem(string(in.chainPEM)).SetKeySealed(sealed).
		SetSource(in.source).SetChallenge(in.challenge)
	if in.source == certificate.SourceAcme {
		create.SetDirectoryURL(s.cfg.DirectoryURL)
	}
	row, err := create.Save(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store certificate: %w", err), tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store certificate: %w", err)
	}
	s.redeploy(d)
	return row, nil
}

func (s *Service) redeploy(d *ent.Domain) {
	if s.notifier == nil {
		return
	}
	ids := make([]int, len(d.Edges.Servers))
	for i, srv := range d.Edges.Servers {
		ids[i] = srv.ID
	}
	s.notifier.Changed(ids...)
}

// Upload stores an admin's certificate for a domain: certPEM holds the leaf
// and its chain, keyPEM its private key. The chain must verify link by link,
// the key must match, and the leaf must be valid now and cover the domain.
func (s *Service) Upload(ctx context.Context, domainID int, certPEM, keyPEM []byte) (*ent.Certificate, error) {
	d, err := s.domain(ctx, domainID)
	if err != nil {
		return nil, err
	}
	info, err := acme.ParseBundle(certPEM, keyPEM)
	if err != nil {
		field := "certificate"
		if strings.HasPrefix(err.Error(), "private key") {
			field = "key"
		}
		return nil, &FieldError{field, err.Error()}
	}
	if !covers(info.Names, d.Name) {
		return nil, &FieldError{"certificate", fmt.Sprintf("the certificate is for %s, not for %s", strings.Join(info.Names, ", "), d.Name)}
	}
	leaf, chain := splitLeaf(certPEM)
	row, err := s.store(ctx, d, storeInput{
		names: info.Names, certPEM: leaf, chainPEM: chain, keyPEM: keyPEM,
		info: info, source: certificate.SourceUpload,
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.SetPolicy(ctx, domainID, PolicyInput{Mode: "upload"}); err != nil {
		return nil, err
	}
	return row, nil
}

// covers reports whether a certificate for names is valid for host.
func covers(names []string, host string) bool {
	for _, n := range names {
		n = strings.ToLower(n)
		if n == host {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, parent, ok := strings.Cut(host, "."); ok && parent == rest && !strings.HasPrefix(host, "*.") {
				return true
			}
		}
	}
	return false
}

// splitLeaf returns the first PEM block and the rest.
func splitLeaf(certPEM []byte) (leaf, chain []byte) {
	text := strings.TrimSpace(string(certPEM))
	const end = "-----END CERTIFICATE-----"
	i := strings.Index(text, end)
	if i < 0 {
		return certPEM, nil
	}
	i += len(end)
	return []byte(text[:i] + "\n"), []byte(strings.TrimSpace(text[i:]) + "\n")
}

// Active returns a domain's active certificate, or nil.
func (s *Service) Active(ctx context.Context, domainID int) (*ent.Certificate, error) {
	c, err := s.db.Client.Certificate.Query().Where(certificate.DomainID(domainID), certificate.StatusEQ(certificate.StatusActive)).
		Order(ent.Desc(certificate.FieldID)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return c, err
}

// ActiveFor returns the active certificate of each of the domains that has one.
func (s *Service) ActiveFor(ctx context.Context, domainIDs []int) (map[int]*ent.Certificate, error) {
	out := map[int]*ent.Certificate{}
	if len(domainIDs) == 0 {
		return out, nil
	}
	list, err := s.db.Client.Certificate.Query().
		Where(certificate.DomainIDIn(domainIDs...), certificate.StatusEQ(certificate.StatusActive)).
		Order(ent.Asc(certificate.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		out[c.DomainID] = c // the newest wins
	}
	return out, nil
}

// Certificates returns a domain's certificates, newest first.
func (s *Service) Certificates(ctx context.Context, domainID int) ([]*ent.Certificate, error) {
	return s.db.Client.Certificate.Query().Where(certificate.DomainID(domainID)).Order(ent.Desc(certificate.FieldID)).All(ctx)
}

// Tasks returns a domain's newest issuance attempts, newest first.
func (s *Service) Tasks(ctx context.Context, domainName string, limit int) ([]*ent.Task, error) {
	return s.db.Client.Task.Query().Where(task.Kind(TaskKind), task.Subject(domainName)).
		Order(ent.Desc(task.FieldID)).Limit(limit).All(ctx)
}

// Task returns one issuance attempt.
func (s *Service) Task(ctx context.Context, id int) (*ent.Task, error) {
	t, err := s.db.Client.Task.Query().Where(task.ID(id), task.Kind(TaskKind)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	return t, err
}
