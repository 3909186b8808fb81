package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Email security modes.
const (
	EmailSTARTTLS = "starttls" // plain connection upgraded with STARTTLS (submission, port 587); required, never optional
	EmailTLS      = "tls"      // TLS from the first byte (port 465)
	EmailPlain    = "none"     // no TLS: only to a loopback host (a local relay such as postfix on 127.0.0.1:25)
)

// Limits on email configuration.
const (
	maxEmailRecipients  = 10
	maxAddressLen       = 320 // a whole From or To entry, display name included
	maxAddrSpecLen      = 254 // local@domain
	maxLocalPartLen     = 64
	maxDisplayNameRunes = 64
	maxUsernameRunes    = 256
	maxPasswordLen      = 1024
	maxHostLen          = 253
)

// emailHelloFallback is the EHLO name when the local address is unknown.
const emailHelloFallback = "gatehouse"

// maxServerText bounds how much of an SMTP reply ends up in an error.
const maxServerText = 160

var (
	hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	allDigitsRE = regexp.MustCompile(`^[0-9]+$`)
	// localPartRE is the dot-atom of RFC 5322 restricted to ASCII; net/mail
	// has already refused leading, trailing and doubled dots.
	localPartRE = regexp.MustCompile("^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$")
)

// EmailConfig configures an email channel (SMTP submission).
type EmailConfig struct {
	Name     string         // channel name (same rule as webhooks)
	Host     string         // SMTP server: IP address or DNS host name, no port, no scheme
	Port     int            // 1-65535
	Security string         // EmailSTARTTLS, EmailTLS or EmailPlain; "" means EmailSTARTTLS
	Username string         // optional; with Password, AUTH PLAIN, or AUTH LOGIN when the server offers only that (only ever over TLS, or plain to loopback)
	Password string         // never logged, never in errors
	From     string         // one address, e.g. "Gatehouse <alerts@example.com>" or "alerts@example.com"
	To       []string       // 1-10 addresses
	RootCAs  *x509.CertPool // trusted roots for the server certificate; nil means the system roots
}

func (c EmailConfig) security() string {
	if c.Security == "" {
		return EmailSTARTTLS
	}
	return c.Security
}

// Validate checks the configuration; each line of the error is
// "field: message" with field one of name, host, port, security, username,
// secret (the password), from, to. The password never appears in it.
func (c EmailConfig) Validate() error {
	var errs []error
	if !channelNameRE.MatchString(c.Name) {
		errs = append(errs, errors.New("name: must be 1-64 characters of letters, digits, space and . _ -"))
	}
	hostErr := validateEmailHost(c.Host)
	if hostErr != nil {
		errs = append(errs, hostErr)
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: must be 1-65535 (587 for starttls, 465 for tls, 25 for a local relay), got %d", c.Port))
	}
	switch c.security() {
	case EmailSTARTTLS, EmailTLS:
	case EmailPlain:
		if hostErr == nil && !isLoopbackHost(c.Host) {
			errs = append(errs, errors.New("security: none (no TLS) is only allowed to a loopback host such as 127.0.0.1, ::1 or localhost; use starttls or tls"))
		}
	default:
		errs = append(errs, fmt.Errorf("security: must be starttls, tls or none, got %q", truncate(c.Security, 16)))
	}
	errs = append(errs, validateCredentials(c)...)
	if _, err := parseEmailAddress("from", c.From); err != nil {
		errs = append(errs, err)
	}
	switch {
	case len(c.To) == 0:
		errs = append(errs, errors.New("to: at least one recipient is required"))
	case len(c.To) > maxEmailRecipients:
		errs = append(errs, fmt.Errorf("to: at most %d recipients allowed, got %d", maxEmailRecipients, len(c.To)))
	default:
		seen := map[string]int{}
		for i, s := range c.To {
			field := fmt.Sprintf("to: recipient %d", i+1)
			a, err := parseEmailAddress(field, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			key := strings.ToLower(a.Address)
			if j, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("%s: %s is already recipient %d", field, a.Address, j+1))
				continue
			}
			seen[key] = i
		}
	}
	return errors.Join(errs...)
}

func validateCredentials(c EmailConfig) []error {
	var errs []error
	if c.Username != "" {
		switch {
		case utf8.RuneCountInString(c.Username) > maxUsernameRunes:
			errs = append(errs, fmt.Errorf("username: longer than %d characters", maxUsernameRunes))
		case !utf8.ValidString(c.Username) || strings.ContainsFunc(c.Username, func(r rune) bool { return !unicode.IsPrint(r) }):
			errs = append(errs, errors.New("username: must be printable text without line breaks, tabs or NUL"))
		case strings.TrimSpace(c.Username) != c.Username:
			errs = append(errs, errors.New("username: must not start or end with spaces"))
		}
	}
	if c.Password != "" {
		switch {
		case len(c.Password) > maxPasswordLen:
			errs = append(errs, fmt.Errorf("secret: longer than %d bytes", maxPasswordLen))
		case strings.ContainsAny(c.Password, "\r\n\x00"):
			errs = append(errs, errors.New("secret: must not contain line breaks or NUL"))
		}
	}
	switch {
	case c.Username != "" && c.Password == "":
		errs = append(errs, errors.New("secret: required when a username is set"))
	case c.Username == "" && c.Password != "":
		errs = append(errs, errors.New("username: required when a password is set"))
	case c.Username != "" && c.security() == EmailPlain && !slices.Contains([]string{"127.0.0.1", "::1", "localhost"}, c.Host):
		// smtp.PlainAuth, and loginAuth by the same rule, send a password
		// without TLS to exactly these names only.
		errs = append(errs, errors.New("username: authentication without TLS is only allowed to 127.0.0.1, ::1 or localhost"))
	}
	return errs
}

// validateEmailHost accepts an IP address without zone or a DNS host name of
// letter-digit-hyphen labels, and nothing else.
func validateEmailHost(host string) error {
	if host == "" {
		return errors.New("host: required")
	}
	if strings.Contains(host, "://") {
		return errors.New("host: give the server name only, without a scheme such as smtp://")
	}
	if h, p, err := net.SplitHostPort(host); err == nil && h != "" && allDigitsRE.MatchString(p) {
		return errors.New("host: give the port in the port field, not in the host")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return errors.New("host: IPv6 zones are not supported; use an address without %zone")
		}
		return nil
	}
	if len(host) > maxHostLen {
		return fmt.Errorf("host: longer than %d characters", maxHostLen)
	}
	if !isHostName(host) {
		return fmt.Errorf("host: %q is not an IP address or a host name (letters, digits, '-' and '.' only)", truncate(host, 64))
	}
	return nil
}

// isHostName reports whether s is a DNS name of LDH labels of at most 63
// characters, at most 253 in all, whose last label is not all digits.
func isHostName(s string) bool {
	if s == "" || len(s) > maxHostLen {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if !hostLabelRE.MatchString(l) {
			return false
		}
	}
	return !allDigitsRE.MatchString(labels[len(labels)-1])
}

func isLoopbackHost(host string) bool {
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}

// parseEmailAddress parses one address and checks it against the allowlist;
// errors start with field.
func parseEmailAddress(field, s string) (*mail.Address, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("%s: required", field)
	case len(s) > maxAddressLen:
		return nil, fmt.Errorf("%s: longer than %d characters", field, maxAddressLen)
	case strings.ContainsAny(s, "\r\n\x00"):
		return nil, fmt.Errorf("%s: must not contain line breaks or NUL", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not one email address like alerts@example.com or \"Gatehouse <alerts@example.com>\"", field, truncate(s, 64))
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 {
		return nil, fmt.Errorf("%s: %q has no @", field, truncate(s, 64))
	}
	local, domain := a.Address[:at], a.Address[at+1:]
	switch {
	case len(a.Address) > maxAddrSpecLen:
		return nil, fmt.Errorf("%s: the address is longer than %d characters", field, maxAddrSpecLen)
	case len(local) > maxLocalPartLen || !localPartRE.MatchString(local):
		return nil, fmt.Errorf("%s: the part before @ must be 1-%d letters, digits and .!#$%%&'*+/=?^_`{|}~- only", field, maxLocalPartLen)
	case !isHostName(domain):
		return nil, fmt.Errorf("%s: the part after @ must be a host name (letters, digits, '-' and '.')", field)
	case strings.ContainsFunc(a.Name, isControl):
		return nil, fmt.Errorf("%s: the display name must not contain control characters", field)
	case utf8.RuneCountInString(a.Name) > maxDisplayNameRunes:
		return nil, fmt.Errorf("%s: the display name is longer than %d characters", field, maxDisplayNameRunes)
	}
	return a, nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// Email sends notifications as plain-text mail through an SMTP server.
type Email struct {
	queued
	cfg  EmailConfig
	opts Options
	from string   // address part of cfg.From, for MAIL FROM
	to   []string // address parts of cfg.To, for RCPT TO
}

// NewEmail builds an email channel with its queue.
func NewEmail(cfg EmailConfig, opts Options) (*Email, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("email channel: %w", err)
	}
	opts = opts.withDefaults()
	cfg.Security = cfg.security()
	cfg.To = slices.Clone(cfg.To)
	e := &Email{cfg: cfg, opts: opts}
	from, _ := mail.ParseAddress(cfg.From) // validated above
	e.from = from.Address
	for _, s := range cfg.To {
		a, _ := mail.ParseAddress(s)
		e.to = append(e.to, a.Address)
	}
	e.queued = queued{name: cfg.Name, q: newQueue(e.deliver, 0, opts, opts.Logger.Named("email").With("channel", cfg.Name)),
		render: func(n Notification) (any, error) {
			_, msg := RenderEmail(n, cfg.From, cfg.To, time.Now())
			return msg, nil
		}}
	return e, nil
}

// Close stops accepting and delivers what is queued until ctx ends.
func (e *Email) Close(ctx context.Context) error { return e.q.close(ctx) }

var emailKindLabels = map[Kind]string{
	KindFiring:   "FIRING",
	KindResolved: "RESOLVED",
	KindRepeat:   "REMINDER",
	KindTest:     "TEST",
}

// oneLine makes text safe for a header or a single body line: cleaned, every
// run of white space (line breaks included) turned into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(clean(s)), " ") }

// RenderEmail renders n as a complete RFC 5322 message from from to to
// (addresses as in EmailConfig), dated n.Time or now. It returns the subject
// as plain text and the message with CRLF line ends. Header values never
// contain CR or LF from n; the body is quoted-printable UTF-8.
func RenderEmail(n Notification, from string, to []string, now time.Time) (subject string, msg []byte) {
	at := n.Time
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	label, ok := emailKindLabels[n.Kind]
	if !ok {
		label = strings.ToUpper(oneLine(truncate(string(n.Kind), 16)))
	}
	subject = fmt.Sprintf("[Gatehouse] %s %s: %s", label, oneLine(truncate(string(n.Severity), 16)), oneLine(truncate(n.Title, MaxTitleRunes)))
	sum := sha256.Sum256([]byte(n.Key))

	var b bytes.Buffer
	writeHeader(&b, "From", renderAddress(from))
	rcpts := make([]string, 0, len(to))
	for _, s := range to {
		rcpts = append(rcpts, renderAddress(s))
	}
	writeHeader(&b, "To", strings.Join(rcpts, ", "))
	writeHeader(&b, "Subject", mime.QEncoding.Encode("utf-8", subject))
	writeHeader(&b, "Date", at.Format(time.RFC1123Z))
	writeHeader(&b, "Message-ID", "<"+hex.EncodeToString(sum[:16])+"@gatehouse>")
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
	writeHeader(&b, "Content-Transfer-Encoding", "quoted-printable")
	writeHeader(&b, "Auto-Submitted", "auto-generated")
	writeHeader(&b, DeliveryHeader, mime.QEncoding.Encode("utf-8", oneLine(truncate(n.Key, 128))))
	writeHeader(&b, EventHeader, mime.QEncoding.Encode("utf-8", oneLine(truncate(string(n.Kind), 16))))
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(emailBody(n, at)))
	_ = qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return subject, b.Bytes()
}

// emailBody is the plain-text body with LF line ends: the title, one line per
// field (continuation lines of multi-line values indented), then the time.
func emailBody(n Notification, at time.Time) string {
	var b strings.Builder
	b.WriteString(oneLine(truncate(n.Title, MaxTitleRunes)) + "\n\n")
	for _, f := range n.Fields {
		name := oneLine(truncate(f.Name, MaxFieldNameRunes))
		lines := strings.Split(strings.TrimRight(clean(truncate(f.Value, MaxFieldRunes)), "\n"), "\n")
		b.WriteString(strings.TrimRight(name+": "+strings.TrimRight(lines[0], " \t"), " ") + "\n")
		for _, l := range lines[1:] {
			b.WriteString("  " + strings.TrimRight(l, " \t") + "\n")
		}
	}
	if len(n.Fields) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("Time: " + at.Format(time.RFC3339) + "\n")
	if n.IncidentID != "" {
		b.WriteString("Incident: " + oneLine(n.IncidentID) + "\n")
	}
	return b.String()
}

// renderAddress formats one configured address for a header, encoding a
// non-ASCII display name. Input that does not parse (RenderEmail is exported)
// is reduced to one line.
func renderAddress(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil || strings.ContainsFunc(a.Name, isControl) {
		return oneLine(s)
	}
	return a.String()
}

// writeHeader writes "name: value" folded at spaces so lines stay within 78
// characters where a space allows it (an address or an encoded word is never
// split; the limits on them keep every line far below 998 bytes). Any CR or LF left in value becomes a space: a value can never
// start a header of its own.
func writeHeader(b *bytes.Buffer, name, value string) {
	value = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, value)
	const limit = 76
	line := len(name) + 1
	b.WriteString(name + ":")
	for _, word := range strings.Split(value, " ") {
		if line+1+len(word) > limit && line > 1 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" " + word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
}

func (e *Email) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: e.cfg.Host, RootCAs: e.cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

// deliver runs one SMTP conversation within opts.Timeout.
func (e *Email) deliver(ctx context.Context, it *item) result {
	msg := it.payload.([]byte)
	d := net.Dialer{Timeout: e.opts.Timeout}
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port)))
	if err != nil {
		return e.fail(ctx, nil, "connecting", err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(e.opts.Timeout)); err != nil {
		return e.fail(ctx, nil, "connecting", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	conn := raw
	if e.cfg.Security == EmailTLS {
		tc := tls.Client(raw, e.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return e.fail(ctx, nil, "TLS handshake", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, e.cfg.Host)
	if err != nil {
		return e.fail(ctx, nil, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello(helloName(raw.LocalAddr())); err != nil {
		return e.fail(ctx, c, "EHLO", err)
	}
	if e.cfg.Security == EmailSTARTTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			_ = c.Quit()
			return result{err: errors.New("the server does not offer STARTTLS; check the port (587 for starttls, 465 for tls)"), permanent: true}
		}
		if err := c.StartTLS(e.tlsConfig()); err != nil {
			return e.fail(ctx, c, "STARTTLS", err)
		}
	}
	if e.cfg.Username != "" {
		auth, err := e.auth(c)
		if err != nil {
			_ = c.Quit()
			return result{err: err, permanent: true}
		}
		if err := c.Auth(auth); err != nil {
			return e.fail(ctx, c, "AUTH", err)
		}
	}
	if err := c.Mail(e.from); err != nil {
		return e.fail(ctx, c, "MAIL FROM", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to); err != nil {
			return e.fail(ctx, c, "RCPT TO "+to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return e.fail(ctx, c, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return e.fail(ctx, c, "sending the message", err)
	}
	if err := w.Close(); err != nil {
		return e.fail(ctx, c, "end of message", err)
	}
	// The server has taken responsibility for the message; a failed QUIT
	// changes nothing.
	_ = c.Quit()
	return result{}
}

// auth chooses the AUTH mechanism from those the server offers: PLAIN when
// offered, else LOGIN (servers such as Microsoft 365 offer only that). Both
// send nothing unless the connection is TLS or the host is exactly
// localhost, 127.0.0.1 or ::1, the names validateCredentials allows for
// security none.
func (e *Email) auth(c *smtp.Client) (smtp.Auth, error) {
	_, offered := c.Extension("AUTH")
	mechs := strings.Fields(strings.ToUpper(offered))
	switch {
	case slices.Contains(mechs, "PLAIN"):
		return smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.cfg.Host), nil
	case slices.Contains(mechs, "LOGIN"):
		return &loginAuth{username: e.cfg.Username, password: e.cfg.Password, host: e.cfg.Host}, nil
	case len(mechs) == 0:
		return nil, errors.New("the server offers no authentication (no AUTH in its EHLO reply); check the host and port, or remove the username and password for a relay that needs none")
	default:
		return nil, fmt.Errorf("the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers %q); Gatehouse can sign in with those two only", truncate(e.scrub(offered), 64))
	}
}

// loginAuth is the AUTH LOGIN mechanism, which net/smtp lacks: the server
// asks for the username and then the password, each a base64 challenge.
// Like smtp.PlainAuth it sends nothing over a connection without TLS unless
// the server is exactly localhost, 127.0.0.1 or ::1 (see isLocalhostName),
// and only to the host it was made for. It answers the prompts "Username:"
// and "Password:" (in any case) and, for servers that word them otherwise,
// answers in order: the username first, then the password, and it breaks off
// at a third challenge, so the password goes out at most once.
type loginAuth struct {
	username, password, host string
	answered                 int // challenges answered so far
}

// isLocalhostName is the rule of smtp.PlainAuth for sending credentials
// without TLS: these three names exactly.
func isLocalhostName(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	// Without TLS nothing in ServerInfo can be trusted, whatever it offers.
	if !server.TLS && !isLocalhostName(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	a.answered = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	prompt := loginPrompt(fromServer)
	a.answered++
	switch a.answered {
	case 1:
		if prompt == "password" {
			return nil, &loginError{reason: "the server asked for the password before the username; nothing was sent", prompt: string(fromServer)}
		}
		return []byte(a.username), nil
	case 2:
		if prompt == "username" || prompt == "user" {
			return nil, &loginError{reason: "the server asked for the username twice; the password was not sent", prompt: string(fromServer)}
		}
		return []byte(a.password), nil
	default:
		return nil, &loginError{reason: "the server sent another challenge after the password; sign-in abandoned", prompt: string(fromServer)}
	}
}

// loginPrompt reduces an AUTH LOGIN challenge to its lower-case letters, so
// "Username:", "USERNAME" and "User Name" all read "username".
func loginPrompt(b []byte) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, string(b))
}

// loginError is an AUTH LOGIN exchange the client broke off. Its message
// holds no server text; prompt (the decoded challenge, not yet cleaned) is
// shown only through serverText.
type loginError struct {
	reason string
	prompt string
}

func (e *loginError) Error() string { return e.reason }

// helloName is the EHLO argument: the address literal of our end of the
// connection (accepted by servers that insist on a fully qualified name),
// never user input.
func helloName(local net.Addr) string {
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return emailHelloFallback
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		return "[IPv6:" + a.String() + "]"
	}
	return "[" + a.String() + "]"
}

// fail classifies an error of the SMTP conversation at stage: SMTP replies
// 4xx are retried and 5xx are final; certificate and TLS protocol errors are
// final; network errors and timeouts are retried. When the server answered,
// the conversation is ended politely with QUIT.
func (e *Email) fail(ctx context.Context, c *smtp.Client, stage string, err error) result {
	var (
		reply     *textproto.Error
		login     *loginError
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		invalid   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
		alert     tls.AlertError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &reply):
		if c != nil {
			_ = c.Quit()
		}
		text := e.serverText(reply.Msg)
		if stage == "AUTH" && reply.Code == 535 {
			return result{err: fmt.Errorf("the server refused the username or password (%d %s)", reply.Code, text), permanent: true}
		}
		res := result{err: fmt.Errorf("%s: server answered %d %s", stage, reply.Code, text)}
		res.permanent = reply.Code < 400 || reply.Code >= 500
		return res
	case ctx.Err() != nil:
		return result{err: fmt.Errorf("%s: delivery canceled", stage)}
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &invalid):
		cause := err
		if verify != nil {
			cause = verify.Err
		}
		return result{err: fmt.Errorf("%s: the server certificate is not trusted: %s", stage, e.scrub(cause.Error())), permanent: true}
	case errors.As(err, &notTLS):
		return result{err: fmt.Errorf("%s: the server did not answer with TLS; use security starttls for port 587", stage), permanent: true}
	case errors.As(err, &alert):
		return result{err: fmt.Errorf("%s: the server refused the TLS connection: %s", stage, e.scrub(err.Error())), permanent: true}
	case errors.As(err, &netErr) && netErr.Timeout():
		return result{err: fmt.Errorf("%s: no answer within %s", stage, e.opts.Timeout)}
	case errors.As(err, &login):
		return result{err: fmt.Errorf("AUTH LOGIN: %s (challenge %q)", login.reason, e.serverText(login.prompt)), permanent: true}
	case stage == "AUTH" && !errors.As(err, &netErr):
		// The mechanism refused to send the password (no TLS, or a name
		// mismatch).
		return result{err: fmt.Errorf("AUTH: password not sent: %s", e.scrub(err.Error())), permanent: true}
	default:
		return result{err: fmt.Errorf("%s: %s", stage, e.scrub(err.Error()))}
	}
}

// serverText makes the text of an SMTP reply safe for an error: one line,
// short, without the credentials even if the server echoed them.
func (e *Email) serverText(s string) string {
	return truncate(e.scrub(s), maxServerText)
}

// scrub removes the password, and the base64 of AUTH PLAIN and AUTH LOGIN
// that carries it, from text, makes it one line and bounds its length. The
// secrets go before anything is cut, so no part of them survives.
func (e *Email) scrub(s string) string {
	if e.cfg.Password != "" {
		blob := base64.StdEncoding.EncodeToString([]byte("\x00" + e.cfg.Username + "\x00" + e.cfg.Password))
		s = strings.ReplaceAll(s, blob, "<redacted>")
		s = strings.ReplaceAll(s, base64.StdEncoding.EncodeToString([]byte(e.cfg.Password)), "<redacted>")
		s = strings.ReplaceAll(s, e.cfg.Password, "<redacted>")
		s = oneLine(s)
		if p := oneLine(e.cfg.Password); p != "" {
			s = strings.ReplaceAll(s, p, "<redacted>")
		}
	}
	return truncate(oneLine(s), maxErrorText)
}
