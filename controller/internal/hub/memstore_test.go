package hub_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// memStore is the in-memory Store the tests run the hub against.
type memStore struct {
	mu      sync.Mutex
	tokens  map[[32]byte]*memToken
	nodes   map[string]bool
	certs   map[string]map[string]bool // node -> serial hex -> revoked
	issued  map[string][]*x509.Certificate
	online  map[string]*agentv1.Hello
	onlines int
	nextID  int
}

type memToken struct {
	nodeID  string
	expires time.Time
	used    bool
}

func newMemStore() *memStore {
	return &memStore{
		tokens: make(map[[32]byte]*memToken),
		nodes:  make(map[string]bool),
		certs:  make(map[string]map[string]bool),
		issued: make(map[string][]*x509.Certificate),
		online: make(map[string]*agentv1.Hello),
	}
}

// addToken creates a node and an enrollment token for it.
func (s *memStore) addToken(ttl time.Duration) (token, nodeID string) {
	t, hash, err := hub.NewToken()
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	nodeID = fmt.Sprint(100 + s.nextID)
	s.nodes[nodeID] = true
	s.tokens[hash] = &memToken{nodeID: nodeID, expires: time.Now().Add(ttl)}
	return t, nodeID
}

func (s *memStore) RedeemEnrollmentToken(_ context.Context, hash [32]byte, _ *agentv1.HostFacts) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[hash]
	if t == nil || t.used || time.Now().After(t.expires) {
		return "", hub.ErrTokenInvalid
	}
	t.used = true
	return t.nodeID, nil
}

func (s *memStore) RecordCertificate(_ context.Context, nodeID string, cert *x509.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certs[nodeID] == nil {
		s.certs[nodeID] = make(map[string]bool)
	}
	s.certs[nodeID][cert.SerialNumber.Text(16)] = false
	s.issued[nodeID] = append(s.issued[nodeID], cert)
	return nil
}

func (s *memStore) CheckCertificate(_ context.Context, nodeID string, serial *big.Int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.nodes[nodeID] {
		return hub.ErrNodeUnknown
	}
	revoked, ok := s.certs[nodeID][serial.Text(16)]
	if !ok || revoked {
		return hub.ErrCertificateRevoked
	}
	return nil
}

func (s *memStore) NodeOnline(_ context.Context, nodeID string, hello *agentv1.Hello) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.online[nodeID] = hello
	s.onlines++
	return nil
}

func (s *memStore) NodeOffline(_ context.Context, nodeID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.online, nodeID)
	return nil
}

func (s *memStore) revokeAll(nodeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.certs[nodeID] {
		s.certs[nodeID][k] = true
	}
}

func (s *memStore) deleteNode(nodeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, nodeID)
}

func (s *memStore) certCount(nodeID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.certs[nodeID])
}

// firstCert returns the first certificate recorded for nodeID.
func (s *memStore) firstCert(nodeID string) *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.issued[nodeID]) == 0 {
		return nil
	}
	return s.issued[nodeID][0]
}

func (s *memStore) isOnline(nodeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online[nodeID] != nil
}

// memIngest stores samples de-duplicated on (node, time), as the real ingest
// must, and counts deliveries.
type memIngest struct {
	mu        sync.Mutex
	samples   map[string]map[time.Time]*agentv1.MetricSample
	delivered int
	fail      error
}

func newMemIngest() *memIngest {
	return &memIngest{samples: make(map[string]map[time.Time]*agentv1.MetricSample)}
}

func (m *memIngest) Ingest(_ context.Context, nodeID string, samples []*agentv1.MetricSample) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.samples[nodeID] == nil {
		m.samples[nodeID] = make(map[time.Time]*agentv1.MetricSample)
	}
	for _, s := range samples {
		m.samples[nodeID][s.GetTime().AsTime()] = s
		m.delivered++
	}
	return nil
}

func (m *memIngest) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// times returns the stored sample times of nodeID in order.
func (m *memIngest) times(nodeID string) []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ts []time.Time
	for t := range m.samples[nodeID] {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	return ts
}

func (m *memIngest) count(nodeID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.samples[nodeID])
}
