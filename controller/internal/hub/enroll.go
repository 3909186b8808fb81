package hub

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// tokenBytes is the entropy of an enrollment token.
const tokenBytes = 32

// NewToken returns a fresh enrollment token, to show once, and the SHA-256
// the Store keeps.
func NewToken() (token string, hash [32]byte, err error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", hash, fmt.Errorf("generate enrollment token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, sha256.Sum256([]byte(token)), nil
}

// HashToken checks a token's form and returns the SHA-256 the Store keeps.
func HashToken(token string) ([32]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != tokenBytes {
		return [32]byte{}, errors.New("enrollment token must be 43 base64url characters as shown by the controller")
	}
	return sha256.Sum256([]byte(token)), nil
}

// ValidateFacts checks host facts reported by an agent.
func ValidateFacts(f *agentv1.HostFacts) error {
	if f == nil {
		return errors.New("host facts are missing")
	}
	if err := validHostname(f.GetHostname()); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	for _, fld := range []struct{ name, v string }{
		{"os", f.GetOs()}, {"arch", f.GetArch()}, {"kernel", f.GetKernel()}, {"agent_version", f.GetAgentVersion()},
	} {
		if err := printable(fld.v, 128); err != nil {
			return fmt.Errorf("%s: %w", fld.name, err)
		}
	}
	if len(f.GetAddresses()) > 256 {
		return fmt.Errorf("addresses: %d entries, at most 256 allowed", len(f.GetAddresses()))
	}
	for _, a := range f.GetAddresses() {
		// A zone (fe80::1%eth0) is free text of any length and bytes; the
		// agent reports addresses without one.
		if ip, err := netip.ParseAddr(a); err != nil || ip.Zone() != "" {
			return fmt.Errorf("addresses: %.64q is not an IP address without a zone", a)
		}
	}
	return nil
}

func validHostname(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("must be 1 to 253 characters")
	}
	for _, r := range h {
		if !(r == '-' || r == '.' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return fmt.Errorf("character %q is not allowed (letters, digits, '.', '-', '_')", r)
		}
	}
	return nil
}

func printable(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("control characters are not allowed")
		}
	}
	return nil
}

// csrKey accepts the keys pki.CA.SignNode signs (ECDSA P-256 or P-384,
// Ed25519), so Enroll refuses any other before it spends the token.
func csrKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ecdsa curve %s is not accepted; use P-256 or P-384", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("key type %T is not accepted; use ecdsa P-256", pub)
}

type enrollmentServer struct {
	agentv1.UnimplementedEnrollmentServiceServer
	h *Hub
}

func (s *enrollmentServer) Enroll(ctx context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	h := s.h
	hash, err := HashToken(req.GetToken())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := ValidateFacts(req.GetFacts()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "host facts: %v", err)
	}
	// Check the request before spending the single-use token on it.
	csr, err := x509.ParseCertificateRequest(req.GetCsr())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr: %v", err)
	}
	if err := csrKey(csr.PublicKey); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr signature: %v", err)
	}
	nodeID, err := h.cfg.Store.RedeemEnrollmentToken(ctx, hash, req.GetFacts())
	if err != nil {
		if errors.Is(err, ErrTokenInvalid) {
			h.log.Warn("refused enrollment token", "hostname", req.GetFacts().GetHostname())
			return nil, status.Error(codes.PermissionDenied, ErrTokenInvalid.Error()+"; ask the controller for a new one")
		}
		h.log.Error("redeem enrollment token", "error", err)
		return nil, status.Error(codes.Unavailable, "cannot redeem the enrollment token now; retry later")
	}
	cert, err := h.cfg.CA.SignNode(req.GetCsr(), nodeID, h.cfg.CertLifetime)
	if err != nil {
		h.log.Error("sign node certificate", "node", nodeID, "error", err)
		return nil, status.Errorf(codes.InvalidArgument, "sign certificate: %v", err)
	}
	if err := h.cfg.Store.RecordCertificate(ctx, nodeID, cert); err != nil {
		h.log.Error("record node certificate", "node", nodeID, "error", err)
		return nil, status.Error(codes.Unavailable, "cannot record the certificate now")
	}
	h.log.Info("node enrolled", "node", nodeID, "hostname", req.GetFacts().GetHostname(), "serial", cert.SerialNumber.Text(16))
	return &agentv1.EnrollResponse{NodeId: nodeID, Certificate: cert.Raw, CaChain: h.cfg.CA.Chain()}, nil
}

type agentServer struct {
	agentv1.UnimplementedAgentServiceServer
	h *Hub
}

func (s *agentServer) RenewCertificate(ctx context.Context, req *agentv1.RenewCertificateRequest) (*agentv1.RenewCertificateResponse, error) {
	h := s.h
	id := identityFrom(ctx)
	cert, err := h.cfg.CA.SignNode(req.GetCsr(), id.nodeID, h.cfg.CertLifetime)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "sign certificate: %v", err)
	}
	if err := h.cfg.Store.RecordCertificate(ctx, id.nodeID, cert); err != nil {
		h.log.Error("record renewed certificate", "node", id.nodeID, "error", err)
		return nil, status.Error(codes.Unavailable, "cannot record the certificate now; retry later")
	}
	h.extendSession(id.nodeID, cert)
	h.log.Info("node certificate renewed", "node", id.nodeID, "serial", cert.SerialNumber.Text(16), "not_after", cert.NotAfter.Format(time.RFC3339))
	return &agentv1.RenewCertificateResponse{Certificate: cert.Raw, CaChain: h.cfg.CA.Chain()}, nil
}

func (s *agentServer) Session(stream agentv1.AgentService_SessionServer) error {
	return s.h.runSession(stream)
}

func (s *agentServer) ReportMetrics(stream agentv1.AgentService_ReportMetricsServer) error {
	return s.h.runMetrics(stream)
}
