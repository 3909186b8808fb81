package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gatehousehq/gatehouse/controller/internal/config"
	"github.com/gatehousehq/gatehouse/controller/internal/secrets"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/setting"
)

// canaryKey names a setting sealed with the master key on first run. Its
// presence means the database holds sealed data; opening it proves the key
// is the right one.
const canaryKey = "secrets.canary"

const canaryText = "gatehouse"

// readCanary returns the sealed canary setting, or nil before the first run
// sealed one.
func readCanary(ctx context.Context, db *store.DB) (*ent.Setting, error) {
	canary, err := db.Client.Setting.Query().Where(setting.Key(canaryKey)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return canary, err
}

// masterKey reads the configured master key: GATEHOUSE_MASTER_KEY, or the
// key file, created when create is set and it does not exist.
func masterKey(cfg config.Config, create bool) (secrets.Key, error) {
	if cfg.MasterKey != "" {
		key, err := secrets.ParseKey(cfg.MasterKey)
		if err != nil {
			return secrets.Key{}, fmt.Errorf("GATEHOUSE_MASTER_KEY: %w", err)
		}
		return key, nil
	}
	key, _, err := secrets.LoadOrCreateKeyFile(cfg.MasterKeyFile, create)
	return key, err
}

// openCanary returns the Box of key when it opens the canary.
func openCanary(key secrets.Key, canary *ent.Setting) (*secrets.Box, error) {
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, err
	}
	if _, err := box.Open(canary.Value, []byte(canaryKey)); err != nil {
		return nil, err
	}
	return box, nil
}

// openSecrets returns the Box for the configured master key. It creates the
// key file on first run, and refuses to start when sealed data exists but
// the key is missing or different.
func openSecrets(ctx context.Context, db *store.DB, cfg config.Config) (*secrets.Box, error) {
	canary, err := readCanary(ctx, db)
	if err != nil {
		return nil, err
	}
	if cfg.MasterKey == "" && canary != nil {
		if _, statErr := os.Stat(cfg.MasterKeyFile); errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("the database holds encrypted secrets but the master key file %s is missing: restore it from your backup or set GATEHOUSE_MASTER_KEY; gatehouse will not start without it", cfg.MasterKeyFile)
		}
	}
	key, err := masterKey(cfg, canary == nil)
	if err != nil {
		return nil, err
	}
	if canary != nil {
		box, err := openCanary(key, canary)
		if err != nil {
			return nil, fmt.Errorf("the master key (id %s) is not the one that sealed this database's secrets: %w", key.ID, err)
		}
		return box, nil
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, err
	}
	sealed, err := box.Seal([]byte(canaryText), []byte(canaryKey))
	if err != nil {
		return nil, err
	}
	if err := db.Client.Setting.Create().SetKey(canaryKey).SetValue(sealed).SetSecret(true).Exec(ctx); err != nil {
		return nil, fmt.Errorf("record master key canary: %w", err)
	}
	return box, nil
}

// getSetting returns a setting's value, opening it when sealed; ok is false when absent.
func getSetting(ctx context.Context, db *store.DB, box *secrets.Box, key string) ([]byte, bool, error) {
	s, err := db.Client.Setting.Query().Where(setting.Key(key)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !s.Secret {
		return s.Value, true, nil
	}
	v, err := box.Open(s.Value, []byte(key))
	return v, true, err
}

// putSetting stores a setting, sealed when secret.
func putSetting(ctx context.Context, db *store.DB, box *secrets.Box, key string, value []byte, secret bool) error {
	if secret {
		var err error
		if value, err = box.Seal(value, []byte(key)); err != nil {
			return err
		}
	}
	return db.Client.Setting.Create().SetKey(key).SetValue(value).SetSecret(secret).
		OnConflictColumns(setting.FieldKey).UpdateNewValues().Exec(ctx)
}
