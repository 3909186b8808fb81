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

// openSecrets returns the Box for the configured master key. It creates the
// key file on first run, and refuses to start when sealed data exists but
// the key is missing or different.
func openSecrets(ctx context.Context, db *store.DB, cfg config.Config) (*secrets.Box, error) {
	canary, err := db.Client.Setting.Query().Where(setting.Key(canaryKey)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, err
	}
	var key secrets.Key
	switch {
	case cfg.MasterKey != "":
		key, err = secrets.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_MASTER_KEY: %w", err)
		}
	default:
		_, statErr := os.Stat(cfg.MasterKeyFile)
		if errors.Is(statErr, fs.ErrNotExist) && canary != nil {
			return nil, fmt.Errorf("the database holds encrypted secrets but the master key file %s is missing: restore it from your backup or set GATEHOUSE_MASTER_KEY; gatehouse will not start without it", cfg.MasterKeyFile)
		}
		key, _, err = secrets.LoadOrCreateKeyFile(cfg.MasterKeyFile, canary == nil)
		if err != nil {
			return nil, err
		}
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, err
	}
	if canary != nil {
		if _, err := box.Open(canary.Value, []byte(canaryKey)); err != nil {
			return nil, fmt.Errorf("the master key (id %s) is not the one that sealed this database's secrets: %w", key.ID, err)
		}
		return box, nil
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
