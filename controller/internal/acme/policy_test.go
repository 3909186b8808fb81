package acme

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDueForRenewal(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		notAfter time.Time
		before   time.Duration
		want     bool
	}{
		{now.Add(60 * day), 0, false},
		{now.Add(30*day + time.Second), 0, false},
		{now.Add(30 * day), 0, true},
		{now.Add(29 * day), 0, true},
		{now.Add(-day), 0, true},
		{now.Add(10 * day), 7 * day, false},
		{now.Add(6 * day), 7 * day, true},
	}
	for _, tc := range tests {
		if got := DueForRenewal(tc.notAfter, now, tc.before); got != tc.want {
			t.Errorf("DueForRenewal(expires in %s, before %s) = %v, want %v", tc.notAfter.Sub(now), tc.before, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		failures   int
		retryAfter time.Duration
		want       time.Duration
	}{
		{0, 0, time.Hour},
		{1, 0, time.Hour},
		{2, 0, 2 * time.Hour},
		{3, 0, 4 * time.Hour},
		{5, 0, 16 * time.Hour},
		{6, 0, 24 * time.Hour},
		{60, 0, 24 * time.Hour},
		{1, 3 * time.Hour, 3 * time.Hour},
		{4, 3 * time.Hour, 8 * time.Hour},
		{9, 72 * time.Hour, 72 * time.Hour},
	}
	for _, tc := range tests {
		if got := Backoff(tc.failures, tc.retryAfter); got != tc.want {
			t.Errorf("Backoff(%d, %s) = %s, want %s", tc.failures, tc.retryAfter, got, tc.want)
		}
	}
}

func TestRetryAtHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	limited := fmt.Errorf("obtain: %w", &Problem{Type: "urn:ietf:params:acme:error:rateLimited", Detail: "too many certificates", RetryAfter: 36 * time.Hour})
	if got := RetryAt(now, 1, limited); !got.Equal(now.Add(36 * time.Hour)) {
		t.Fatalf("RetryAt = %s, want 36h later", got)
	}
	var p *Problem
	if got := RetryAt(now, 2, fmt.Errorf("dial: refused")); !got.Equal(now.Add(2 * time.Hour)) {
		t.Fatalf("RetryAt without a problem = %s, want 2h later (%v)", got, p)
	}
	if !(&Problem{Type: "urn:ietf:params:acme:error:rateLimited"}).RateLimited() {
		t.Fatal("rateLimited problem not recognised")
	}
}

func TestProviderValidation(t *testing.T) {
	t.Parallel()
	good := RFC2136{Nameserver: "ns1.example.com:5353", TSIGKey: "acme-key", TSIGSecret: "c2VjcmV0"}
	tests := []struct {
		name string
		p    interface{ Validate() error }
		want string
	}{
		{"rfc2136 ok", good, ""},
		{"rfc2136 ip without port", RFC2136{Nameserver: "192.0.2.53"}, ""},
		{"rfc2136 shell", RFC2136{Nameserver: "$(reboot)"}, "rfc2136 nameserver"},
		{"rfc2136 port", RFC2136{Nameserver: "ns1.example.com:99999"}, "port must be"},
		{"rfc2136 half tsig", RFC2136{Nameserver: "ns1.example.com", TSIGKey: "k"}, "both the key name and the secret"},
		{"rfc2136 secret", RFC2136{Nameserver: "ns1.example.com", TSIGKey: "k", TSIGSecret: "not base64!"}, "base64"},
		{"rfc2136 key name", RFC2136{Nameserver: "ns1.example.com", TSIGKey: "k y", TSIGSecret: "c2VjcmV0"}, "tsig key name"},
		{"rfc2136 algorithm", RFC2136{Nameserver: "ns1.example.com", TSIGAlgorithm: "hmac-md5"}, "choose one of"},
		{"cloudflare ok", Cloudflare{APIToken: strings.Repeat("a", 40)}, ""},
		{"cloudflare empty", Cloudflare{}, "cloudflare api token"},
		{"cloudflare zone token", Cloudflare{APIToken: strings.Repeat("a", 40), ZoneToken: "x y"}, "cloudflare zone token"},
		{"cloudflare base url", Cloudflare{APIToken: strings.Repeat("a", 40), BaseURL: "http://api"}, "https://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
