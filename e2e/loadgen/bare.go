package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent/trust"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// bareCA is the baseline's own CA. It issues the bare server's certificate
// and, for each simulated agent's existing key, a client certificate naming
// the same node as the controller issued, so the baseline runs the same TLS
// handshake and verification as the controller link.
type bareCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newBareCA() (*bareCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("baseline ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "loadgen baseline ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	cert, err := signCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("baseline ca: %w", err)
	}
	return &bareCA{cert: cert, key: key}, nil
}

func signCert(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func (ca *bareCA) pin() string { return trust.Pin(ca.cert) }

// issue signs a certificate for key; a non-empty nodeID makes it a client
// certificate for that node, otherwise a server certificate for 127.0.0.1.
func (ca *bareCA) issue(key *ecdsa.PrivateKey, nodeID string) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "loadgen"},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(24 * time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	if nodeID != "" {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.URIs = []*url.URL{{Scheme: "gatehouse", Host: "node", Path: "/" + nodeID}}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	leaf, err := signCert(tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue baseline certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// File names of the material handed to the baseline server process.
const (
	bareCAFile   = "ca.pem"
	bareCertFile = "server.pem"
	bareKeyFile  = "server-key.pem"
)

// writeServerFiles issues the server certificate and writes it, its key and
// the CA certificate into dir for the baseline server process.
func (ca *bareCA) writeServerFiles(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	c, err := ca.issue(key, "")
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	for name, data := range map[string][]byte{
		bareCAFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}),
		bareCertFile: chain,
		bareKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write baseline %s: %w", name, err)
		}
	}
	return nil
}

// bareServer acknowledges every metrics batch as soon as it is received and
// stores nothing. It uses the controller hub's TLS and gRPC settings, so the
// difference to the controller is the cost of validation and storage.
type bareServer struct {
	agentv1.UnimplementedAgentServiceServer
	heartbeat time.Duration
}

// newBareGRPC builds the baseline gRPC server from the files in dir, serving
// svc (a bareServer, or a test's own).
func newBareGRPC(dir string, svc agentv1.AgentServiceServer) (*grpc.Server, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, bareCertFile), filepath.Join(dir, bareKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load baseline server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, bareCAFile))
	if err != nil {
		return nil, fmt.Errorf("read baseline ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("baseline ca file holds no certificate")
	}
	// The same settings as the controller hub: pki.ServerTLSConfig and the
	// hub's keepalive, message size and handler options.
	tlsCfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: trust.NewHotCert(&cert).GetCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      pool,
	}
	s := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(8<<20),
		grpc.StreamInterceptor(requireClientCert),
		grpc.WaitForHandlers(true),
	)
	agentv1.RegisterAgentServiceServer(s, svc)
	return s, nil
}

// requireClientCert refuses streams without a verified client certificate,
// as the hub does before it consults its store.
func requireClientCert(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	p, ok := peer.FromContext(ss.Context())
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return status.Error(codes.Unauthenticated, "a client certificate issued by this server's ca is required")
	}
	return handler(srv, ss)
}

func (b *bareServer) Session(stream agentv1.AgentService_SessionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "the first session message must be hello")
	}
	if err := stream.Send(&agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Welcome{Welcome: &agentv1.Welcome{
		MetricsInterval:   durationpb.New(time.Second),
		HeartbeatInterval: durationpb.New(b.heartbeat),
		ServerTime:        timestamppb.Now(),
	}}}); err != nil {
		return err
	}
	ctx := stream.Context()
	go func() {
		t := time.NewTicker(b.heartbeat)
		defer t.Stop()
		var seq uint64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				seq++
				// Only this goroutine sends after Welcome.
				if stream.Send(&agentv1.ControllerMessage{Kind: &agentv1.ControllerMessage_Heartbeat{Heartbeat: &agentv1.Heartbeat{Seq: seq, SentAt: timestamppb.New(now)}}}) != nil {
					return
				}
			}
		}
	}()
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

func (b *bareServer) ReportMetrics(stream agentv1.AgentService_ReportMetricsServer) error {
	for {
		batch, err := stream.Recv()
		if err != nil {
			return nil
		}
		s := batch.GetSamples()
		if len(s) == 0 {
			return status.Error(codes.InvalidArgument, "metrics batch: batch is empty")
		}
		if err := stream.Send(&agentv1.MetricsAck{UpTo: s[len(s)-1].GetTime(), Stored: uint32(len(s))}); err != nil {
			return err
		}
	}
}

// runBareServer is the baseline server process: it serves on listen until
// stdin closes or the process is signalled, after printing "ready ADDR".
func runBareServer(ctx context.Context, dir, listen string, stdin io.Reader, stdout io.Writer) error {
	s, err := newBareGRPC(dir, &bareServer{heartbeat: 15 * time.Second})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("baseline listener: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	fmt.Fprintf(stdout, "ready %s\n", l.Addr())
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(stdin))
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	case err := <-errc:
		return err
	}
	s.Stop()
	return nil
}
