package nodes

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent/server"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func eachDialect(t *testing.T, body func(t *testing.T, r *Registry)) {
	storetest.Each(t, func(t *testing.T, db *store.DB) { body(t, New(db, hclog.NewNullLogger())) })
}

func redeem(r *Registry, token string) (string, error) {
	h, err := hub.HashToken(token)
	if err != nil {
		return "", err
	}
	return r.RedeemEnrollmentToken(context.Background(), h, &agentv1.HostFacts{Hostname: "web-1", Os: "linux", Arch: "amd64"})
}

func TestTokensAreSingleUseAndExpire(t *testing.T) {
	eachDialect(t, func(t *testing.T, r *Registry) {
		ctx := context.Background()
		s, err := r.Create(ctx, "web-1", "", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Create(ctx, "web-1", "", false); !errors.Is(err, ErrNameTaken) {
			t.Fatalf("duplicate name: %v", err)
		}
		tok, _, err := r.IssueToken(ctx, s.ID, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		row := r.db.Client.EnrollmentToken.Query().OnlyX(ctx)
		if string(row.TokenHash) == tok {
			t.Fatal("token stored in plain text")
		}
		// Two agents present the same token at once: exactly one wins.
		var wg sync.WaitGroup
		results := make([]error, 8)
		for i := range results {
			wg.Add(1)
			go func(i int) { defer wg.Done(); _, results[i] = redeem(r, tok) }(i)
		}
		wg.Wait()
		wins := 0
		for _, err := range results {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, hub.ErrTokenInvalid):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d agents enrolled with one token", wins)
		}
		if got := r.db.Client.Server.GetX(ctx, s.ID); got.Hostname != "web-1" || got.Arch != "amd64" {
			t.Fatalf("facts not recorded: %+v", got)
		}
		old, _, _ := r.IssueToken(ctx, s.ID, 15*time.Minute)
		r.now = func() time.Time { return time.Now().Add(20 * time.Minute) }
		if _, err := redeem(r, old); !errors.Is(err, hub.ErrTokenInvalid) {
			t.Fatalf("expired token accepted: %v", err)
		}
	})
}

func TestCertificateChecks(t *testing.T) {
	eachDialect(t, func(t *testing.T, r *Registry) {
		ctx := context.Background()
		var closed []string
		r.OnRevoke = func(id string) { closed = append(closed, id) }
		s, _ := r.Create(ctx, "db-1", "", false)
		tok, _, _ := r.IssueToken(ctx, s.ID, time.Minute)
		id, err := redeem(r, tok)
		if err != nil {
			t.Fatal(err)
		}
		cert := &x509.Certificate{SerialNumber: big.NewInt(0xabc), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		if err := r.RecordCertificate(ctx, id, cert); err != nil {
			t.Fatal(err)
		}
		if err := r.CheckCertificate(ctx, id, cert.SerialNumber); err != nil {
			t.Fatalf("fresh certificate refused: %v", err)
		}
		if err := r.CheckCertificate(ctx, "999", cert.SerialNumber); !errors.Is(err, hub.ErrNodeUnknown) {
			t.Fatalf("certificate accepted for another node: %v", err)
		}
		if err := r.NodeOnline(ctx, id, &agentv1.Hello{AgentVersion: "1.0", MetricsSource: "proc"}); err != nil {
			t.Fatal(err)
		}
		if got := r.db.Client.Server.GetX(ctx, s.ID); got.Status != server.StatusOnline || got.MetricsSource != "proc" {
			t.Fatalf("online not recorded: %+v", got)
		}
		// Enrolling again replaces the identity: the old certificate is revoked.
		tok2, _, _ := r.IssueToken(ctx, s.ID, time.Minute)
		if _, err := redeem(r, tok2); err != nil {
			t.Fatal(err)
		}
		if err := r.CheckCertificate(ctx, id, cert.SerialNumber); !errors.Is(err, hub.ErrCertificateRevoked) {
			t.Fatalf("replaced certificate still valid: %v", err)
		}
		if len(closed) != 1 || closed[0] != id {
			t.Fatalf("live session not closed on re-enrollment: %v", closed)
		}
		cert2 := &x509.Certificate{SerialNumber: big.NewInt(0xdef), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		r.RecordCertificate(ctx, id, cert2)
		if n, err := r.Revoke(ctx, s.ID); err != nil || n != 1 {
			t.Fatalf("revoke: %d %v", n, err)
		}
		if err := r.CheckCertificate(ctx, id, cert2.SerialNumber); !errors.Is(err, hub.ErrCertificateRevoked) {
			t.Fatalf("revoked certificate accepted: %v", err)
		}
		if err := r.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := r.CheckCertificate(ctx, id, cert2.SerialNumber); !errors.Is(err, hub.ErrNodeUnknown) {
			t.Fatalf("deleted node accepted: %v", err)
		}
	})
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "db.eu-1", "x1"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Web", "a b", "a;b", "$(id)", "a\nb", string(make([]byte, 65))} {
		if err := ValidName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
