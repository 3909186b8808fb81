// Package proxyconf keeps the reverse-proxy configuration: upstreams and their targets,
// domains with their routes and basic-auth users, and TCP/UDP streams.
//
// Every change arrives as a plain input struct, is validated with nginxconf's allowlists
// and stored in its normalized form together with an audit entry, in one transaction;
// nothing is written when validation fails. Validation problems come back as
// nginxconf.FieldErrors keyed by the input's field paths ("name", "targets[1].host",
// "routes[0].redirect_target"), so forms can show each message beside its field. After a
// change is committed, the servers whose nginx configuration it affects are passed to a
// Notifier, which re-renders and deploys them.
package proxyconf

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/nginxconf"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/server"
)

// Errors callers map to responses.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInUse means an upstream is still used by routes or streams.
	ErrInUse = errors.New("upstream is in use")
	// ErrNothingCached means a domain's cache was to be purged while none of
	// its routes caches.
	ErrNothingCached = errors.New("nothing is cached")
)

// Notifier learns which servers need their nginx configuration rendered and applied
// again. *deploy.Deployer implements it; Changed must not block.
type Notifier interface {
	Changed(serverIDs ...int)
}

// CertificateFunc returns the certificate a node holds for a domain, or nil when there is
// none yet.
type CertificateFunc func(ctx context.Context, domain string) (*nginxconf.CertRef, error)

// Actor is who makes a change and whether they are an admin; only admins may set a
// domain's snippet.
type Actor struct {
	audit.Actor
	Admin bool
}

// Config configures a Service.
type Config struct {
	// Notifier receives the servers affected by each committed change; optional.
	Notifier Notifier
	// Certificate, optional, tells whether a domain has a certificate: force_https, hsts
	// and http2 are accepted only for domains that have one.
	Certificate CertificateFunc
}

// Service reads and changes the proxy configuration.
type Service struct {
	db  *store.DB
	cfg Config
	log hclog.Logger
}

// New returns a Service on db.
func New(db *store.DB, cfg Config, log hclog.Logger) *Service {
	return &Service{db: db, cfg: cfg, log: log.Named("proxyconf")}
}

// validationWebroot and friends fill the node-level fields of the NodeConfig a single
// object is validated in; they never reach a node.
const validationWebroot = "/var/lib/gatehouse/acme"

// withTx runs fn in a transaction and records the audit entry fn returns in the same
// transaction, so a change and its record are committed together or not at all.
func (s *Service) withTx(ctx context.Context, fn func(tx *ent.Tx) (audit.Entry, error)) error {
	tx, err := s.db.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	entry, err := fn(tx)
	if err != nil {
		return errors.Join(err, rollback(tx))
	}
	if err := audit.New(tx.Client(), s.log).Record(ctx, entry); err != nil {
		return errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func rollback(tx *ent.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

func (s *Service) notify(ids []int) {
	if s.cfg.Notifier == nil || len(ids) == 0 {
		return
	}
	s.cfg.Notifier.Changed(ids...)
}

// union returns the sorted distinct ids of all lists.
func union(lists ...[]int) []int {
	set := map[int]struct{}{}
	for _, l := range lists {
		for _, id := range l {
			set[id] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// checkServers verifies that every id names a server that is not removed and returns the
// ids without duplicates.
func checkServers(ctx context.Context, c *ent.Client, ids []int, fe nginxconf.FieldErrors) ([]int, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := c.Server.Query().Where(server.IDIn(ids...), server.StatusNEQ(server.StatusRemoved)).IDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up servers: %w", err)
	}
	ok := map[int]bool{}
	for _, id := range found {
		ok[id] = true
	}
	seen := map[int]bool{}
	out := make([]int, 0, len(ids))
	for i, id := range ids {
		if !ok[id] {
			fe[fmt.Sprintf("servers[%d]", i)] = fmt.Sprintf("no server with id %d; pick one from the server list", id)
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// fieldRename maps nginxconf's field names to the names of this package's inputs.
var fieldRename = map[string]string{
	"hash_consistent": "consistent",
	"code":            "redirect_code",
	"target":          "redirect_target",
	"status":          "respond_status",
	"body":            "respond_body",
	"user":            "username",
}

var reLastField = regexp.MustCompile(`\.([a-z_]+)$`)

// subErrors keeps the errors under prefix (such as "domains[0]."), with the prefix cut and
// field names renamed to the input's; errors elsewhere are added to other under "".
func subErrors(fe nginxconf.FieldErrors, prefix string, into nginxconf.FieldErrors) {
	for k, msg := range fe {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			addErr(into, "", k+": "+msg)
			continue
		}
		rest = reLastField.ReplaceAllStringFunc("."+rest, func(m string) string {
			if n, ok := fieldRename[m[1:]]; ok {
				return "." + n
			}
			return m
		})[1:]
		addErr(into, rest, msg)
	}
}

func addErr(fe nginxconf.FieldErrors, path, msg string) {
	if prev, ok := fe[path]; ok {
		if !strings.Contains(prev, msg) {
			fe[path] = prev + "; " + msg
		}
		return
	}
	fe[path] = msg
}

func result(fe nginxconf.FieldErrors) error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

func notFound(kind string, id int, err error) error {
	if ent.IsNotFound(err) {
		return fmt.Errorf("%s %d: %w", kind, id, ErrNotFound)
	}
	return fmt.Errorf("load %s %d: %w", kind, id, err)
}
