package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	"github.com/gatehousehq/gatehouse/agent/trust"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// testCA is a minimal CA for identity tests (the agent cannot link the
// controller's pki package).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, pub any, uri string) []byte {
	t.Helper()
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestIdentitySaveLoad(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	pin := trust.Pin(ca.cert)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain := [][]byte{ca.cert.Raw}

	id, err := buildIdentity(pin, key, ca.issue(t, key.Public(), "gatehouse://node/17"), chain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.nodeID != "17" {
		t.Fatalf("node id %q", id.nodeID)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := ensureStateDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := saveIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{keyFile, certFile, chainFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode().Perm(), err)
		}
	}
	got, err := loadIdentity(dir, pin, time.Now())
	if err != nil || got.nodeID != "17" || !got.leaf.Equal(id.leaf) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if _, err := loadIdentity(dir, trust.Pin(newTestCA(t).cert), time.Now()); err == nil {
		t.Fatal("identity loaded under another pin")
	}
	if _, err := loadIdentity(t.TempDir(), pin, time.Now()); err == nil || !os.IsNotExist(err) {
		t.Fatalf("empty dir: %v, want not exist", err)
	}

	refusals := map[string]func() error{
		"certificate for another key": func() error {
			_, err := buildIdentity(pin, key, ca.issue(t, other.Public(), "gatehouse://node/17"), chain, time.Now())
			return err
		},
		"no node uri": func() error {
			_, err := buildIdentity(pin, key, ca.issue(t, key.Public(), "spiffe://x/17"), chain, time.Now())
			return err
		},
		"node id with leading zero": func() error {
			_, err := buildIdentity(pin, key, ca.issue(t, key.Public(), "gatehouse://node/017"), chain, time.Now())
			return err
		},
		"chain from another ca": func() error {
			_, err := buildIdentity(pin, key, newTestCA(t).issue(t, key.Public(), "gatehouse://node/17"), chain, time.Now())
			return err
		},
	}
	for name, f := range refusals {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	t.Parallel()
	b := &backoff{min: 100 * time.Millisecond, max: time.Second}
	ceil := b.min
	for i := range 10 {
		d := b.next()
		if d < ceil/2 || d > ceil {
			t.Fatalf("step %d: %s outside [%s, %s]", i, d, ceil/2, ceil)
		}
		ceil = min(ceil*2, b.max)
	}
	b.reset()
	if d := b.next(); d > b.min {
		t.Fatalf("after reset: %s > %s", d, b.min)
	}
}

// TestSampleToProtoMapsEveryField fills every field of a sample with a
// distinct value and checks the wire form carries each, so a field added to
// metrics.Sample without the proto catching up fails here.
func TestSampleToProtoMapsEveryField(t *testing.T) {
	t.Parallel()
	s := metrics.Sample{
		Time: time.Unix(1700000000, 123), Source: "proc", CPUPercent: 1.5, PerCPU: []float64{2, 3},
		Load1: 4, Load5: 5, Load15: 6, MemTotal: 7, MemUsed: 8, MemAvailable: 9, SwapTotal: 10, SwapUsed: 11,
		Filesystems:   []metrics.Filesystem{{Mount: "/", Device: "sda1", FSType: "ext4", Size: 12, Used: 13}},
		Interfaces:    []metrics.Interface{{Name: "eth0", RxBps: 14, TxBps: 15, RxTotal: 16, TxTotal: 17}},
		DiskIO:        []metrics.DiskIO{{Name: "sda", ReadBps: 18, WriteBps: 19}},
		UptimeSeconds: 20, Processes: 21,
		Temperatures: []metrics.Temperature{{Label: "cpu", Celsius: 22}},
		Nginx: &metrics.NginxStatus{Active: 23, Reading: 24, Writing: 25, Waiting: 26, Accepts: 27, Handled: 28, Requests: 29,
			RequestsPerSecond: 30.5},
	}
	want := &agentv1.MetricSample{
		Time: nil, Source: "proc", CpuPercent: 1.5, PerCpu: []float64{2, 3},
		Load1: 4, Load5: 5, Load15: 6, MemTotal: 7, MemUsed: 8, MemAvailable: 9, SwapTotal: 10, SwapUsed: 11,
		Filesystems:   []*agentv1.Filesystem{{Mount: "/", Device: "sda1", FsType: "ext4", Size: 12, Used: 13}},
		Interfaces:    []*agentv1.Interface{{Name: "eth0", RxBps: 14, TxBps: 15, RxTotal: 16, TxTotal: 17}},
		DiskIo:        []*agentv1.DiskIO{{Name: "sda", ReadBps: 18, WriteBps: 19}},
		UptimeSeconds: 20, Processes: 21,
		Temperatures: []*agentv1.Temperature{{Label: "cpu", Celsius: 22}},
		Nginx: &agentv1.NginxStatus{Active: 23, Reading: 24, Writing: 25, Waiting: 26, Accepts: 27, Handled: 28, Requests: 29,
			RequestsPerSecond: 30.5},
	}
	got := sampleToProto(s)
	if !got.GetTime().AsTime().Equal(s.Time) {
		t.Fatalf("time %v", got.GetTime().AsTime())
	}
	got.Time = nil
	if !protoEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	pairs := []struct {
		goType reflect.Type
		msg    protoreflect.Message
	}{
		{reflect.TypeOf(metrics.Sample{}), got.ProtoReflect()},
		{reflect.TypeOf(metrics.Filesystem{}), (&agentv1.Filesystem{}).ProtoReflect()},
		{reflect.TypeOf(metrics.Interface{}), (&agentv1.Interface{}).ProtoReflect()},
		{reflect.TypeOf(metrics.DiskIO{}), (&agentv1.DiskIO{}).ProtoReflect()},
		{reflect.TypeOf(metrics.Temperature{}), (&agentv1.Temperature{}).ProtoReflect()},
		{reflect.TypeOf(metrics.NginxStatus{}), (&agentv1.NginxStatus{}).ProtoReflect()},
	}
	for _, p := range pairs {
		if n, m := p.goType.NumField(), p.msg.Descriptor().Fields().Len(); n != m {
			t.Errorf("%s has %d fields, %s has %d", p.goType, n, p.msg.Descriptor().FullName(), m)
		}
	}
	// Without nginx's counters the wire form has none, rather than zeros.
	s.Nginx = nil
	if got := sampleToProto(s); got.Nginx != nil {
		t.Fatalf("sample without nginx counters sent %v", got.Nginx)
	}
}

func protoEqual(a, b *agentv1.MetricSample) bool { return proto.Equal(a, b) }

func TestStampKeepsTimesIncreasingUnlessTheClockWasSetBack(t *testing.T) {
	last := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		t           time.Time
		want        time.Time
		wantStepped bool
	}{
		{"later", last.Add(10 * time.Second), last.Add(10 * time.Second), false},
		{"same instant", last, last.Add(time.Microsecond), false},
		{"a little behind", last.Add(-3 * time.Second), last.Add(time.Microsecond), false},
		{"at the step limit", last.Add(-clockStepBack), last.Add(time.Microsecond), false},
		{"set back an hour", last.Add(-time.Hour), last.Add(-time.Hour), true},
	} {
		got, stepped := stamp(tc.t, last)
		if !got.Equal(tc.want) || stepped != tc.wantStepped {
			t.Errorf("%s: stamp = %s, %v; want %s, %v", tc.name, got, stepped, tc.want, tc.wantStepped)
		}
	}
}
