// Package pgtest starts a throwaway PostgreSQL server for tests and tools.
//
// The server runs from the distribution's binaries (initdb, postgres) in a
// temporary directory, on a free loopback port, with durability switched off
// for speed. It is a child of the calling process and dies with it, so a test
// binary that panics or times out leaves no server behind. When the process
// runs as root, PostgreSQL is run as the "postgres" user, since it refuses to
// run as root.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the driver for the URLs this package hands out
)

// EnvURL names an environment variable that points the tests at an existing
// server instead of starting one (a superuser URL without a database name).
const EnvURL = "GATEHOUSE_TEST_POSTGRES_URL"

// Server is a running PostgreSQL instance.
type Server struct {
	dir     string
	bin     string
	port    int
	baseURL string
	cred    *syscall.Credential
	owned   bool
	cmd     *exec.Cmd     // the postmaster
	exited  chan struct{} // closed once the postmaster has exited
}

// binDir finds the PostgreSQL server binaries, preferring version 15.
func binDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		if (vi == 15) != (vj == 15) {
			return vi == 15
		}
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("postgresql server binaries not found (install the postgresql package or set PG_BIN)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start initialises and starts a new server. Call Stop when done.
func Start(ctx context.Context) (*Server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{baseURL: strings.TrimRight(u, "/")}, nil
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, owned: true}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	// A port freed by freePort can be taken by another process before the
	// server binds it; the server then exits, and another port is tried.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		err = s.startPostmaster(ctx, data, port)
		if err == nil {
			s.port = port
			break
		}
		if attempt >= 2 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	s.baseURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d", s.port)
	return s, nil
}

// startPostmaster runs postgres on port and waits until it accepts
// connections on its own socket directory, so a server of another test that
// holds the port is never mistaken for this one.
func (s *Server) startPostmaster(ctx context.Context, data string, port int) error {
	logPath := filepath.Join(s.dir, "log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGQUIT is PostgreSQL's immediate shutdown. The kernel sends it when
	// the thread that started the server ends, which for Go means this
	// process: threads end only with goroutines that keep them locked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	db, err := sql.Open("postgres", fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable&connect_timeout=5",
		url.QueryEscape(s.dir), port))
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited at start on port %d: %s", port, logText())
		default:
		}
		if err := db.PingContext(ctx); err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			if ctx.Err() != nil {
				return fmt.Errorf("postgres start: %w", ctx.Err())
			}
			return fmt.Errorf("postgres did not accept connections within a minute: %s", logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// URL returns the connection URL of database name on the server.
func (s *Server) URL(name string) string {
	return s.baseURL + "/" + name + "?sslmode=disable"
}

// CreateDatabase makes a new, empty database with a random name and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "gh_" + hex.EncodeToString(b)
	db, err := sql.Open("postgres", s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return s.URL(name), nil
}

// Stop shuts the server down and removes its files.
func (s *Server) Stop() {
	if !s.owned {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Run wraps testing.M: it runs the tests and stops the shared server, if one
// was started, afterwards. Use it from TestMain: os.Exit(pgtest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Database returns the URL of a fresh database on the package's shared server,
// starting the server on first use. Without PostgreSQL the test is skipped,
// except under CI=true, where that is a failure.
func Database(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start(context.Background()) })
	if sharedErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgresql is required under CI: %v", sharedErr)
		}
		t.Skipf("postgresql not available: %v", sharedErr)
	}
	u, err := shared.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}
