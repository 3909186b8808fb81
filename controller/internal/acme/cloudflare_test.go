package acme

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/gatehousehq/gatehouse/internal/testutil/dnstest"
)

// fakeCloudflare plays the part of the Cloudflare API that DNS-01 uses,
// checking the tokens, and publishes the records it is given in a dnstest
// server so the CA can see them.
type fakeCloudflare struct {
	t         *testing.T
	dns       *dnstest.Server
	zone      string
	apiToken  string
	zoneToken string

	mu      sync.Mutex
	records map[string]dns.RR // id -> record
	created int
	deleted int
}

func (f *fakeCloudflare) reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "errors": []any{}, "result": result})
}

func (f *fakeCloudflare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	auth := r.Header.Get("Authorization")
	switch {
	case r.Method == http.MethodGet && path == "/zones":
		if auth != "Bearer "+f.zoneToken {
			http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, http.StatusForbidden)
			return
		}
		var zones []map[string]string
		if r.URL.Query().Get("name") == f.zone {
			zones = append(zones, map[string]string{"id": "zone-1", "name": f.zone})
		}
		f.reply(w, zones)
	case r.Method == http.MethodPost && path == "/zones/zone-1/dns_records":
		if auth != "Bearer "+f.apiToken {
			http.Error(w, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`, http.StatusForbidden)
			return
		}
		var rec struct{ Name, Type, Content string }
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil || rec.Type != "TXT" {
			http.Error(w, "bad record", http.StatusBadRequest)
			return
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s. 60 IN TXT %s", rec.Name, rec.Content))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.created++
		id := fmt.Sprintf("rec-%d", f.created)
		f.records[id] = rr
		f.mu.Unlock()
		f.publish(rr.Header().Name)
		f.reply(w, map[string]string{"id": id, "name": rec.Name, "type": "TXT", "content": rec.Content})
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/zones/zone-1/dns_records/"):
		if auth != "Bearer "+f.apiToken {
			http.Error(w, `{"success":false}`, http.StatusForbidden)
			return
		}
		id := strings.TrimPrefix(path, "/zones/zone-1/dns_records/")
		f.mu.Lock()
		rr, ok := f.records[id]
		delete(f.records, id)
		f.deleted++
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.publish(rr.Header().Name)
		f.reply(w, map[string]string{"id": id})
	default:
		f.t.Errorf("unexpected cloudflare call %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// publish makes the TXT records held for name what the DNS server answers.
func (f *fakeCloudflare) publish(name string) {
	f.mu.Lock()
	var rrs []dns.RR
	for _, rr := range f.records {
		if rr.Header().Name == name {
			rrs = append(rrs, rr)
		}
	}
	f.mu.Unlock()
	f.dns.Set(name, dns.TypeTXT, rrs...)
}

func newFakeCloudflare(t *testing.T, d *dnstest.Server, zone string) (*fakeCloudflare, *httptest.Server) {
	f := &fakeCloudflare{
		t: t, dns: d, zone: zone,
		apiToken:  strings.Repeat("e", 40),
		zoneToken: strings.Repeat("z", 40),
		records:   map[string]dns.RR{},
	}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}
