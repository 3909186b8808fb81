package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
)

const (
	caCertSetting = "pki.ca_cert"
	caKeySetting  = "pki.ca_key" // sealed
	caLifetime    = 10 * 365 * 24 * time.Hour
)

// loadOrCreateCA returns the agent CA, creating it on first run. Its private
// key is stored sealed with the master key.
func loadOrCreateCA(ctx context.Context, db *store.DB, box *secrets.Box) (*pki.CA, error) {
	certPEM, ok, err := getSetting(ctx, db, box, caCertSetting)
	if err != nil {
		return nil, err
	}
	if ok {
		keyPEM, ok, err := getSetting(ctx, db, box, caKeySetting)
		if err != nil {
			return nil, fmt.Errorf("open agent CA key: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("agent CA certificate found without its key")
		}
		return pki.LoadCA(certPEM, keyPEM)
	}
	ca, err := pki.NewCA("Gatehouse agent CA", caLifetime)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := putSetting(ctx, db, box, caKeySetting, keyPEM, true); err != nil {
		return nil, err
	}
	if err := putSetting(ctx, db, box, caCertSetting, ca.CertPEM(), false); err != nil {
		return nil, err
	}
	return ca, nil
}
