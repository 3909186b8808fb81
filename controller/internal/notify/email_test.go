package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/internal/testutil/smtptest"
)

const (
	smtpUser = "alerts@example.test"
	smtpPass = "s3cret-Pa55word-never-shown"
)

var (
	// smtpBlob is the AUTH PLAIN argument carrying the password.
	smtpBlob = base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + smtpPass))
	// smtpPass64 and smtpUser64 are the AUTH LOGIN answers carrying the
	// password and the username.
	smtpPass64 = base64.StdEncoding.EncodeToString([]byte(smtpPass))
	smtpUser64 = base64.StdEncoding.EncodeToString([]byte(smtpUser))
)

// leaksPassword reports whether s holds the password in any form it
// crosses the network in.
func leaksPassword(s string) bool {
	return strings.Contains(s, smtpPass) || strings.Contains(s, smtpBlob) || strings.Contains(s, smtpPass64)
}

// newTestEmail builds an email channel to 127.0.0.1 with test defaults for
// what cfg and opts leave empty; on cleanup it closes the channel and checks
// that the password shows up in no delivery record and no log line.
func newTestEmail(t *testing.T, cfg EmailConfig, opts Options) (*Email, *recorder) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "ops-mail"
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.From == "" {
		cfg.From = "Gatehouse <alerts@example.test>"
	}
	if cfg.To == nil {
		cfg.To = []string{"ops@example.test"}
	}
	rec, logs := newRecorder(), &logBuffer{}
	opts.Recorder = rec
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	if opts.RetryBase == 0 {
		opts.RetryBase = 10 * time.Millisecond
		opts.RetryMax = 50 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	e, err := NewEmail(cfg, opts)
	if err != nil {
		t.Fatalf("NewEmail: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, d := range rec.all() {
			if leaksPassword(d.Error) {
				t.Errorf("delivery record leaks the password: %q", d.Error)
			}
		}
		if s := logs.String(); leaksPassword(s) {
			t.Errorf("log leaks the password:\n%s", s)
		}
	})
	return e, rec
}

// parseEmail parses a received message and decodes its quoted-printable
// body, with LF line ends.
func parseEmail(t *testing.T, data []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing message: %v\n%s", err, data)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("decoding body: %v", err)
	}
	return m.Header, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func decodeSubject(t *testing.T, h mail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decoding subject %q: %v", h.Get("Subject"), err)
	}
	return s
}

// headerNames lists the header names of a raw message in order.
func headerNames(data []byte) []string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	var names []string
	for _, l := range strings.Split(string(head), "\r\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			names = append(names, name)
		}
	}
	return names
}

func assertOutcomes(t *testing.T, rec *recorder, want ...Outcome) []Delivery {
	t.Helper()
	ds := rec.all()
	if len(ds) != len(want) {
		t.Fatalf("deliveries = %+v, want outcomes %v", ds, want)
	}
	for i, d := range ds {
		if d.Outcome != want[i] || d.Attempt != i+1 || d.Channel != "ops-mail" {
			t.Errorf("delivery %d = %+v, want %s attempt %d", i, d, want[i], i+1)
		}
	}
	return ds
}

func assertNoPassword(t *testing.T, srv *smtptest.Server) {
	t.Helper()
	if leaksPassword(string(srv.RawBytes())) {
		t.Errorf("the password crossed the network in the clear")
	}
}

func TestEmailStartTLSWithAuth(t *testing.T) {
	t.Parallel()
	pki := smtptest.NewPKI(t)
	srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, "127.0.0.1"), User: smtpUser, Pass: smtpPass})
	e, rec := newTestEmail(t, EmailConfig{
		Port: srv.Port(), Username: smtpUser, Password: smtpPass, RootCAs: pki.Pool(),
		From: "Gatehouse Alerts <alerts@example.test>",
		To:   []string{"ops@example.test", "Zoë Oncall <oncall+gh@mail.example.test>"},
	}, Options{})
	n := firing("inc-7", Field{Name: "Server", Value: "web-1"}, Field{Name: "Log", Value: "line one\nline two  \n\ttabbed"})
	n.Title = "Disk almost full – /var at 97 %"
	n.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := e.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got, want := srv.Verbs(), "EHLO STARTTLS EHLO(tls) AUTH(tls) MAIL(tls) RCPT(tls) RCPT(tls) DATA(tls) QUIT(tls)"; got != want {
		t.Errorf("commands = %s\nwant       %s", got, want)
	}
	cmds, msgs := srv.Received()
	if cmds[0].Arg != "[127.0.0.1]" {
		t.Errorf("EHLO %q, want the address literal [127.0.0.1]", cmds[0].Arg)
	}
	if len(msgs) != 1 {
		t.Fatalf("messages = %d, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "alerts@example.test" || !slices.Equal(m.To, []string{"ops@example.test", "oncall+gh@mail.example.test"}) || !m.TLS || m.User != smtpUser || m.Auth != "PLAIN" {
		t.Errorf("envelope = from %q to %q tls %v user %q auth %q", m.From, m.To, m.TLS, m.User, m.Auth)
	}
	assertNoPassword(t, srv)

	h, body := parseEmail(t, m.Data)
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "Gatehouse Alerts" || from.Address != "alerts@example.test" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	to, err := mail.ParseAddressList(h.Get("To"))
	if err != nil || len(to) != 2 || to[0].Address != "ops@example.test" || to[1].Name != "Zoë Oncall" || to[1].Address != "oncall+gh@mail.example.test" {
		t.Errorf("To = %q: %+v (%v)", h.Get("To"), to, err)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("non-ASCII Subject not RFC 2047 encoded: %q", h.Get("Subject"))
	}
	if got := decodeSubject(t, h); got != "[Gatehouse] FIRING critical: Disk almost full – /var at 97 %" {
		t.Errorf("Subject = %q", got)
	}
	if d, err := h.Date(); err != nil || !d.Equal(n.Time) {
		t.Errorf("Date = %q (%v), want %v", h.Get("Date"), err, n.Time)
	}
	sum := sha256.Sum256([]byte("inc-7:firing"))
	wantHeaders := map[string]string{
		"Message-Id":                "<" + hex.EncodeToString(sum[:16]) + "@gatehouse>",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
		"X-Gatehouse-Delivery":      "inc-7:firing",
		"X-Gatehouse-Event":         "firing",
	}
	for k, want := range wantHeaders {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantBody := "Disk almost full – /var at 97 %\n\nServer: web-1\nLog: line one\n  line two\n  \ttabbed\n\nTime: 2025-01-02T03:04:05Z\nIncident: inc-7\n"
	if body != wantBody {
		t.Errorf("body =\n%q\nwant\n%q", body, wantBody)
	}
	ds := assertOutcomes(t, rec, OutcomeDelivered)
	if ds[0].Key != "inc-7:firing" || ds[0].Kind != KindFiring {
		t.Errorf("delivery = %+v", ds[0])
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	t.Parallel()
	pki := smtptest.NewPKI(t)
	srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, "localhost"), ImplicitTLS: true, User: smtpUser, Pass: smtpPass})
	e, rec := newTestEmail(t, EmailConfig{
		Host: "localhost", Port: srv.Port(), Security: EmailTLS, Username: smtpUser, Password: smtpPass, RootCAs: pki.Pool(),
	}, Options{})
	if err := SendTest(context.Background(), e); err != nil {
		t.Fatalf("SendTest: %v", err)
	}
	if got, want := srv.Verbs(), "EHLO(tls) AUTH(tls) MAIL(tls) RCPT(tls) DATA(tls) QUIT(tls)"; got != want {
		t.Errorf("commands = %s\nwant       %s", got, want)
	}
	_, msgs := srv.Received()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != smtpUser {
		t.Fatalf("messages = %+v", msgs)
	}
	h, _ := parseEmail(t, msgs[0].Data)
	if got := decodeSubject(t, h); got != "[Gatehouse] TEST info: Test notification from Gatehouse" {
		t.Errorf("Subject = %q", got)
	}
	assertOutcomes(t, rec, OutcomeDelivered)
	assertNoPassword(t, srv)
}

func TestEmailPlainToLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      smtptest.Options
		cfg       EmailConfig
		script    map[string]string
		wantVerbs string
		wantUser  string
	}{
		{name: "relay without auth", wantVerbs: "EHLO MAIL RCPT DATA QUIT"},
		{name: "relay with auth", opts: smtptest.Options{User: smtpUser, Pass: smtpPass, ClearAuth: true},
			cfg: EmailConfig{Username: smtpUser, Password: smtpPass}, wantVerbs: "EHLO AUTH MAIL RCPT DATA QUIT", wantUser: smtpUser},
		{name: "server without EHLO", script: map[string]string{"EHLO": "502 5.5.1 command not implemented"},
			wantVerbs: "EHLO HELO MAIL RCPT DATA QUIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, tc.opts)
			for verb, r := range tc.script {
				srv.Reply(verb, r)
			}
			cfg := tc.cfg
			cfg.Port, cfg.Security = srv.Port(), EmailPlain
			e, rec := newTestEmail(t, cfg, Options{})
			// Lines that are or start with a dot must survive the DATA
			// terminator.
			n := firing("inc-3", Field{Name: ".", Value: "."}, Field{Name: "Path", Value: "/srv\n.\n..hidden"})
			n.Title = "."
			if err := e.Send(context.Background(), n); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := srv.Verbs(); got != tc.wantVerbs {
				t.Errorf("commands = %s, want %s", got, tc.wantVerbs)
			}
			_, msgs := srv.Received()
			if len(msgs) != 1 || msgs[0].TLS || msgs[0].User != tc.wantUser {
				t.Fatalf("messages = %+v", msgs)
			}
			_, body := parseEmail(t, msgs[0].Data)
			if !strings.HasPrefix(body, ".\n\n.: .\nPath: /srv\n  .\n  ..hidden\n\nTime: ") {
				t.Errorf("body = %q", body)
			}
			assertOutcomes(t, rec, OutcomeDelivered)
		})
	}
}

func TestEmailServerReplies(t *testing.T) {
	t.Parallel()
	long := "550 5.7.1 \x1b[31mno " + strings.Repeat("very long reason ", 200)
	tests := []struct {
		name      string
		script    [][2]string // verb, reply
		attempts  int
		outcomes  []Outcome
		wantErr   string // in the first delivery's error
		wantVerbs string // of the first session
		messages  int
	}{
		{name: "451 on RCPT is retried", script: [][2]string{{"RCPT", "451 4.3.0 mailbox busy"}},
			outcomes: []Outcome{OutcomeRetrying, OutcomeDelivered}, messages: 1,
			wantErr: "RCPT TO ops@example.test: server answered 451 4.3.0 mailbox busy", wantVerbs: "EHLO MAIL RCPT QUIT"},
		{name: "421 greeting is retried", script: [][2]string{{"CONNECT", "421 4.3.2 too busy, try later"}},
			outcomes: []Outcome{OutcomeRetrying, OutcomeDelivered}, messages: 1,
			wantErr: "greeting: server answered 421 4.3.2 too busy, try later", wantVerbs: ""},
		{name: "452 after the message is retried", script: [][2]string{{".", "452 4.3.1 insufficient storage"}},
			outcomes: []Outcome{OutcomeRetrying, OutcomeDelivered}, messages: 1,
			wantErr: "end of message: server answered 452", wantVerbs: "EHLO MAIL RCPT DATA QUIT"},
		{name: "550 on MAIL is final", script: [][2]string{{"MAIL", "550 5.7.1 sender rejected"}},
			outcomes: []Outcome{OutcomeFailed},
			wantErr:  "MAIL FROM: server answered 550 5.7.1 sender rejected", wantVerbs: "EHLO MAIL QUIT"},
		{name: "554 after the message is final", script: [][2]string{{".", "554 5.7.1 looks like spam"}},
			outcomes: []Outcome{OutcomeFailed},
			wantErr:  "end of message: server answered 554 5.7.1 looks like spam", wantVerbs: "EHLO MAIL RCPT DATA QUIT"},
		{name: "4xx attempts are bounded", script: [][2]string{{"RCPT", "450 4.2.0 a"}, {"RCPT", "450 4.2.0 b"}, {"RCPT", "450 4.2.0 c"}},
			attempts: 3, outcomes: []Outcome{OutcomeRetrying, OutcomeRetrying, OutcomeFailed},
			wantErr: "450 4.2.0 a", wantVerbs: "EHLO MAIL RCPT QUIT"},
		{name: "long hostile reply is cut and cleaned", script: [][2]string{{"MAIL", long}},
			outcomes: []Outcome{OutcomeFailed}, wantErr: "MAIL FROM: server answered 550 5.7.1 \uFFFD[31mno very long reason", wantVerbs: "EHLO MAIL QUIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{})
			for _, s := range tc.script {
				srv.Reply(s[0], s[1])
			}
			e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Security: EmailPlain}, Options{MaxAttempts: tc.attempts})
			err := e.Send(context.Background(), firing("inc-4"))
			final := tc.outcomes[len(tc.outcomes)-1]
			if (err == nil) != (final == OutcomeDelivered) {
				t.Fatalf("Send = %v, want final outcome %s", err, final)
			}
			ds := assertOutcomes(t, rec, tc.outcomes...)
			if !strings.Contains(ds[0].Error, tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", ds[0].Error, tc.wantErr)
			}
			if n := len([]rune(ds[0].Error)); n > maxErrorText || strings.ContainsAny(ds[0].Error, "\x1b\r\n") {
				t.Errorf("error of %d runes is too long or has control characters: %q", n, ds[0].Error)
			}
			if got := srv.SessionCount(); got != len(tc.outcomes) {
				t.Errorf("connections = %d, want one per attempt (%d)", got, len(tc.outcomes))
			}
			verbs := srv.Verbs()
			if first, _, _ := strings.Cut(verbs+" EHLO", " EHLO"); tc.wantVerbs != "" && first != tc.wantVerbs {
				t.Errorf("first session commands = %s, want %s (all: %s)", first, tc.wantVerbs, verbs)
			}
			if _, msgs := srv.Received(); len(msgs) != tc.messages {
				t.Errorf("messages = %d, want %d", len(msgs), tc.messages)
			}
		})
	}
}

func TestEmailAuthRefused(t *testing.T) {
	t.Parallel()
	echo := "535 5.7.8 password " + smtpPass + " rejected, blob " + smtpBlob + " or " + smtpPass64
	tests := []struct {
		name        string
		auth        []string // offered by the server
		pass        string   // the channel's password; the server accepts smtpPass
		script      string   // AUTH reply
		wantAnswers []string // to AUTH LOGIN challenges
	}{
		{name: "plain wrong password", pass: smtpPass + "-old"},
		{name: "plain server echoes the password", pass: smtpPass, script: echo},
		{name: "login wrong password", auth: []string{"LOGIN"}, pass: smtpPass + "-old", wantAnswers: []string{smtpUser, smtpPass + "-old"}},
		{name: "login server echoes the password", auth: []string{"LOGIN"}, pass: smtpPass, script: echo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pki := smtptest.NewPKI(t)
			srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, "127.0.0.1"), User: smtpUser, Pass: smtpPass, Auth: tc.auth})
			if tc.script != "" {
				srv.Reply("AUTH", tc.script)
			}
			e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Username: smtpUser, Password: tc.pass, RootCAs: pki.Pool()}, Options{})
			err := e.Send(context.Background(), firing("inc-5"))
			if err == nil || !strings.Contains(err.Error(), "the server refused the username or password (535 5.7.8") {
				t.Fatalf("Send = %v, want the refused-credentials error", err)
			}
			if leaksPassword(err.Error()) || strings.Contains(err.Error(), tc.pass) {
				t.Errorf("error repeats the password: %q", err)
			}
			assertOutcomes(t, rec, OutcomeFailed)
			if got, want := srv.Verbs(), "EHLO STARTTLS EHLO(tls) AUTH(tls) *(tls) QUIT(tls)"; got != want {
				t.Errorf("commands = %s, want %s", got, want)
			}
			if got := srv.AuthAnswers(); !slices.Equal(got, tc.wantAnswers) {
				t.Errorf("answers to AUTH LOGIN = %q, want %q", got, tc.wantAnswers)
			}
		})
	}
}

func TestEmailRequiresSTARTTLS(t *testing.T) {
	t.Parallel()
	pki := smtptest.NewPKI(t)
	// A server (or a man in the middle) that strips STARTTLS and would take
	// the password in the clear.
	srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, "127.0.0.1"), NoSTARTTLS: true, User: smtpUser, Pass: smtpPass, ClearAuth: true})
	e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Username: smtpUser, Password: smtpPass, RootCAs: pki.Pool()}, Options{})
	err := e.Send(context.Background(), firing("inc-6"))
	if err == nil || !strings.Contains(err.Error(), "the server does not offer STARTTLS") {
		t.Fatalf("Send = %v, want the missing STARTTLS error", err)
	}
	assertOutcomes(t, rec, OutcomeFailed)
	if got := srv.Verbs(); got != "EHLO QUIT" {
		t.Errorf("commands = %s, want EHLO QUIT", got)
	}
	assertNoPassword(t, srv)
}

// startTLSServer starts a test SMTP server with STARTTLS and the test
// credentials, shaped further by opts, and a channel to it.
func startTLSServer(t *testing.T, opts smtptest.Options, cfg EmailConfig) (*smtptest.Server, *Email, *recorder) {
	t.Helper()
	pki := smtptest.NewPKI(t)
	opts.TLS, opts.User, opts.Pass = pki.ServerTLS(t, "127.0.0.1"), smtpUser, smtpPass
	srv := smtptest.New(t, opts)
	cfg.Port, cfg.Username, cfg.RootCAs = srv.Port(), smtpUser, pki.Pool()
	if cfg.Password == "" {
		cfg.Password = smtpPass
	}
	e, rec := newTestEmail(t, cfg, Options{})
	return srv, e, rec
}

// authArg is the argument of the first AUTH command received.
func authArg(srv *smtptest.Server) string {
	cmds, _ := srv.Received()
	for _, c := range cmds {
		if c.Verb == "AUTH" {
			return c.Arg
		}
	}
	return ""
}

func TestEmailAuthMechanisms(t *testing.T) {
	t.Parallel()
	login := []string{smtpUser, smtpPass}
	tests := []struct {
		name        string
		opts        smtptest.Options
		wantMech    string   // used, as the server recorded it
		wantArg     string   // of the AUTH command; the password never stands in it for LOGIN
		wantAnswers []string // to AUTH LOGIN challenges
	}{
		{name: "login only", opts: smtptest.Options{Auth: []string{"LOGIN"}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "login advertised in lower case", opts: smtptest.Options{Auth: []string{"login"}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "login among unsupported mechanisms", opts: smtptest.Options{Auth: []string{"CRAM-MD5", "XOAUTH2", "LOGIN", "GSSAPI"}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "login prompts in other case", opts: smtptest.Options{Auth: []string{"LOGIN"}, LoginPrompts: []string{"USERNAME:", "password:"}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "login prompts in other words are answered in order", opts: smtptest.Options{Auth: []string{"LOGIN"}, LoginPrompts: []string{"Benutzername", "Kennwort:"}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "login with empty prompts", opts: smtptest.Options{Auth: []string{"LOGIN"}, LoginPrompts: []string{"", ""}},
			wantMech: "LOGIN", wantArg: "LOGIN", wantAnswers: login},
		{name: "both offered, login first: plain is used", opts: smtptest.Options{Auth: []string{"LOGIN", "PLAIN"}},
			wantMech: "PLAIN", wantArg: "PLAIN " + smtpBlob},
		{name: "both offered, plain first: plain is used", opts: smtptest.Options{Auth: []string{"PLAIN", "LOGIN", "CRAM-MD5"}},
			wantMech: "PLAIN", wantArg: "PLAIN " + smtpBlob},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, e, rec := startTLSServer(t, tc.opts, EmailConfig{})
			if err := e.Send(context.Background(), firing("inc-20")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			assertOutcomes(t, rec, OutcomeDelivered)
			if got, want := srv.Verbs(), "EHLO STARTTLS EHLO(tls) AUTH(tls) MAIL(tls) RCPT(tls) DATA(tls) QUIT(tls)"; got != want {
				t.Errorf("commands = %s\nwant       %s", got, want)
			}
			if got := authArg(srv); got != tc.wantArg {
				t.Errorf("AUTH %q, want AUTH %q", got, tc.wantArg)
			}
			if got := srv.AuthAnswers(); !slices.Equal(got, tc.wantAnswers) {
				t.Errorf("answers to AUTH LOGIN = %q, want %q", got, tc.wantAnswers)
			}
			_, msgs := srv.Received()
			if len(msgs) != 1 || msgs[0].Auth != tc.wantMech || msgs[0].User != smtpUser || !msgs[0].TLS {
				t.Fatalf("messages = %+v, want one over TLS signed in with %s as %s", msgs, tc.wantMech, smtpUser)
			}
			assertNoPassword(t, srv)
		})
	}
}

func TestEmailLoginImplicitTLSAndLoopbackRelay(t *testing.T) {
	t.Parallel()
	pki := smtptest.NewPKI(t)
	tests := []struct {
		name    string
		opts    smtptest.Options
		cfg     EmailConfig
		wantTLS bool
	}{
		{name: "implicit tls", opts: smtptest.Options{TLS: pki.ServerTLS(t, "localhost"), ImplicitTLS: true},
			cfg: EmailConfig{Host: "localhost", Security: EmailTLS, RootCAs: pki.Pool()}, wantTLS: true},
		// The one case without TLS, exactly as AUTH PLAIN allows it.
		{name: "loopback relay without tls", opts: smtptest.Options{ClearAuth: true},
			cfg: EmailConfig{Host: "127.0.0.1", Security: EmailPlain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.User, opts.Pass, opts.Auth = smtpUser, smtpPass, []string{"LOGIN"}
			srv := smtptest.New(t, opts)
			cfg := tc.cfg
			cfg.Port, cfg.Username, cfg.Password = srv.Port(), smtpUser, smtpPass
			e, rec := newTestEmail(t, cfg, Options{})
			if err := e.Send(context.Background(), firing("inc-21")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			assertOutcomes(t, rec, OutcomeDelivered)
			_, msgs := srv.Received()
			if len(msgs) != 1 || msgs[0].Auth != "LOGIN" || msgs[0].User != smtpUser || msgs[0].TLS != tc.wantTLS {
				t.Fatalf("messages = %+v", msgs)
			}
			if got := srv.AuthAnswers(); !slices.Equal(got, []string{smtpUser, smtpPass}) {
				t.Errorf("answers to AUTH LOGIN = %q", got)
			}
		})
	}
}

func TestEmailNoUsableAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		auth    []string
		wantErr string
	}{
		{name: "other mechanisms only", auth: []string{"CRAM-MD5", "XOAUTH2"},
			wantErr: `the server offers neither AUTH PLAIN nor AUTH LOGIN (it offers "CRAM-MD5 XOAUTH2")`},
		{name: "no AUTH at all", auth: []string{},
			wantErr: "the server offers no authentication (no AUTH in its EHLO reply)"},
		{name: "hostile list is cleaned and cut", auth: []string{"NTLM", "\x1b[2J" + strings.Repeat("X", 200)},
			wantErr: "it offers \"NTLM \uFFFD[2J" + strings.Repeat("X", 54) + "…\")"}, // 64 runes
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, e, rec := startTLSServer(t, smtptest.Options{Auth: tc.auth}, EmailConfig{})
			err := e.Send(context.Background(), firing("inc-22"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\x1b\r\n") {
				t.Errorf("error has control characters: %q", err)
			}
			// Permanent: one attempt, one connection.
			assertOutcomes(t, rec, OutcomeFailed)
			if got := srv.SessionCount(); got != 1 {
				t.Errorf("connections = %d, want 1", got)
			}
			if got, want := srv.Verbs(), "EHLO STARTTLS EHLO(tls) QUIT(tls)"; got != want {
				t.Errorf("commands = %s, want %s", got, want)
			}
			if got := srv.AuthAnswers(); len(got) != 0 {
				t.Errorf("answers to AUTH LOGIN = %q, want none", got)
			}
		})
	}
}

// TestEmailLoginNeverInClear: a server (or a man in the middle) that offers
// AUTH LOGIN without TLS and would take the credentials gets none of them
// when STARTTLS is not offered or is refused.
func TestEmailLoginNeverInClear(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		noTLS     bool   // STARTTLS not offered
		starttls  string // scripted reply to STARTTLS
		outcomes  []Outcome
		wantErr   string
		wantVerbs string
	}{
		{name: "STARTTLS not offered", noTLS: true, outcomes: []Outcome{OutcomeFailed},
			wantErr: "the server does not offer STARTTLS", wantVerbs: "EHLO QUIT"},
		{name: "STARTTLS refused for now", starttls: "454 4.7.0 TLS not available due to temporary reason",
			outcomes: []Outcome{OutcomeRetrying, OutcomeFailed},
			wantErr:  "STARTTLS: server answered 454 4.7.0", wantVerbs: "EHLO STARTTLS QUIT EHLO STARTTLS QUIT"},
		{name: "STARTTLS refused for good", starttls: "554 5.7.3 no TLS here", outcomes: []Outcome{OutcomeFailed},
			wantErr: "STARTTLS: server answered 554 5.7.3", wantVerbs: "EHLO STARTTLS QUIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pki := smtptest.NewPKI(t)
			srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, "127.0.0.1"), NoSTARTTLS: tc.noTLS,
				User: smtpUser, Pass: smtpPass, Auth: []string{"LOGIN"}, ClearAuth: true})
			if tc.starttls != "" {
				srv.Reply("STARTTLS", tc.starttls, tc.starttls)
			}
			e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Username: smtpUser, Password: smtpPass, RootCAs: pki.Pool()},
				Options{MaxAttempts: len(tc.outcomes)})
			err := e.Send(context.Background(), firing("inc-23"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			assertOutcomes(t, rec, tc.outcomes...)
			if got := srv.Verbs(); got != tc.wantVerbs {
				t.Errorf("commands = %s, want %s", got, tc.wantVerbs)
			}
			raw := string(srv.RawBytes())
			if leaksPassword(raw) || strings.Contains(raw, smtpUser64) || len(srv.AuthAnswers()) != 0 {
				t.Errorf("credentials crossed the network in the clear:\n%s", raw)
			}
		})
	}
}

// TestLoginAuthSendsOnlyWherePlainAuthWould holds AUTH LOGIN to the rule of
// smtp.PlainAuth: TLS, or one of the exact loopback names, and the host it
// was made for.
func TestLoginAuthSendsOnlyWherePlainAuthWould(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host    string // configured
		server  smtp.ServerInfo
		wantErr string
	}{
		{host: "mail.example.test", server: smtp.ServerInfo{Name: "mail.example.test", TLS: true}},
		{host: "127.0.0.1", server: smtp.ServerInfo{Name: "127.0.0.1"}},
		{host: "::1", server: smtp.ServerInfo{Name: "::1"}},
		{host: "localhost", server: smtp.ServerInfo{Name: "localhost"}},
		{host: "mail.example.test", server: smtp.ServerInfo{Name: "mail.example.test"}, wantErr: "unencrypted connection"},
		{host: "127.0.0.2", server: smtp.ServerInfo{Name: "127.0.0.2"}, wantErr: "unencrypted connection"},
		{host: "LOCALHOST", server: smtp.ServerInfo{Name: "LOCALHOST"}, wantErr: "unencrypted connection"},
		{host: "::ffff:127.0.0.1", server: smtp.ServerInfo{Name: "::ffff:127.0.0.1"}, wantErr: "unencrypted connection"},
		{host: "mail.example.test", server: smtp.ServerInfo{Name: "other.example.test", TLS: true}, wantErr: "wrong host name"},
		{host: "mail.example.test", server: smtp.ServerInfo{Name: "localhost"}, wantErr: "wrong host name"},
	}
	for _, tc := range tests {
		srv := tc.server
		srv.Auth = []string{"LOGIN", "PLAIN"}
		a := &loginAuth{username: smtpUser, password: smtpPass, host: tc.host}
		mech, resp, err := a.Start(&srv)
		_, _, plainErr := smtp.PlainAuth("", smtpUser, smtpPass, tc.host).Start(&srv)
		switch {
		case tc.wantErr == "" && (err != nil || mech != "LOGIN" || resp != nil):
			t.Errorf("%s on %+v: Start = %q %q %v, want LOGIN without an initial response", tc.host, tc.server, mech, resp, err)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("%s on %+v: Start error %v, want %q", tc.host, tc.server, err, tc.wantErr)
		}
		if (err == nil) != (plainErr == nil) {
			t.Errorf("%s on %+v: LOGIN error %v, PLAIN error %v: the rules differ", tc.host, tc.server, err, plainErr)
		}
	}
}

func TestEmailLoginChallenges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		prompts     []string
		wantErr     string
		wantAnswers []string
	}{
		{name: "third challenge", prompts: []string{"Username:", "Password:", "Code:"},
			wantErr:     `AUTH LOGIN: the server sent another challenge after the password; sign-in abandoned (challenge "Code:")`,
			wantAnswers: []string{smtpUser, smtpPass}},
		{name: "third challenge repeating the password", prompts: []string{"Username:", "Password:", "Was it\r\n" + smtpPass + "?"},
			wantErr:     "sign-in abandoned (challenge \"Was it\uFFFD <redacted>?\")",
			wantAnswers: []string{smtpUser, smtpPass}},
		{name: "third and fourth challenge", prompts: []string{"a", "b", "c", "d"},
			wantErr:     `sign-in abandoned (challenge "c")`,
			wantAnswers: []string{smtpUser, smtpPass}},
		{name: "password asked first", prompts: []string{"Password:", "Username:"},
			wantErr: "AUTH LOGIN: the server asked for the password before the username; nothing was sent"},
		{name: "username asked twice", prompts: []string{"Username:", "username:"},
			wantErr:     "AUTH LOGIN: the server asked for the username twice; the password was not sent",
			wantAnswers: []string{smtpUser}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, e, rec := startTLSServer(t, smtptest.Options{Auth: []string{"LOGIN"}, LoginPrompts: tc.prompts}, EmailConfig{})
			err := e.Send(context.Background(), firing("inc-24"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			if leaksPassword(err.Error()) {
				t.Errorf("error repeats the password: %q", err)
			}
			// Permanent: a retry would send the password again.
			assertOutcomes(t, rec, OutcomeFailed)
			if got, want := srv.Verbs(), "EHLO STARTTLS EHLO(tls) AUTH(tls) *(tls) QUIT(tls)"; got != want {
				t.Errorf("commands = %s, want %s", got, want)
			}
			answers := srv.AuthAnswers()
			if !slices.Equal(answers, tc.wantAnswers) {
				t.Errorf("answers to AUTH LOGIN = %q, want %q", answers, tc.wantAnswers)
			}
			if n := strings.Count(strings.Join(answers, "\n"), smtpPass); n > 1 {
				t.Errorf("the password was sent %d times", n)
			}
			if _, msgs := srv.Received(); len(msgs) != 0 {
				t.Errorf("messages = %+v, want none", msgs)
			}
		})
	}
}

// initialLoginAuth is AUTH LOGIN with the username as initial response
// (AUTH LOGIN <base64 username>), the form some clients use; it checks that
// the test server skips the username prompt then.
type initialLoginAuth struct{ loginAuth }

func (a *initialLoginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	mech, _, err := a.loginAuth.Start(server)
	a.answered = 1 // the username is given; a "Username:" prompt now fails
	return mech, []byte(a.username), err
}

func TestSMTPTestLoginInitialResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pass    string
		wantErr string
	}{
		{name: "accepted", pass: smtpPass},
		{name: "wrong password", pass: smtpPass + "-old", wantErr: "5.7.8 authentication credentials invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{User: smtpUser, Pass: smtpPass, Auth: []string{"LOGIN"}, ClearAuth: true})
			c, err := smtp.Dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port())))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Auth(&initialLoginAuth{loginAuth{username: smtpUser, password: tc.pass, host: "127.0.0.1"}})
			if tc.wantErr != "" {
				var reply *textproto.Error
				if !errors.As(err, &reply) || reply.Code != 535 || reply.Msg != tc.wantErr {
					t.Fatalf("Auth = %v, want 535 %s", err, tc.wantErr)
				}
				if got := srv.Verbs(); got != "EHLO AUTH * QUIT" {
					t.Errorf("commands = %s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Auth: %v", err)
			}
			if err := c.Mail("alerts@example.test"); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("ops@example.test"); err != nil {
				t.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(w, "Subject: x\r\n\r\nx\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			if got, want := authArg(srv), "LOGIN "+smtpUser64; got != want {
				t.Errorf("AUTH %q, want %q", got, want)
			}
			if got := srv.AuthAnswers(); !slices.Equal(got, []string{smtpPass}) {
				t.Errorf("answers to AUTH LOGIN = %q, want the password only", got)
			}
			if _, msgs := srv.Received(); len(msgs) != 1 || msgs[0].Auth != "LOGIN" || msgs[0].User != smtpUser {
				t.Errorf("messages = %+v", msgs)
			}
		})
	}
}

func TestEmailUntrustedCertificate(t *testing.T) {
	t.Parallel()
	pki, other := smtptest.NewPKI(t), smtptest.NewPKI(t)
	tests := []struct {
		name      string
		implicit  bool
		host      string        // "" for 127.0.0.1
		names     []string      // in the server certificate
		roots     *smtptest.PKI // trusted by the client
		wantErr   string
		wantVerbs string
	}{
		{name: "starttls unknown authority", names: []string{"127.0.0.1"}, roots: other,
			wantErr: "STARTTLS: the server certificate is not trusted: x509: certificate signed by unknown authority", wantVerbs: "EHLO STARTTLS"},
		{name: "starttls wrong name", host: "localhost", names: []string{"mail.example.test"}, roots: pki,
			wantErr: "STARTTLS: the server certificate is not trusted: x509: certificate is valid for mail.example.test, not localhost", wantVerbs: "EHLO STARTTLS"},
		{name: "tls certificate without the IP", implicit: true, names: []string{"localhost"}, roots: pki,
			wantErr: "TLS handshake: the server certificate is not trusted: x509: cannot validate certificate for 127.0.0.1"},
		{name: "tls unknown authority", implicit: true, names: []string{"127.0.0.1"}, roots: other,
			wantErr: "TLS handshake: the server certificate is not trusted: x509: certificate signed by unknown authority"},
		{name: "system roots do not trust a private CA", implicit: true, names: []string{"127.0.0.1"},
			wantErr: "TLS handshake: the server certificate is not trusted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.Options{TLS: pki.ServerTLS(t, tc.names...), ImplicitTLS: tc.implicit, User: smtpUser, Pass: smtpPass})
			cfg := EmailConfig{Host: tc.host, Port: srv.Port(), Username: smtpUser, Password: smtpPass}
			if tc.roots != nil {
				cfg.RootCAs = tc.roots.Pool()
			}
			if tc.implicit {
				cfg.Security = EmailTLS
			}
			e, rec := newTestEmail(t, cfg, Options{})
			err := e.Send(context.Background(), firing("inc-8"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send = %v, want %q", err, tc.wantErr)
			}
			assertOutcomes(t, rec, OutcomeFailed)
			if got := srv.Verbs(); got != tc.wantVerbs {
				t.Errorf("commands = %q, want %q", got, tc.wantVerbs)
			}
			assertNoPassword(t, srv)
		})
	}
}

func TestEmailTLSToPlainPort(t *testing.T) {
	t.Parallel()
	// A submission port that greets in plain text before any TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "220 mx.test ESMTP ready\r\n")
		_, _ = io.Copy(io.Discard, c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	e, rec := newTestEmail(t, EmailConfig{Port: ln.Addr().(*net.TCPAddr).Port, Security: EmailTLS}, Options{})
	err = e.Send(context.Background(), firing("inc-9"))
	if err == nil || !strings.Contains(err.Error(), "the server did not answer with TLS") {
		t.Fatalf("Send = %v, want the not-TLS error", err)
	}
	assertOutcomes(t, rec, OutcomeFailed)
}

func TestEmailTimeout(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{Silent: true})
	e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Security: EmailPlain}, Options{Timeout: 150 * time.Millisecond, MaxAttempts: 2})
	err := e.Send(context.Background(), firing("inc-10"))
	if err == nil || !strings.Contains(err.Error(), "greeting: no answer within 150ms") {
		t.Fatalf("Send = %v, want the timeout error", err)
	}
	ds := assertOutcomes(t, rec, OutcomeRetrying, OutcomeFailed)
	if ds[0].RetryIn <= 0 {
		t.Errorf("retrying delivery without a wait: %+v", ds[0])
	}
	if got := srv.SessionCount(); got != 2 {
		t.Errorf("connections = %d, want 2", got)
	}
}

func TestEmailHeaderInjection(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t, smtptest.Options{})
	e, rec := newTestEmail(t, EmailConfig{Port: srv.Port(), Security: EmailPlain}, Options{})
	n := firing("inc-11",
		Field{Name: "Server\r\nBcc: name@attacker.test", Value: "web-1\r\nBcc: value@attacker.test\r\n\r\nforged body"},
		Field{Name: "Note", Value: "\nBcc: lf@attacker.test\n"})
	n.Title = "Disk full\r\nBcc: title@attacker.test\r\nX-Evil: 1"
	if err := e.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	assertOutcomes(t, rec, OutcomeDelivered)
	_, msgs := srv.Received()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"ops@example.test"}) {
		t.Fatalf("messages = %+v, want one to ops@example.test only", msgs)
	}
	want := []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
		"Content-Transfer-Encoding", "Auto-Submitted", "X-Gatehouse-Delivery", "X-Gatehouse-Event"}
	if got := headerNames(msgs[0].Data); !slices.Equal(got, want) {
		t.Errorf("headers = %q, want %q", got, want)
	}
	h, body := parseEmail(t, msgs[0].Data)
	if h.Get("Bcc") != "" || h.Get("X-Evil") != "" {
		t.Errorf("injected header present: %v", h)
	}
	subject := decodeSubject(t, h)
	if strings.ContainsAny(subject, "\r\n") || !strings.HasPrefix(subject, "[Gatehouse] FIRING critical: Disk full") {
		t.Errorf("Subject = %q", subject)
	}
	// In the body the text is shown, harmlessly, on continuation lines.
	if !strings.Contains(body, "Server\uFFFD Bcc: name@attacker.test: web-1\uFFFD\n  Bcc: value@attacker.test\uFFFD\n") {
		t.Errorf("body = %q", body)
	}
}

func TestRenderEmail(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.FixedZone("CEST", 2*3600))
	n := Notification{Key: "inc-1:resolved", IncidentID: "inc-1", Kind: KindResolved, Severity: SeverityWarning,
		Title: "Certificate expires soon", Fields: []Field{{Name: "Domain", Value: "example.com"}, {Name: "Empty", Value: ""}}}
	subject, msg := RenderEmail(n, "alerts@example.test", []string{"a@example.test", "B <b@example.test>"}, now)
	sum := sha256.Sum256([]byte(n.Key))
	if subject != "[Gatehouse] RESOLVED warning: Certificate expires soon" {
		t.Errorf("subject = %q", subject)
	}
	want := "From: <alerts@example.test>\r\n" +
		"To: <a@example.test>, \"B\" <b@example.test>\r\n" +
		"Subject: [Gatehouse] RESOLVED warning: Certificate expires soon\r\n" +
		"Date: Sat, 07 Jun 2025 06:09:10 +0000\r\n" +
		"Message-ID: <" + hex.EncodeToString(sum[:16]) + "@gatehouse>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"Auto-Submitted: auto-generated\r\n" +
		"X-Gatehouse-Delivery: inc-1:resolved\r\n" +
		"X-Gatehouse-Event: resolved\r\n" +
		"\r\n" +
		"Certificate expires soon\r\n" +
		"\r\n" +
		"Domain: example.com\r\n" +
		"Empty:\r\n" +
		"\r\n" +
		"Time: 2025-06-07T06:09:10Z\r\n" +
		"Incident: inc-1\r\n"
	if string(msg) != want {
		t.Errorf("message =\n%s\nwant\n%s", msg, want)
	}

	for kind, label := range map[Kind]string{KindFiring: "FIRING", KindRepeat: "REMINDER", KindTest: "TEST"} {
		n.Kind = kind
		if s, _ := RenderEmail(n, "a@example.test", []string{"b@example.test"}, now); s != "[Gatehouse] "+label+" warning: Certificate expires soon" {
			t.Errorf("%s: subject = %q", kind, s)
		}
	}
}

func TestRenderEmailLongTextStaysWithinLineLimits(t *testing.T) {
	t.Parallel()
	var to []string
	for _, u := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		to = append(to, "Ünïcödé Recipient Name With Many Words "+u+" <"+strings.Repeat(u, 60)+"@"+strings.Repeat("x", 60)+".example.test>")
	}
	n := firing("inc-12", Field{Name: strings.Repeat("N", 100), Value: strings.Repeat("Ω", 2000)})
	n.Title = strings.Repeat("Диск ", 100)
	subject, msg := RenderEmail(n, "Gätehouse <alerts@example.test>", to, time.Now())
	for i, line := range strings.Split(string(msg), "\r\n") {
		// Lines fold at spaces; only one unbreakable token (an address)
		// may stand longer on its own, and never near 998 bytes.
		single := strings.HasPrefix(line, " ") && !strings.Contains(line[1:], " ")
		if len(line) > 78 && (!single || len(line) > 300) {
			t.Errorf("line %d has %d bytes: %.80q", i, len(line), line)
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %.80q", i, line)
		}
	}
	h, body := parseEmail(t, msg)
	if got := decodeSubject(t, h); got != subject || !strings.HasSuffix(got, "Диск Диск …") {
		t.Errorf("decoded subject = %q, want %q", got, subject)
	}
	addrs, err := mail.ParseAddressList(h.Get("To"))
	if err != nil || len(addrs) != 10 || addrs[9].Name != "Ünïcödé Recipient Name With Many Words j" {
		t.Errorf("To = %+v (%v)", addrs, err)
	}
	if !strings.Contains(body, strings.Repeat("N", MaxFieldNameRunes-1)+"…: "+strings.Repeat("Ω", MaxFieldRunes-1)+"…\n") {
		t.Errorf("long field not cut to the limits: %.200q", body)
	}
}

func TestRenderEmailHostileMetadata(t *testing.T) {
	t.Parallel()
	// RenderEmail is exported: even unvalidated input must not add headers.
	n := Notification{Key: "k\r\nBcc: key@attacker.test", Kind: "firing\r\nBcc: kind@attacker.test",
		Severity: "x\nBcc: sev@attacker.test", Title: "t"}
	_, msg := RenderEmail(n, "a@example.test\r\nBcc: from@attacker.test", []string{"b@example.test\nBcc: to@attacker.test"}, time.Now())
	for _, name := range headerNames(msg) {
		if strings.EqualFold(name, "Bcc") {
			t.Errorf("injected Bcc header in:\n%s", msg)
		}
	}
	if bytes.Contains(msg, []byte("\r\nBcc")) || regexp.MustCompile(`[^\r]\n`).Match(msg) {
		t.Errorf("message has an injected line or a bare LF:\n%q", msg)
	}
}

func TestEmailRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	if _, err := NewEmail(EmailConfig{Name: "x", Host: "smtp://mail.example.test", Port: 587, From: "a@example.test", To: []string{"b@example.test"}}, Options{}); err == nil || !strings.Contains(err.Error(), "email channel: host:") {
		t.Errorf("NewEmail with a bad host = %v", err)
	}
	srv := smtptest.New(t, smtptest.Options{})
	e, _ := newTestEmail(t, EmailConfig{Port: srv.Port(), Security: EmailPlain}, Options{})
	bad := firing("inc-13")
	bad.Title = ""
	if err := e.Enqueue(bad); err == nil || !strings.Contains(err.Error(), "title:") {
		t.Errorf("Enqueue of an invalid notification = %v", err)
	}
	if err := e.Enqueue(firing("inc-13")); err != nil {
		t.Fatal(err)
	}
	if err := e.Enqueue(firing("inc-13")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second Enqueue = %v, want ErrDuplicate", err)
	}
	if e.Name() != "ops-mail" || e.Dropped() != 0 {
		t.Errorf("Name = %q, Dropped = %d", e.Name(), e.Dropped())
	}
}

func TestEmailConfigValidate(t *testing.T) {
	t.Parallel()
	ok := EmailConfig{Name: "ops mail", Host: "smtp.example.com", Port: 587, Username: "alerts", Password: smtpPass,
		From: "Gatehouse <alerts@example.com>", To: []string{"ops@example.com"}}
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = string(rune('a'+i)) + "@example.com"
	}
	tests := []struct {
		name    string
		edit    func(*EmailConfig)
		wantErr string // "" for valid
	}{
		{name: "valid", edit: func(*EmailConfig) {}},
		{name: "valid tls", edit: func(c *EmailConfig) { c.Security, c.Port = EmailTLS, 465 }},
		{name: "valid explicit starttls", edit: func(c *EmailConfig) { c.Security = EmailSTARTTLS }},
		{name: "valid IPv6 host", edit: func(c *EmailConfig) { c.Host = "2001:db8::25" }},
		{name: "valid without auth", edit: func(c *EmailConfig) { c.Username, c.Password = "", "" }},
		{name: "valid ten recipients", edit: func(c *EmailConfig) { c.To = ten }},
		{name: "valid plain relay", edit: func(c *EmailConfig) {
			c.Security, c.Host, c.Port, c.Username, c.Password = EmailPlain, "127.0.0.53", 25, "", ""
		}},
		{name: "valid plain relay with auth", edit: func(c *EmailConfig) { c.Security, c.Host, c.Port = EmailPlain, "::1", 25 }},
		{name: "valid plain localhost", edit: func(c *EmailConfig) { c.Security, c.Host = EmailPlain, "localhost" }},
		{name: "valid unicode display name", edit: func(c *EmailConfig) { c.From = "Zoë Gatehouse <alerts@example.com>" }},
		{name: "valid odd local part", edit: func(c *EmailConfig) { c.To = []string{"o'brien+alerts/x=y@example.com"} }},

		{name: "empty name", edit: func(c *EmailConfig) { c.Name = "" }, wantErr: "name:"},
		{name: "name with markup", edit: func(c *EmailConfig) { c.Name = "<b>x</b>" }, wantErr: "name:"},
		{name: "name too long", edit: func(c *EmailConfig) { c.Name = strings.Repeat("n", 65) }, wantErr: "name:"},

		{name: "empty host", edit: func(c *EmailConfig) { c.Host = "" }, wantErr: "host: required"},
		{name: "host with scheme", edit: func(c *EmailConfig) { c.Host = "smtp://smtp.example.com" }, wantErr: "host: give the server name only"},
		{name: "host with port", edit: func(c *EmailConfig) { c.Host = "smtp.example.com:587" }, wantErr: "host: give the port in the port field"},
		{name: "IPv6 host with port", edit: func(c *EmailConfig) { c.Host = "[::1]:25" }, wantErr: "host: give the port in the port field"},
		{name: "bracketed IPv6", edit: func(c *EmailConfig) { c.Host = "[::1]" }, wantErr: "host:"},
		{name: "host with space", edit: func(c *EmailConfig) { c.Host = "smtp example.com" }, wantErr: "host:"},
		{name: "host with CRLF", edit: func(c *EmailConfig) { c.Host = "smtp.example.com\r\nRCPT TO:<x@y>" }, wantErr: "host:"},
		{name: "host with NUL", edit: func(c *EmailConfig) { c.Host = "smtp\x00.example.com" }, wantErr: "host:"},
		{name: "host with zone", edit: func(c *EmailConfig) { c.Host = "fe80::1%eth0" }, wantErr: "host: IPv6 zones"},
		{name: "host with underscore", edit: func(c *EmailConfig) { c.Host = "smtp_relay.example.com" }, wantErr: "host:"},
		{name: "host with leading hyphen", edit: func(c *EmailConfig) { c.Host = "-smtp.example.com" }, wantErr: "host:"},
		{name: "host with trailing dot", edit: func(c *EmailConfig) { c.Host = "smtp.example.com." }, wantErr: "host:"},
		{name: "host label too long", edit: func(c *EmailConfig) { c.Host = strings.Repeat("a", 64) + ".example.com" }, wantErr: "host:"},
		{name: "host too long", edit: func(c *EmailConfig) { c.Host = strings.Repeat("abcdefg.", 32) + "com" }, wantErr: "host: longer than 253"},
		{name: "host numeric but not an IP", edit: func(c *EmailConfig) { c.Host = "1.2.3" }, wantErr: "host:"},
		{name: "host with path", edit: func(c *EmailConfig) { c.Host = "smtp.example.com/x" }, wantErr: "host:"},

		{name: "port zero", edit: func(c *EmailConfig) { c.Port = 0 }, wantErr: "port:"},
		{name: "port too big", edit: func(c *EmailConfig) { c.Port = 65536 }, wantErr: "port:"},
		{name: "port negative", edit: func(c *EmailConfig) { c.Port = -25 }, wantErr: "port:"},

		{name: "unknown security", edit: func(c *EmailConfig) { c.Security = "ssl" }, wantErr: "security: must be starttls, tls or none"},
		{name: "security upper case", edit: func(c *EmailConfig) { c.Security = "STARTTLS" }, wantErr: "security:"},
		{name: "security with CRLF", edit: func(c *EmailConfig) { c.Security = "tls\r\n" }, wantErr: "security:"},
		{name: "none to a remote host", edit: func(c *EmailConfig) { c.Security = EmailPlain }, wantErr: "security: none"},
		{name: "none to a private address", edit: func(c *EmailConfig) { c.Security, c.Host = EmailPlain, "10.0.0.25" }, wantErr: "security: none"},
		{name: "none with auth off the exact loopback names", edit: func(c *EmailConfig) { c.Security, c.Host = EmailPlain, "127.0.0.2" }, wantErr: "username: authentication without TLS"},

		{name: "username with CRLF", edit: func(c *EmailConfig) { c.Username = "alerts\r\nMAIL FROM:<x@y>" }, wantErr: "username:"},
		{name: "username with NUL", edit: func(c *EmailConfig) { c.Username = "alerts\x00admin" }, wantErr: "username:"},
		{name: "username with tab", edit: func(c *EmailConfig) { c.Username = "a\tb" }, wantErr: "username:"},
		{name: "username with spaces around", edit: func(c *EmailConfig) { c.Username = " alerts" }, wantErr: "username:"},
		{name: "username too long", edit: func(c *EmailConfig) { c.Username = strings.Repeat("u", 257) }, wantErr: "username: longer"},
		{name: "username without password", edit: func(c *EmailConfig) { c.Password = "" }, wantErr: "secret: required"},

		{name: "password with CRLF", edit: func(c *EmailConfig) { c.Password = smtpPass + "\r\nQUIT" }, wantErr: "secret:"},
		{name: "password with NUL", edit: func(c *EmailConfig) { c.Password = smtpPass + "\x00" }, wantErr: "secret:"},
		{name: "password too long", edit: func(c *EmailConfig) { c.Password = strings.Repeat(smtpPass, 40) }, wantErr: "secret: longer"},
		{name: "password without username", edit: func(c *EmailConfig) { c.Username = "" }, wantErr: "username: required"},

		{name: "empty from", edit: func(c *EmailConfig) { c.From = "" }, wantErr: "from: required"},
		{name: "from not an address", edit: func(c *EmailConfig) { c.From = "Gatehouse" }, wantErr: "from:"},
		{name: "from with CRLF", edit: func(c *EmailConfig) { c.From = "alerts@example.com\r\nBcc: x@attacker.test" }, wantErr: "from: must not contain line breaks"},
		{name: "from with NUL", edit: func(c *EmailConfig) { c.From = "alerts\x00@example.com" }, wantErr: "from:"},
		{name: "from two addresses", edit: func(c *EmailConfig) { c.From = "a@example.com, b@example.com" }, wantErr: "from:"},
		{name: "from quoted local part", edit: func(c *EmailConfig) { c.From = `"a b"@example.com` }, wantErr: "from: the part before @"},
		{name: "from non-ASCII local part", edit: func(c *EmailConfig) { c.From = "zoë@example.com" }, wantErr: "from: the part before @"},
		{name: "from domain literal", edit: func(c *EmailConfig) { c.From = "alerts@[127.0.0.1]" }, wantErr: "from:"},
		{name: "from bad domain", edit: func(c *EmailConfig) { c.From = "alerts@-x.example.com" }, wantErr: "from: the part after @"},
		{name: "from scheme", edit: func(c *EmailConfig) { c.From = "mailto:alerts@example.com" }, wantErr: "from:"},
		{name: "from encoded line break in name", edit: func(c *EmailConfig) { c.From = "=?utf-8?q?Evil=0D=0ABcc:_x@attacker.test?= <alerts@example.com>" }, wantErr: "from:"},
		{name: "from encoded escape in name", edit: func(c *EmailConfig) { c.From = "=?utf-8?q?Evil=1B=5B2J?= <alerts@example.com>" }, wantErr: "from: the display name must not contain control"},
		{name: "from long display name", edit: func(c *EmailConfig) { c.From = strings.Repeat("G", 65) + " <alerts@example.com>" }, wantErr: "from: the display name is longer"},
		{name: "from too long", edit: func(c *EmailConfig) { c.From = strings.Repeat("a", 300) + "@" + strings.Repeat("b", 30) + ".com" }, wantErr: "from: longer than 320"},
		{name: "from local part too long", edit: func(c *EmailConfig) { c.From = strings.Repeat("a", 65) + "@example.com" }, wantErr: "from: the part before @"},

		{name: "no recipients", edit: func(c *EmailConfig) { c.To = nil }, wantErr: "to: at least one"},
		{name: "eleven recipients", edit: func(c *EmailConfig) { c.To = append(ten, "k@example.com") }, wantErr: "to: at most 10"},
		{name: "bad second recipient", edit: func(c *EmailConfig) { c.To = []string{"ops@example.com", "not an address"} }, wantErr: "to: recipient 2:"},
		{name: "recipient with CRLF", edit: func(c *EmailConfig) { c.To = []string{"ops@example.com\r\nRCPT TO:<x@attacker.test>"} }, wantErr: "to: recipient 1: must not contain line breaks"},
		{name: "empty recipient", edit: func(c *EmailConfig) { c.To = []string{""} }, wantErr: "to: recipient 1: required"},
		{name: "duplicate recipient", edit: func(c *EmailConfig) { c.To = []string{"ops@example.com", "Ops <OPS@example.com>"} }, wantErr: "to: recipient 2: OPS@example.com is already recipient 1"},
		{name: "recipient list in one entry", edit: func(c *EmailConfig) { c.To = []string{"a@example.com; b@example.com"} }, wantErr: "to: recipient 1:"},
		{name: "recipient with angle injection", edit: func(c *EmailConfig) { c.To = []string{"<a@example.com> NOTIFY=NEVER"} }, wantErr: "to: recipient 1:"},
	}
	fields := []string{"name", "host", "port", "security", "username", "secret", "from", "to"}
	for _, tc := range tests {
		c := ok
		c.To = slices.Clone(ok.To)
		tc.edit(&c)
		err := c.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			field, _, _ := strings.Cut(line, ":")
			if !slices.Contains(fields, field) {
				t.Errorf("%s: line %q does not start with a known field", tc.name, line)
			}
		}
		if strings.Contains(err.Error(), smtpPass) {
			t.Errorf("%s: error repeats the password", tc.name)
		}
	}
}
