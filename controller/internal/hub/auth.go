package hub

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gatehousehq/gatehouse/controller/internal/pki"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// identity is the authenticated node behind an RPC.
type identity struct {
	nodeID string
	cert   *x509.Certificate
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// unaryAuth authenticates every unary RPC except Enroll (default deny).
func (h *Hub) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == agentv1.EnrollmentService_Enroll_FullMethodName {
		return handler(ctx, req)
	}
	ctx, err := h.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// streamAuth authenticates every stream.
func (h *Hub) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := h.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, &authedStream{ServerStream: ss, ctx: ctx})
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

// authenticate requires a client certificate verified against the CA during
// the handshake, still valid now, naming a node whose certificate serial the
// Store accepts.
func (h *Hub) authenticate(ctx context.Context) (context.Context, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "connection is not tls")
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil, status.Error(codes.Unauthenticated, "a client certificate issued by this controller is required")
	}
	leaf := info.State.VerifiedChains[0][0]
	now := time.Now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, status.Error(codes.Unauthenticated, "client certificate is outside its validity period")
	}
	nodeID, err := pki.NodeID(leaf)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
	}
	if err := h.cfg.Store.CheckCertificate(ctx, nodeID, leaf.SerialNumber); err != nil {
		switch {
		case errors.Is(err, ErrCertificateRevoked):
			h.log.Warn("refused revoked certificate", "node", nodeID, "serial", leaf.SerialNumber.Text(16), "peer", p.Addr.String())
			return nil, status.Error(codes.PermissionDenied, "client certificate is revoked")
		case errors.Is(err, ErrNodeUnknown):
			h.log.Warn("refused certificate of unknown node", "node", nodeID, "peer", p.Addr.String())
			return nil, status.Error(codes.PermissionDenied, "node is unknown to this controller")
		default:
			h.log.Error("check certificate", "node", nodeID, "error", err)
			return nil, status.Error(codes.Unavailable, "cannot check the client certificate now; retry later")
		}
	}
	return context.WithValue(ctx, identityKey{}, identity{nodeID: nodeID, cert: leaf}), nil
}
