package agent

import (
	"context"
	"fmt"
	"time"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// renewAt is two thirds into the certificate's validity.
func renewAt(id *identity) time.Time {
	nb, na := id.leaf.NotBefore, id.leaf.NotAfter
	return nb.Add(na.Sub(nb) * 2 / 3)
}

// renewLoop renews the certificate at two thirds of its lifetime and swaps
// it in for future handshakes; the open session and metrics streams stay up.
func (a *Agent) renewLoop(ctx context.Context) {
	retry := time.Duration(0)
	for {
		id := a.identity()
		wait := time.Until(renewAt(id))
		if retry > 0 {
			wait = retry
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := a.renew(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			// Retry well before expiry: a tenth of what is left, 1 s to 30 s.
			retry = min(max(time.Until(id.leaf.NotAfter)/10, time.Second), 30*time.Second)
			a.log.Error("certificate renewal failed", "error", err, "retry_in", retry, "not_after", id.leaf.NotAfter.Format(time.RFC3339))
			continue
		}
		retry = 0
	}
}

// renew asks for a certificate for a fresh key. It uses a new connection: the
// session's connection was authenticated with the certificate of its
// handshake, which may be the one about to expire.
func (a *Agent) renew(ctx context.Context) error {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	conn, err := a.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := agentv1.NewAgentServiceClient(conn).RenewCertificate(ctx, &agentv1.RenewCertificateRequest{Csr: csr})
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	id, err := buildIdentity(a.cfg.CAPin, key, resp.GetCertificate(), resp.GetCaChain(), time.Now())
	if err != nil {
		return err
	}
	if old := a.identity(); old.nodeID != id.nodeID {
		return fmt.Errorf("renewed certificate names node %s, not %s", id.nodeID, old.nodeID)
	}
	if err := saveIdentity(a.cfg.StateDir, id); err != nil {
		return err
	}
	a.setIdentity(id)
	a.renewals.Add(1)
	a.log.Info("certificate renewed", "node", id.nodeID, "not_after", id.leaf.NotAfter.Format(time.RFC3339))
	return nil
}
