package dnstest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func exchange(t *testing.T, net, addr string, m *dns.Msg, tsig map[string]string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second, TsigSecret: tsig}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange over %s: %v", net, err)
	}
	return r
}

func TestQuery(t *testing.T) {
	t.Parallel()
	s := New(t, "example.test")
	s.SetAddrs("www.example.test", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"))
	s.Add(t,
		"alias.example.test. 60 IN CNAME www.example.test.",
		"*.wild.example.test. 60 IN A 192.0.2.7",
		"deep.a.b.example.test. 60 IN TXT \"x\"",
	)

	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answers   int
		lastValue string
	}{
		{"a record", "www.example.test.", dns.TypeA, dns.RcodeSuccess, 1, "192.0.2.1"},
		{"aaaa record", "WWW.example.test.", dns.TypeAAAA, dns.RcodeSuccess, 1, "2001:db8::1"},
		{"cname chased", "alias.example.test.", dns.TypeA, dns.RcodeSuccess, 2, "192.0.2.1"},
		{"no such name", "nope.example.test.", dns.TypeA, dns.RcodeNameError, 0, ""},
		{"no data", "www.example.test.", dns.TypeTXT, dns.RcodeSuccess, 0, ""},
		{"empty non-terminal", "b.example.test.", dns.TypeA, dns.RcodeSuccess, 0, ""},
		{"wildcard", "x.wild.example.test.", dns.TypeA, dns.RcodeSuccess, 1, "192.0.2.7"},
		{"apex soa", "example.test.", dns.TypeSOA, dns.RcodeSuccess, 1, "ns1.example.test."},
		{"above the zones", "test.", dns.TypeCAA, dns.RcodeSuccess, 0, ""},
		{"outside zones", "example.org.", dns.TypeA, dns.RcodeRefused, 0, ""},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				m := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
				r := exchange(t, network, s.Addr(), m, nil)
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if len(r.Answer) != tc.answers {
					t.Fatalf("answers = %v, want %d", r.Answer, tc.answers)
				}
				if tc.answers == 0 {
					return
				}
				var got string
				switch rr := r.Answer[len(r.Answer)-1].(type) {
				case *dns.A:
					got = rr.A.String()
				case *dns.AAAA:
					got = rr.AAAA.String()
				case *dns.SOA:
					got = rr.Ns
				}
				if got != tc.lastValue {
					t.Fatalf("answer %v, want value %s", r.Answer, tc.lastValue)
				}
				if r.Answer[0].Header().Name != dns.CanonicalName(tc.qname) {
					t.Fatalf("answer owner %s, want %s", r.Answer[0].Header().Name, tc.qname)
				}
			})
		}
	}
}

func TestUpdateRequiresTSIG(t *testing.T) {
	t.Parallel()
	const key, secret = "update-key.", "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
	s := New(t, "example.test")
	s.EnableTSIG(key, secret)

	txt := &dns.TXT{Hdr: dns.RR_Header{Name: "_acme-challenge.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"v1"}}
	insert := func() *dns.Msg {
		m := new(dns.Msg).SetUpdate("example.test.")
		m.Insert([]dns.RR{txt})
		return m
	}

	unsigned := exchange(t, "udp", s.Addr(), insert(), nil)
	if unsigned.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned update: rcode %s, want REFUSED", dns.RcodeToString[unsigned.Rcode])
	}

	wrong := insert()
	wrong.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 2 * time.Second, TsigSecret: map[string]string{key: "d3Jvbmctc2VjcmV0"}}
	if r, _, err := c.Exchange(wrong, s.Addr()); err == nil && r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("update signed with the wrong secret: rcode %s, want NOTAUTH", dns.RcodeToString[r.Rcode])
	}
	if got := s.Records(txt.Hdr.Name, dns.TypeTXT); len(got) != 0 {
		t.Fatalf("refused updates changed records: %v", got)
	}

	signed := insert()
	signed.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	r := exchange(t, "tcp", s.Addr(), signed, map[string]string{key: secret})
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed update: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if got := s.Records(txt.Hdr.Name, dns.TypeTXT); len(got) != 1 || got[0].(*dns.TXT).Txt[0] != "v1" {
		t.Fatalf("records after insert: %v", got)
	}

	del := new(dns.Msg).SetUpdate("example.test.")
	del.Remove([]dns.RR{txt})
	del.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	if r := exchange(t, "udp", s.Addr(), del, map[string]string{key: secret}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed delete: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if got := s.Records(txt.Hdr.Name, dns.TypeTXT); len(got) != 0 {
		t.Fatalf("records after delete: %v", got)
	}
	if s.Updates() != 2 {
		t.Fatalf("updates = %d, want 2", s.Updates())
	}
}

func TestUpdateOutsideZoneRefused(t *testing.T) {
	t.Parallel()
	s := New(t, "example.test")
	m := new(dns.Msg).SetUpdate("example.test.")
	m.Insert([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "x.example.org.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"v"}}})
	if r := exchange(t, "udp", s.Addr(), m, nil); r.Rcode != dns.RcodeNotZone {
		t.Fatalf("rcode %s, want NOTZONE", dns.RcodeToString[r.Rcode])
	}
}

func TestBlackholeNeverAnswers(t *testing.T) {
	t.Parallel()
	addr := Blackhole(t)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	_, _, err := c.Exchange(new(dns.Msg).SetQuestion("example.test.", dns.TypeA), addr)
	if err == nil {
		t.Fatal("blackhole answered")
	}
}
