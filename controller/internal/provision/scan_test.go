package provision_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/provision"
	"github.com/gatehousehq/gatehouse/internal/testutil/testnode"
)

func TestScanHostKeySendsNoCredentials(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t)
	before := len(n.SSHDLogText(t))
	got, err := provision.ScanHostKey(ctxT(t), n.Addr, n.Port)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != n.HostKeyType || got.Fingerprint != n.HostKeyFingerprint {
		t.Fatalf("scanned %s, want %s %s", got, n.HostKeyType, n.HostKeyFingerprint)
	}
	var tail string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if tail = n.SSHDLogText(t)[before:]; strings.Contains(tail, "Connection closed by") || strings.Contains(tail, "disconnected") ||
			strings.Contains(tail, "Connection reset") || strings.Contains(tail, "kex_exchange_identification") {
			break
		}
	}
	if !strings.Contains(tail, "Connection from") {
		t.Fatalf("sshd has no record of the scan:\n%s", tail)
	}
	if strings.Contains(tail, "userauth-request") || strings.Contains(tail, "gatehouse-scan") {
		t.Fatalf("the scan reached authentication:\n%s", tail)
	}
	if _, err := provision.ScanHostKey(ctxT(t), "$(touch /tmp/x)", 22); err == nil {
		t.Fatal("a hostile host was scanned")
	}
}

func TestValidateKnownKey(t *testing.T) {
	t.Parallel()
	good := "SHA256:" + strings.Repeat("A", 43)
	tests := []struct {
		key  provision.KnownKey
		want string
	}{
		{provision.KnownKey{Type: "ssh-ed25519", Fingerprint: good}, ""},
		{provision.KnownKey{Type: "ssh-rsa", Fingerprint: "SHA256:" + strings.Repeat("a+/", 14) + "b"}, ""},
		{provision.KnownKey{Type: "ssh-dss", Fingerprint: good}, "type:"},
		{provision.KnownKey{Type: "ssh-ed25519", Fingerprint: "MD5:aa:bb"}, "fingerprint:"},
		{provision.KnownKey{Type: "ssh-ed25519", Fingerprint: good + "\n"}, "fingerprint:"},
		{provision.KnownKey{Type: "ssh-ed25519;rm", Fingerprint: "SHA256:$(id)"}, "type:"},
	}
	for _, tt := range tests {
		err := provision.ValidateKnownKey(tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.key, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: err %v, want one mentioning %q", tt.key, err, tt.want)
		}
	}
}
