package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/session"
)

// SessionStore keeps scs sessions in the Session table, on SQLite and
// PostgreSQL alike. Use it with scs's HashTokenInStore so the table holds
// token hashes, not the cookies themselves.
type SessionStore struct {
	client *ent.Client
	log    hclog.Logger
	now    func() time.Time
}

var _ scs.CtxStore = (*SessionStore)(nil)

// NewSessionStore returns a store on client.
func NewSessionStore(client *ent.Client, log hclog.Logger) *SessionStore {
	return &SessionStore{client: client, log: log.Named("sessions"), now: time.Now}
}

// FindCtx returns the data of an unexpired session.
func (s *SessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	row, err := s.client.Session.Query().Where(session.TokenEQ(token)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find session: %w", err)
	}
	if !s.now().Before(row.Expiry) {
		return nil, false, nil
	}
	return row.Data, true, nil
}

// CommitCtx writes a session, replacing any with the same token.
func (s *SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	err := s.client.Session.Create().
		SetToken(token).
		SetData(b).
		SetExpiry(expiry.UTC()).
		OnConflictColumns(session.FieldToken).
		UpdateNewValues().
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// DeleteCtx removes a session; an unknown token is not an error.
func (s *SessionStore) DeleteCtx(ctx context.Context, token string) error {
	if _, err := s.client.Session.Delete().Where(session.TokenEQ(token)).Exec(ctx); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Find implements scs.Store.
func (s *SessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s *SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s *SessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// Cleanup deletes expired sessions and returns how many.
func (s *SessionStore) Cleanup(ctx context.Context) (int, error) {
	n, err := s.client.Session.Delete().Where(session.ExpiryLTE(s.now().UTC())).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

// RunCleanup calls Cleanup every interval until ctx ends.
func (s *SessionStore) RunCleanup(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Cleanup(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("session cleanup", "error", err)
				}
				continue
			}
			if n > 0 {
				s.log.Debug("expired sessions removed", "count", n)
			}
		}
	}
}
