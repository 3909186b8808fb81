package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/gatehousehq/gatehouse/controller/internal/provision/shellquote"
)

// Target is a node to reach over SSH.
type Target struct {
	Host string
	Port int
	User string
	Auth Auth
	// Sudo runs privileged commands through "sudo -n --". It is ignored for
	// root, who needs no sudo.
	Sudo bool
}

// Auth holds the credential for a Target: a private key (OpenSSH or PEM
// form, unencrypted) or a password. When both are set the key is tried first.
type Auth struct {
	PrivateKeyPEM []byte
	Password      string
}

func (a Auth) methods() ([]ssh.AuthMethod, error) {
	var ms []ssh.AuthMethod
	if len(a.PrivateKeyPEM) > 0 {
		signer, err := ssh.ParsePrivateKey(a.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: private key: %w", err)
		}
		ms = append(ms, ssh.PublicKeys(signer))
	}
	if a.Password != "" {
		pw := a.Password
		ms = append(ms, ssh.Password(pw), ssh.KeyboardInteractive(
			func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				if len(questions) == 1 {
					answers[0] = pw
				}
				return answers, nil
			}))
	}
	return ms, nil
}

const (
	dialTimeout = 15 * time.Second
	// maxOutput caps what is kept of one command's stdout or stderr.
	maxOutput = 1 << 20
)

// Client is an authenticated SSH connection to one node.
type Client struct {
	target Target
	addr   string
	conn   *ssh.Client
}

// Dial connects to the target and authenticates. The host key is checked
// against policy during key exchange, before any credential is sent: an
// unapproved key gives *UnknownHostKeyError, a key different from the
// approved ones gives *HostKeyChangedError.
func Dial(ctx context.Context, t Target, policy HostKeyPolicy) (*Client, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	auths, err := t.Auth.methods()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	var hostKeyErr error
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: auths,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			hostKeyErr = policy.check(addr, key)
			return hostKeyErr
		},
		HostKeyAlgorithms: policy.algorithms(),
		Timeout:           dialTimeout,
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		if hostKeyErr != nil {
			return nil, hostKeyErr
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("log in to %s as %s failed: the server refused the key or password (%w)", addr, t.User, err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &Client{target: t, addr: addr, conn: ssh.NewClient(sc, chans, reqs)}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Addr is the host:port the client is connected to.
func (c *Client) Addr() string { return c.addr }

// Output is what a remote command printed.
type Output struct {
	Stdout []byte
	Stderr []byte
}

// ExitError is a remote command that ran and exited with a non-zero status.
type ExitError struct {
	Command string
	Status  int
	Stderr  string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s: exit status %d", e.Command, e.Status)
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Command, e.Status, msg)
}

// SudoPasswordError means sudo on the node wants a password, which a
// non-interactive provisioning run cannot give.
type SudoPasswordError struct {
	Host string
	User string
}

func (e *SudoPasswordError) Error() string {
	return fmt.Sprintf("sudo on %s requires a password; allow password-less sudo for %s or connect as root", e.Host, e.User)
}

// asRoot reports whether privileged commands need a sudo prefix.
func (c *Client) sudo() bool { return c.target.Sudo && c.target.User != "root" }

// Run runs argv on the node with root privileges (through "sudo -n --" when
// the target uses sudo) and returns its output. Every argument is quoted
// with shellquote.Quote; no argument is ever interpreted by the shell.
// A non-zero exit gives *ExitError; sudo asking for a password gives
// *SudoPasswordError.
func (c *Client) Run(ctx context.Context, argv ...string) (Output, error) {
	return c.run(ctx, true, nil, argv)
}

// RunInput is Run with stdin fed from r.
func (c *Client) RunInput(ctx context.Context, r io.Reader, argv ...string) (Output, error) {
	return c.run(ctx, true, r, argv)
}

// RunAsUser runs argv as the login user, without sudo.
func (c *Client) RunAsUser(ctx context.Context, argv ...string) (Output, error) {
	return c.run(ctx, false, nil, argv)
}

// CommandLine returns the exact command line Run would send for argv.
func (c *Client) CommandLine(privileged bool, argv ...string) (string, error) {
	if privileged && c.sudo() {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	return shellquote.Join(argv...)
}

func (c *Client) run(ctx context.Context, privileged bool, stdin io.Reader, argv []string) (Output, error) {
	line, err := c.CommandLine(privileged, argv...)
	if err != nil {
		return Output{}, err
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return Output{}, fmt.Errorf("open session on %s: %w", c.addr, err)
	}
	defer sess.Close()
	stdout := &capped{max: maxOutput}
	stderr := &capped{max: maxOutput}
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		sess.Stdin = stdin
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Close()
		<-done
		return Output{}, fmt.Errorf("%s: %w", argv[0], ctx.Err())
	}
	out := Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return out, nil
	}
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		if privileged && c.sudo() && isSudoPasswordPrompt(out.Stderr) {
			return out, &SudoPasswordError{Host: c.target.Host, User: c.target.User}
		}
		return out, &ExitError{Command: argv[0], Status: exitErr.ExitStatus(), Stderr: string(out.Stderr)}
	}
	return out, fmt.Errorf("%s on %s: %w", argv[0], c.addr, err)
}

func isSudoPasswordPrompt(stderr []byte) bool {
	return bytes.Contains(stderr, []byte("sudo: a password is required")) ||
		bytes.Contains(stderr, []byte("sudo: a terminal is required"))
}

// SFTP opens an SFTP session over the connection. The caller closes it.
func (c *Client) SFTP() (*sftp.Client, error) {
	s, err := sftp.NewClient(c.conn)
	if err != nil {
		return nil, fmt.Errorf("open sftp on %s: %w", c.addr, err)
	}
	return s, nil
}

// capped is a buffer that keeps at most max bytes and notes truncation.
type capped struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.truncated = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

func (w *capped) Bytes() []byte {
	if w.truncated {
		return append(w.buf.Bytes(), "\n[output truncated]\n"...)
	}
	return w.buf.Bytes()
}
