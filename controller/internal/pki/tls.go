package pki

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/gatehousehq/gatehouse/agent/trust"
)

// ServerTLSConfig returns the gRPC listener's configuration: TLS 1.3, the
// certificate read from cert on every handshake (so IssueServer + Store rotates
// it live), and client certificates verified against clientCAs when given.
// Enrollment arrives without a client certificate; every other RPC checks the
// verified chain itself.
func ServerTLSConfig(cert *trust.HotCert, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: cert.GetCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      clientCAs,
	}
}

// ClientTLSConfig returns the agent-side configuration that pins the CA; see
// trust.ClientConfig.
func ClientTLSConfig(pin, serverName string, cert *trust.HotCert) (*tls.Config, error) {
	return trust.ClientConfig(pin, serverName, cert)
}
