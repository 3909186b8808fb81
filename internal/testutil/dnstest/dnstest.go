// Package dnstest runs an authoritative DNS server on loopback for tests.
//
// The server answers UDP and TCP on the same port, holds records that a test
// sets and changes at will, and accepts RFC 2136 dynamic updates, optionally
// requiring TSIG. It plays the public DNS for code under test (dnscheck, lego's
// DNS-01 propagation check, Pebble's validation authority) without any traffic
// leaving the machine.
package dnstest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TTL is the time to live given to records the helpers create.
const TTL = 60

type rrKey struct {
	name   string
	rrtype uint16
}

// Server is an authoritative DNS server listening on 127.0.0.1.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu       sync.Mutex
	zones    []string
	records  map[rrKey][]dns.RR
	tsigKeys map[string]string // key name (fqdn) -> base64 secret
	updates  int
	onUpdate func(names []string)
}

// New starts a server authoritative for zones (for example "example.test")
// on a free loopback port and stops it when the test ends.
func New(t testing.TB, zones ...string) *Server {
	t.Helper()
	s := &Server{
		records:  map[rrKey][]dns.RR{},
		tsigKeys: map[string]string{},
	}
	for _, z := range zones {
		s.AddZone(z)
	}
	if err := s.listen(); err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// listen binds UDP and TCP on one free loopback port. A port free for UDP may
// be taken for TCP, so it tries a few ports.
func (s *Server) listen() error {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen udp: %w", err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			lastErr = err
			continue
		}
		s.addr = addr
		s.udp = s.newServer()
		s.udp.PacketConn = pc
		s.tcp = s.newServer()
		s.tcp.Listener = ln
		if err := start(s.udp); err != nil {
			pc.Close()
			ln.Close()
			return fmt.Errorf("start udp: %w", err)
		}
		if err := start(s.tcp); err != nil {
			_ = s.udp.Shutdown()
			ln.Close()
			return fmt.Errorf("start tcp: %w", err)
		}
		return nil
	}
	return fmt.Errorf("no loopback port free for both udp and tcp: %w", lastErr)
}

func (s *Server) newServer() *dns.Server {
	return &dns.Server{
		Handler:       dns.HandlerFunc(s.serve),
		MsgAcceptFunc: acceptAll,
		MaxTCPQueries: -1,
		TsigProvider:  tsigProvider{s},
		ReadTimeout:   5 * time.Second,
		WriteTimeout:  5 * time.Second,
	}
}

// acceptAll lets UPDATE messages (opcode 5) reach the handler; the default
// accept function of miekg/dns refuses every opcode but QUERY and NOTIFY.
func acceptAll(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // a response, not a request
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// start runs srv in the background and waits until it is serving.
func start(srv *dns.Server) error {
	started := make(chan struct{})
	errc := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
		return nil
	case err := <-errc:
		return err
	}
}

func (s *Server) close() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// SetUpdateHook calls hook with the owner names of each dynamic update before
// the update is applied; the update waits for it to return.
func (s *Server) SetUpdateHook(hook func(names []string)) {
	s.mu.Lock()
	s.onUpdate = hook
	s.mu.Unlock()
}

// Addr is the host:port the server answers on, for both UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// AddZone makes the server authoritative for zone, with a synthesised SOA and
// NS record at its apex.
func (s *Server) AddZone(zone string) {
	z := canonical(zone)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.zones, z) {
		s.zones = append(s.zones, z)
	}
}

// EnableTSIG requires every dynamic update to be signed with the named key.
// secret is base64, as in a BIND key file. Queries stay unsigned.
func (s *Server) EnableTSIG(keyName, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tsigKeys[canonical(keyName)] = secret
}

// Set replaces the records of one name and type. With no records it removes them.
func (s *Server) Set(name string, rrtype uint16, rrs ...dns.RR) {
	k := rrKey{canonical(name), rrtype}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rrs) == 0 {
		delete(s.records, k)
		return
	}
	cp := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		cp[i] = dns.Copy(rr)
		cp[i].Header().Name = k.name
	}
	s.records[k] = cp
}

// SetAddrs points name at addrs, replacing its A and AAAA records.
func (s *Server) SetAddrs(name string, addrs ...netip.Addr) {
	n := canonical(name)
	var a, aaaa []dns.RR
	for _, ip := range addrs {
		hdr := dns.RR_Header{Name: n, Class: dns.ClassINET, Ttl: TTL}
		if ip.Is4() {
			hdr.Rrtype = dns.TypeA
			a = append(a, &dns.A{Hdr: hdr, A: ip.AsSlice()})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			aaaa = append(aaaa, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
		}
	}
	s.Set(n, dns.TypeA, a...)
	s.Set(n, dns.TypeAAAA, aaaa...)
}

// Add parses records in zone-file syntax ("x.example.test. 60 IN CAA 0 issue \"ca.test\"")
// and appends them to the records already held.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil || rr == nil {
			t.Fatalf("dnstest: parse record %q: %v", text, err)
		}
		k := rrKey{canonical(rr.Header().Name), rr.Header().Rrtype}
		rr.Header().Name = k.name
		s.mu.Lock()
		s.records[k] = append(s.records[k], rr)
		s.mu.Unlock()
	}
}

// Records returns a copy of the records held for one name and type.
func (s *Server) Records(name string, rrtype uint16) []dns.RR {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dns.RR
	for _, rr := range s.records[rrKey{canonical(name), rrtype}] {
		out = append(out, dns.Copy(rr))
	}
	return out
}

// Updates is the number of dynamic updates the server has applied.
func (s *Server) Updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

func canonical(name string) string { return dns.CanonicalName(name) }

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	var m *dns.Msg
	switch r.Opcode {
	case dns.OpcodeQuery:
		m = s.query(r)
	case dns.OpcodeUpdate:
		s.mu.Lock()
		hook := s.onUpdate
		s.mu.Unlock()
		if hook != nil {
			names := make([]string, 0, len(r.Ns))
			for _, rr := range r.Ns {
				names = append(names, canonical(rr.Header().Name))
			}
			hook(names)
		}
		m = s.update(w, r)
	default:
		m = new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented)
	}
	_ = w.WriteMsg(m)
}

// zoneFor returns the most specific zone holding name, or "".
func (s *Server) zoneFor(name string) string {
	best := ""
	for _, z := range s.zones {
		if dns.IsSubDomain(z, name) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

func (s *Server) soa(zone string) dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns:      "ns1." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  uint32(1 + s.updates),
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL,
	}
}

// lookup returns the records for name and type, including the synthesised
// apex SOA and NS. It expects s.mu to be held.
func (s *Server) lookup(zone, name string, rrtype uint16) []dns.RR {
	if rrs := s.records[rrKey{name, rrtype}]; len(rrs) > 0 {
		out := make([]dns.RR, len(rrs))
		for i, rr := range rrs {
			out[i] = dns.Copy(rr)
		}
		return out
	}
	if name == zone {
		switch rrtype {
		case dns.TypeSOA:
			return []dns.RR{s.soa(zone)}
		case dns.TypeNS:
			return []dns.RR{&dns.NS{
				Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: TTL},
				Ns:  "ns1." + zone,
			}}
		}
	}
	return nil
}

// exists reports whether name owns records or is an empty non-terminal.
// It expects s.mu to be held.
func (s *Server) exists(zone, name string) bool {
	if name == zone {
		return true
	}
	for k := range s.records {
		if k.name == name || dns.IsSubDomain(name, k.name) {
			return true
		}
	}
	return false
}

// wildcardOwner returns the wildcard name that synthesises answers for a
// name that does not exist (RFC 4592, closest encloser only), or "".
// It expects s.mu to be held.
func (s *Server) wildcardOwner(zone, name string) string {
	labels := dns.SplitDomainName(name)
	for i := 1; i < len(labels); i++ {
		parent := dns.Fqdn(strings.Join(labels[i:], "."))
		if !dns.IsSubDomain(zone, parent) {
			return ""
		}
		if s.exists(zone, parent) {
			wc := "*." + parent
			if s.exists(zone, wc) {
				return wc
			}
			return ""
		}
	}
	return ""
}

func (s *Server) query(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(r)
	if len(r.Question) != 1 {
		return m.SetRcode(r, dns.RcodeFormatError)
	}
	q := r.Question[0]
	name := canonical(q.Name)

	s.mu.Lock()
	defer s.mu.Unlock()
	zone := s.zoneFor(name)
	if zone == "" {
		// Names above the zones (the TLD of example.test, the root) exist
		// in the public tree, so answer them as a resolver would: no data.
		for _, z := range s.zones {
			if dns.IsSubDomain(name, z) {
				return m
			}
		}
		return m.SetRcode(r, dns.RcodeRefused)
	}
	m.Authoritative = true

	// Follow CNAMEs held by this server, as a resolver would.
	for range 8 {
		owner := name
		if !s.exists(zone, name) {
			wc := s.wildcardOwner(zone, name)
			if wc == "" {
				m.Rcode = dns.RcodeNameError
				m.Ns = []dns.RR{s.soa(zone)}
				return m
			}
			owner = wc
		}
		rrs := s.lookup(zone, owner, q.Qtype)
		if len(rrs) == 0 && q.Qtype != dns.TypeCNAME {
			if cn := s.lookup(zone, owner, dns.TypeCNAME); len(cn) > 0 {
				cn[0].Header().Name = name
				m.Answer = append(m.Answer, cn[0])
				target := canonical(cn[0].(*dns.CNAME).Target)
				if z := s.zoneFor(target); z != "" {
					zone, name = z, target
					continue
				}
				return m
			}
		}
		if len(rrs) == 0 {
			m.Ns = []dns.RR{s.soa(zone)}
			return m
		}
		for _, rr := range rrs {
			rr.Header().Name = name
		}
		m.Answer = append(m.Answer, rrs...)
		return m
	}
	return m.SetRcode(r, dns.RcodeServerFailure)
}

// update applies an RFC 2136 dynamic update. Prerequisites are not
// supported: an update carrying any is refused with NOTIMP rather than
// applied without them.
func (s *Server) update(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg).SetReply(r)
	s.mu.Lock()
	defer s.mu.Unlock()

	if tsig := r.IsTsig(); tsig != nil {
		if w.TsigStatus() != nil {
			m.Rcode = dns.RcodeNotAuth
			return m
		}
		m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, 300, time.Now().Unix())
	} else if len(s.tsigKeys) > 0 {
		m.Rcode = dns.RcodeRefused
		return m
	}

	if len(r.Question) != 1 || r.Question[0].Qtype != dns.TypeSOA {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	zone := canonical(r.Question[0].Name)
	if !slices.Contains(s.zones, zone) {
		m.Rcode = dns.RcodeNotAuth
		return m
	}
	if len(r.Answer) > 0 {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	for _, rr := range r.Ns {
		if !dns.IsSubDomain(zone, canonical(rr.Header().Name)) {
			m.Rcode = dns.RcodeNotZone
			return m
		}
	}
	for _, rr := range r.Ns {
		s.applyUpdate(rr)
	}
	s.updates++
	return m
}

// applyUpdate applies one update-section record (RFC 2136 section 2.5).
// It expects s.mu to be held.
func (s *Server) applyUpdate(rr dns.RR) {
	h := rr.Header()
	name := canonical(h.Name)
	switch h.Class {
	case dns.ClassANY:
		if h.Rrtype == dns.TypeANY {
			for k := range s.records {
				if k.name == name {
					delete(s.records, k)
				}
			}
			return
		}
		delete(s.records, rrKey{name, h.Rrtype})
	case dns.ClassNONE:
		k := rrKey{name, h.Rrtype}
		want := dns.Copy(rr)
		want.Header().Class = dns.ClassINET
		kept := s.records[k][:0]
		for _, have := range s.records[k] {
			if !dns.IsDuplicate(have, want) {
				kept = append(kept, have)
			}
		}
		if len(kept) == 0 {
			delete(s.records, k)
		} else {
			s.records[k] = kept
		}
	default:
		k := rrKey{name, h.Rrtype}
		add := dns.Copy(rr)
		add.Header().Name = name
		for _, have := range s.records[k] {
			if dns.IsDuplicate(have, add) {
				return
			}
		}
		s.records[k] = append(s.records[k], add)
	}
}

// tsigProvider verifies TSIG with the keys set by EnableTSIG, read at the
// time of each message so a test may add keys after the server started.
type tsigProvider struct{ s *Server }

func (p tsigProvider) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	p.s.mu.Lock()
	secret, ok := p.s.tsigKeys[canonical(t.Hdr.Name)]
	p.s.mu.Unlock()
	if !ok {
		return nil, dns.ErrSecret
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("tsig secret for %s: %w", t.Hdr.Name, err)
	}
	var h hash.Hash
	switch canonical(t.Algorithm) {
	case dns.HmacSHA1:
		h = hmac.New(sha1.New, raw)
	case dns.HmacSHA224:
		h = hmac.New(sha256.New224, raw)
	case dns.HmacSHA256:
		h = hmac.New(sha256.New, raw)
	case dns.HmacSHA384:
		h = hmac.New(sha512.New384, raw)
	case dns.HmacSHA512:
		h = hmac.New(sha512.New, raw)
	default:
		return nil, dns.ErrKeyAlg
	}
	h.Write(msg)
	return h.Sum(nil), nil
}

func (p tsigProvider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	return p.mac(msg, t)
}

func (p tsigProvider) Verify(msg []byte, t *dns.TSIG) error {
	want, err := p.mac(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// Blackhole returns the address of a loopback UDP socket that reads queries
// and never answers, for exercising resolver timeouts.
func Blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: blackhole: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return // closed by cleanup
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}
