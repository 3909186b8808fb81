package acme

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	legolog "github.com/go-acme/lego/v5/log"
	"github.com/hashicorp/go-hclog"
)

func TestLegoLogsThroughOurLogger(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	if _, err := New(Config{DirectoryURL: "https://127.0.0.1:1/dir", Logger: l}); err != nil {
		t.Fatal(err)
	}
	legolog.Warn("acme: challenge failed", legolog.DomainAttr("a.example.test"), slog.Group("order", slog.Int("attempt", 2)))
	legolog.Info("acme: obtaining certificate", legolog.DomainAttr("b.example.test"))
	legolog.Debug("acme: nonce refreshed")
	out := buf.String()
	for _, want := range []string{
		"[WARN]  lego: acme: challenge failed: domain=a.example.test order.attempt=2",
		"[DEBUG] lego: acme: obtaining certificate: domain=b.example.test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nonce refreshed") {
		t.Errorf("lego's debug line passed a debug logger (it is trace):\n%s", out)
	}
}

func TestSlogHandlerAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace})
	lg := slog.New(newSlogHandler(l)).With("cert-name", "c1").WithGroup("req")
	lg.Error("boom", "status", 503, slog.Attr{})
	if out := buf.String(); !strings.Contains(out, "[ERROR] boom: cert-name=c1 req.status=503") {
		t.Errorf("got %q", out)
	}
	off := slog.New(newSlogHandler(hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Off})))
	if off.Enabled(t.Context(), slog.LevelError) {
		t.Error("an Off logger enables lego's errors")
	}
}
