package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCertificateSettings(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" || c.RenewBefore != 30*24*time.Hour ||
		!slices.Equal(c.DNSResolvers, []string{"8.8.8.8:53", "1.1.1.1:53"}) || c.ACMEHTTPPort != 80 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = load(t, []string{"--acme-directory", "staging", "--dns-resolvers", "127.0.0.1:5353, 127.0.0.2", "--renew-before", "240h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ACMEDirectory != "https://acme-staging-v02.api.letsencrypt.org/directory" || !slices.Equal(c.DNSResolvers, []string{"127.0.0.1:5353", "127.0.0.2:53"}) || c.RenewBefore != 240*time.Hour {
		t.Fatalf("flags: %+v", c)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--acme-directory", "http://ca.test/dir"}, "acme_directory"},
		{[]string{"--acme-email", "Admin <a@b.c>"}, "acme_email"},
		{[]string{"--dns-resolvers", "resolver.example:53"}, "dns_resolvers"},
		{[]string{"--dns-resolvers", ","}, "dns_resolvers: name at least one"},
		{[]string{"--acme-http-port", "0"}, "acme_http_port"},
		{[]string{"--acme-caa-identity", "not a domain"}, "acme_caa_identity"},
		{[]string{"--renew-before", "1m"}, "renew_before"},
	}
	for _, tc := range tests {
		if _, err := load(t, tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to name %q", tc.args, err, tc.want)
		}
	}
}
