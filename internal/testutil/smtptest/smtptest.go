// Package smtptest is an SMTP server on loopback for tests: it speaks enough
// of RFC 5321, RFC 3207 (STARTTLS) and RFC 4954 (AUTH PLAIN, and AUTH LOGIN
// as servers such as Microsoft 365 run it) for net/smtp, records what it
// receives and fails the test on protocol errors.
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// PKI is a certificate authority made for one test.
type PKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func NewPKI(t testing.TB) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Gatehouse test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &PKI{cert: cert, key: key, pool: pool}
}

// Pool holds the authority's certificate, for clients that trust it.
func (p *PKI) Pool() *x509.CertPool { return p.pool }

// ServerTLS issues a server certificate for the given names (IP addresses
// become IP SANs) and returns a server configuration using it.
func (p *PKI) ServerTLS(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
}

// Options shape a test SMTP server.
type Options struct {
	TLS         *tls.Config // offers STARTTLS with it, or serves it from the first byte with ImplicitTLS
	ImplicitTLS bool
	NoSTARTTLS  bool   // never offer STARTTLS, even with TLS set
	User, Pass  string // accepted credentials; AUTH is offered only when set
	// Auth lists the AUTH mechanisms offered when User is set, in order, as
	// the EHLO reply shows them; nil means PLAIN only and an empty list
	// offers no AUTH at all. PLAIN and LOGIN are implemented; any other name
	// is only advertised, and a client that uses it fails the test.
	Auth []string
	// LoginPrompts are the challenges of AUTH LOGIN, as text before base64;
	// nil means "Username:" then "Password:". The first answer is the
	// username and the second the password; each further prompt is one more
	// challenge (which a client should refuse with "*"), and its answer is
	// recorded and otherwise ignored. An initial response (AUTH LOGIN
	// <username>) answers the first prompt, which is then not sent.
	LoginPrompts []string
	ClearAuth    bool // offer AUTH without TLS (a relay on loopback)
	Silent       bool // accept connections and never answer
}

func (o Options) mechanisms() []string {
	if o.Auth == nil {
		return []string{"PLAIN"}
	}
	return o.Auth
}

func (o Options) loginPrompts() []string {
	if o.LoginPrompts == nil {
		return []string{"Username:", "Password:"}
	}
	return o.LoginPrompts
}

// Command is one command line as received.
type Command struct {
	Verb string // upper case
	Arg  string
	TLS  bool // Received over TLS
}

func (c Command) String() string {
	s := c.Verb
	if c.TLS {
		s += "(tls)"
	}
	return s
}

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte // with CRLF line ends, dot-stuffing removed
	TLS  bool
	User string // authenticated user, "" without AUTH
	Auth string // the AUTH mechanism used, upper case, "" without AUTH
}

// Server is an SMTP server on loopback speaking enough of RFC 5321,
// RFC 3207 (STARTTLS) and RFC 4954 (AUTH PLAIN and AUTH LOGIN) for net/smtp.
// It records every command, every answer to an AUTH challenge, every byte
// read from the network and every message, can be told to answer a command
// with a scripted reply, and fails the test when the client breaks the
// protocol: an unknown or out-of-order command, AUTH without TLS or with a
// mechanism not offered, an AUTH answer that is not base64, a line without
// CRLF, a message line over 998 bytes or with 8-bit data.
type Server struct {
	t    testing.TB
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	script   map[string][]string // verb (or "CONNECT" for the greeting, "." for the end of DATA) -> replies, used once each
	commands []Command
	answers  []string // answers to AUTH challenges, decoded
	messages []Message
	raw      bytes.Buffer // every byte read from every connection, before TLS decryption
	sessions int
}

func New(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, opts: opts, ln: ln, conns: map[net.Conn]struct{}{}, script: map[string][]string{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// Port is the port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Reply makes the server answer the next n uses of verb with the given
// replies, in order, instead of handling the command.
func (s *Server) Reply(verb string, replies ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[verb] = append(s.script[verb], replies...)
}

func (s *Server) scripted(verb string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.script[verb]
	if len(r) == 0 {
		return "", false
	}
	s.script[verb] = r[1:]
	return r[0], true
}

// Received returns the commands and the messages received so far.
func (s *Server) Received() ([]Command, []Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands...), append([]Message(nil), s.messages...)
}

// AuthAnswers returns the client's answers to AUTH challenges so far, in
// order and base64-decoded (credentials included: this is a test server).
// Answers given with the AUTH command itself (initial responses) and the
// "*" that cancels an exchange (recorded as a command) are not among them.
func (s *Server) AuthAnswers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers)
}

// RawBytes returns every byte read from the network so far, before TLS decryption.
func (s *Server) RawBytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.raw.Bytes())
}

// SessionCount is the number of connections served so far.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Verbs lists the commands received, with "(tls)" after those sent over TLS.
func (s *Server) Verbs() string {
	cmds, _ := s.Received()
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.String()
	}
	return strings.Join(out, " ")
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.sessions++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serve(&recordingConn{Conn: c, s: s})
		}()
	}
}

// recordingConn copies what it reads into the server's raw log.
type recordingConn struct {
	net.Conn
	s *Server
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.mu.Lock()
	c.s.raw.Write(p[:n])
	c.s.mu.Unlock()
	return n, err
}

// smtpSession is the state of one connection.
type smtpSession struct {
	s          *Server
	conn       net.Conn
	r          *bufio.Reader
	tls        bool
	helo       bool
	user       string
	mech       string
	authFailed bool
	mail       bool
	from       string
	rcpts      []string
}

func (s *Server) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a stuck test ends
	ss := &smtpSession{s: s, conn: c}
	if s.opts.ImplicitTLS {
		tc := tls.Server(c, s.opts.TLS)
		if err := tc.Handshake(); err != nil {
			return // the client refused the certificate
		}
		ss.conn, ss.tls = tc, true
	}
	if s.opts.Silent {
		_, _ = io.Copy(io.Discard, ss.conn)
		return
	}
	ss.r = bufio.NewReader(ss.conn)
	if r, ok := s.scripted("CONNECT"); ok {
		ss.send(r)
		return
	}
	ss.send("220 mx.test ESMTP ready")
	for {
		line, err := ss.readLine(maxAuthLine)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if verb != "AUTH" && len(line)+2 > maxCommandLine {
			s.t.Errorf("smtp server: command line of %d bytes, more than %d: %.60q", len(line)+2, maxCommandLine, line)
		}
		s.mu.Lock()
		s.commands = append(s.commands, Command{Verb: verb, Arg: arg, TLS: ss.tls})
		s.mu.Unlock()
		if r, ok := s.scripted(verb); ok {
			ss.send(r)
			if verb == "AUTH" && strings.HasPrefix(r, "5") {
				ss.authFailed = true
			}
			continue
		}
		if !ss.handle(verb, arg) {
			return
		}
	}
}

// Line limits with the CRLF: RFC 5321 section 4.5.3.1.4 for commands,
// RFC 4954 section 4 for AUTH commands and the answers to its challenges.
const (
	maxCommandLine = 512
	maxAuthLine    = 12288
)

func (ss *smtpSession) send(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	_, _ = io.WriteString(ss.conn, b.String())
}

// readLine reads one CRLF-terminated line of at most max bytes with the CRLF.
func (ss *smtpSession) readLine(max int) (string, error) {
	line, err := ss.r.ReadString('\n')
	if err != nil {
		if line != "" && !errors.Is(err, io.EOF) {
			ss.s.t.Errorf("smtp server: reading: %v", err)
		}
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		ss.s.t.Errorf("smtp server: line without CRLF: %q", line)
	}
	if len(line) > max {
		ss.s.t.Errorf("smtp server: line of %d bytes, more than %d: %.60q", len(line), max, line)
	}
	body := strings.TrimSuffix(line, "\r\n")
	if strings.ContainsAny(body, "\r\n") {
		ss.s.t.Errorf("smtp server: bare CR or LF in line %q", body)
	}
	return body, nil
}

func (ss *smtpSession) reset() { ss.mail, ss.from, ss.rcpts = false, "", nil }

// handle answers one command; false ends the session.
func (ss *smtpSession) handle(verb, arg string) bool {
	s, t := ss.s, ss.s.t
	switch verb {
	case "EHLO":
		ss.helo = true
		ss.reset()
		lines := []string{"250-mx.test greets " + arg}
		if s.opts.TLS != nil && !ss.tls && !s.opts.NoSTARTTLS {
			lines = append(lines, "250-STARTTLS")
		}
		if s.opts.User != "" && (ss.tls || s.opts.ClearAuth) && len(s.opts.mechanisms()) > 0 {
			lines = append(lines, "250-AUTH "+strings.Join(s.opts.mechanisms(), " "))
		}
		ss.send(append(lines, "250 HELP")...)
	case "HELO":
		ss.helo = true
		ss.reset()
		ss.send("250 mx.test")
	case "STARTTLS":
		if ss.tls || s.opts.TLS == nil || s.opts.NoSTARTTLS {
			t.Errorf("smtp server: STARTTLS not offered but sent")
			ss.send("502 5.5.1 STARTTLS not available")
			return true
		}
		if ss.r.Buffered() > 0 {
			t.Errorf("smtp server: data pipelined after STARTTLS")
		}
		ss.send("220 2.0.0 ready to start TLS")
		tc := tls.Server(ss.conn, s.opts.TLS)
		if err := tc.Handshake(); err != nil {
			return false // the client refused the certificate
		}
		ss.conn, ss.r, ss.tls, ss.helo = tc, bufio.NewReader(tc), true, false
		ss.reset()
	case "AUTH":
		return ss.auth(arg)
	case "*":
		// net/smtp cancels a refused AUTH with "*".
		if !ss.authFailed {
			t.Errorf("smtp server: unexpected %q", verb)
		}
		ss.authFailed = false
		ss.send("501 5.7.0 authentication canceled")
	case "MAIL":
		path, ok := strings.CutPrefix(arg, "FROM:")
		switch {
		case !ss.helo:
			t.Errorf("smtp server: MAIL before EHLO")
			ss.send("503 5.5.1 EHLO first")
		case !ok || !isPath(path):
			t.Errorf("smtp server: malformed MAIL %q", arg)
			ss.send("501 5.5.4 syntax error")
		case s.opts.User != "" && ss.user == "":
			t.Errorf("smtp server: MAIL without AUTH")
			ss.send("530 5.7.0 authentication required")
		default:
			ss.mail, ss.from = true, strings.Trim(path, "<>")
			ss.send("250 2.1.0 sender ok")
		}
	case "RCPT":
		switch {
		case !ss.mail:
			t.Errorf("smtp server: RCPT before MAIL")
			ss.send("503 5.5.1 MAIL first")
		case !strings.HasPrefix(arg, "TO:") || !isPath(arg[3:]):
			t.Errorf("smtp server: malformed RCPT %q", arg)
			ss.send("501 5.5.4 syntax error")
		default:
			ss.rcpts = append(ss.rcpts, strings.Trim(arg[3:], "<>"))
			ss.send("250 2.1.5 recipient ok")
		}
	case "DATA":
		if len(ss.rcpts) == 0 {
			t.Errorf("smtp server: DATA without recipients")
			ss.send("503 5.5.1 RCPT first")
			return true
		}
		ss.send("354 end data with <CR><LF>.<CR><LF>")
		return ss.data()
	case "RSET":
		ss.reset()
		ss.send("250 2.0.0 ok")
	case "NOOP":
		ss.send("250 2.0.0 ok")
	case "QUIT":
		ss.send("221 2.0.0 bye")
		return false
	default:
		t.Errorf("smtp server: unexpected command %q", verb)
		ss.send("500 5.5.2 unknown command")
	}
	return true
}

// isPath reports whether s is "<address>" without parameters (none are
// offered).
func isPath(s string) bool {
	return strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") && !strings.ContainsAny(s[1:len(s)-1], "<> ")
}

// auth runs one AUTH exchange; false ends the session.
func (ss *smtpSession) auth(arg string) bool {
	s, t := ss.s, ss.s.t
	mech, initial, hasInitial := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	offered := slices.ContainsFunc(s.opts.mechanisms(), func(m string) bool { return strings.EqualFold(m, mech) })
	switch {
	case !ss.tls && !s.opts.ClearAuth:
		t.Errorf("smtp server: AUTH before TLS")
		ss.send("538 5.7.11 encryption required")
		ss.authFailed = true
		return true
	case s.opts.User == "" || !offered:
		t.Errorf("smtp server: AUTH %q not offered", mech)
		ss.send("504 5.5.4 mechanism not supported")
		ss.authFailed = true
		return true
	case !ss.helo || ss.user != "":
		t.Errorf("smtp server: AUTH out of order")
		ss.send("503 5.5.1 bad sequence")
		return true
	}
	var answers []string // initial response first, when there is one
	if hasInitial {
		a, ok := ss.decode(initial)
		if !ok {
			return true
		}
		answers = append(answers, a)
	}
	switch mech {
	case "PLAIN":
		if !hasInitial {
			a, st := ss.challenge("")
			if st != exchangeOn {
				return st != exchangeLost
			}
			answers = append(answers, a)
		}
		parts := strings.Split(answers[0], "\x00")
		if len(parts) == 3 {
			return ss.authenticate(mech, parts[1], parts[2])
		}
		return ss.authenticate(mech, "", "")
	case "LOGIN":
		prompts := s.opts.loginPrompts()
		for _, prompt := range prompts[min(len(answers), len(prompts)):] {
			a, st := ss.challenge(prompt)
			if st != exchangeOn {
				return st != exchangeLost
			}
			answers = append(answers, a)
		}
		for len(answers) < 2 {
			answers = append(answers, "")
		}
		return ss.authenticate(mech, answers[0], answers[1])
	default:
		t.Errorf("smtp server: AUTH %s is advertised but not implemented here", mech)
		ss.send("504 5.5.4 mechanism not supported")
		ss.authFailed = true
		return true
	}
}

// authenticate ends an AUTH exchange with success or 535.
func (ss *smtpSession) authenticate(mech, user, pass string) bool {
	if user != ss.s.opts.User || pass != ss.s.opts.Pass {
		ss.authFailed = true
		ss.send("535 5.7.8 authentication credentials invalid")
		return true
	}
	ss.user, ss.mech = user, mech
	ss.send("235 2.7.0 authentication successful")
	return true
}

// States of an AUTH exchange after a challenge.
const (
	exchangeOn       = iota // the client answered
	exchangeCanceled        // the client canceled with "*" or sent no base64; the reply is sent
	exchangeLost            // the connection is gone
)

// challenge sends one AUTH challenge (text before base64) and reads the
// answer.
func (ss *smtpSession) challenge(prompt string) (string, int) {
	ss.send("334 " + base64.StdEncoding.EncodeToString([]byte(prompt)))
	line, err := ss.readLine(maxAuthLine)
	if err != nil {
		ss.s.t.Errorf("smtp server: connection lost in AUTH: %v", err)
		return "", exchangeLost
	}
	if line == "*" {
		ss.s.mu.Lock()
		ss.s.commands = append(ss.s.commands, Command{Verb: "*", TLS: ss.tls})
		ss.s.mu.Unlock()
		ss.send("501 5.7.0 authentication canceled")
		return "", exchangeCanceled
	}
	a, ok := ss.decode(line)
	if !ok {
		return "", exchangeCanceled
	}
	ss.s.mu.Lock()
	ss.s.answers = append(ss.s.answers, a)
	ss.s.mu.Unlock()
	return a, exchangeOn
}

// decode decodes one base64 AUTH answer (an empty line, or "=" as an
// initial response, is the empty answer); on failure it fails the test and
// refuses the exchange with 501.
func (ss *smtpSession) decode(s string) (string, bool) {
	if s == "=" {
		return "", true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		ss.s.t.Errorf("smtp server: AUTH answer is not base64: %.60q", s)
		ss.authFailed = true
		ss.send("501 5.5.2 cannot decode the answer")
		return "", false
	}
	return string(b), true
}

// data reads a message up to the lone dot and stores it.
func (ss *smtpSession) data() bool {
	var msg bytes.Buffer
	for {
		line, err := ss.readLine(1000)
		if err != nil {
			ss.s.t.Errorf("smtp server: connection lost in DATA: %v", err)
			return false
		}
		if line == "." {
			break
		}
		for i := 0; i < len(line); i++ {
			if line[i] >= 0x80 || line[i] == 0 {
				ss.s.t.Errorf("smtp server: 8-bit or NUL data without 8BITMIME: %.60q", line)
				break
			}
		}
		msg.WriteString(strings.TrimPrefix(line, ".") + "\r\n")
	}
	if r, ok := ss.s.scripted("."); ok {
		ss.reset()
		ss.send(r)
		return true
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: ss.rcpts, Data: msg.Bytes(), TLS: ss.tls, User: ss.user, Auth: ss.mech})
	ss.s.mu.Unlock()
	ss.reset()
	ss.send("250 2.0.0 queued")
	return true
}
