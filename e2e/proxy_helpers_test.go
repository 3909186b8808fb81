package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeNginx is a private nginx master for one node: its own prefix, pid file and error
// log, with http{} and stream{} including the agent's current release. It runs in the
// foreground so the test owns it.
type nodeNginx struct {
	*proc
	prefix, conf, pidFile, errorLog, accessLog string
	dir                                        string // the agent's managed directory
}

// proxyReadableDir is a temp dir that nginx workers (nobody) can traverse, as /etc/nginx is.
func proxyReadableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startNodeNginx(t *testing.T) *nodeNginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatalf("nginx is required: %v", err)
	}
	prefix := proxyReadableDir(t)
	n := &nodeNginx{
		prefix: prefix, conf: filepath.Join(prefix, "nginx.conf"), pidFile: filepath.Join(prefix, "nginx.pid"),
		errorLog: filepath.Join(prefix, "error.log"), accessLog: filepath.Join(prefix, "access.log"), dir: filepath.Join(prefix, "gatehouse"),
	}
	userLine := ""
	if os.Geteuid() == 0 {
		group := "nogroup"
		if _, err := user.LookupGroup(group); err != nil {
			group = "nobody"
		}
		userLine = "user nobody " + group + ";"
	}
	stream := "/usr/lib/nginx/modules/ngx_stream_module.so"
	load := ""
	if _, err := os.Stat(stream); err == nil {
		load = "load_module " + stream + ";" // Debian builds stream as a module
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process on;
worker_processes 1;
%s
pid %s;
error_log %s;
events { worker_connections 256; }
http {
    access_log %[7]s;
    default_type text/plain;
    client_body_temp_path %[5]s/tmp/body;
    proxy_temp_path %[5]s/tmp/proxy;
    fastcgi_temp_path %[5]s/tmp/fastcgi;
    uwsgi_temp_path %[5]s/tmp/uwsgi;
    scgi_temp_path %[5]s/tmp/scgi;
    include %[6]s/current/http/*.conf;
}
stream {
    include %[6]s/current/stream/*.conf;
}
`, load, userLine, n.pidFile, n.errorLog, prefix, n.dir, n.accessLog)
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.proc = startProc(t, "nginx", nil, bin, "-p", prefix, "-c", n.conf)
	want := strconv.Itoa(n.cmd.Process.Pid)
	eventually(t, 15*time.Second, "nginx to write its pid", func() bool {
		b, _ := os.ReadFile(n.pidFile)
		return strings.TrimSpace(string(b)) == want
	})
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(n.errorLog)
			t.Logf("--- nginx error log ---\n%s", b)
		}
	})
	return n
}

// agentEnv is the agent's nginx settings for this master, listening on loopback ports.
func (n *nodeNginx) agentEnv(httpPort, httpsPort int) []string {
	return []string{
		"GATEHOUSE_AGENT_NGINX_DIR=" + n.dir,
		"GATEHOUSE_AGENT_NGINX_ARGS=-p " + n.prefix + " -c " + n.conf,
		"GATEHOUSE_AGENT_NGINX_PID_FILE=" + n.pidFile,
		"GATEHOUSE_AGENT_NGINX_ERROR_LOG=" + n.errorLog,
		"GATEHOUSE_AGENT_NGINX_ACCESS_LOG=" + n.accessLog,
		"GATEHOUSE_AGENT_NGINX_HTTP_PORT=" + strconv.Itoa(httpPort),
		"GATEHOUSE_AGENT_NGINX_HTTPS_PORT=" + strconv.Itoa(httpsPort),
		"GATEHOUSE_AGENT_NGINX_BIND_ADDRESS=127.0.0.1",
	}
}

func proxyFreePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// startNamedBackend is an HTTP backend on loopback that answers with its name and the
// request path.
func startNamedBackend(t *testing.T, name string) (host string, port int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	h, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return h, port
}

// serveLoopback accepts connections on a loopback port and hands each to handle.
func serveLoopback(t *testing.T, handle func(net.Conn)) (host string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			}()
		}
	}()
	h, p, _ := net.SplitHostPort(l.Addr().String())
	port, _ = strconv.Atoi(p)
	return h, port
}

// startTCPEcho echoes every byte back.
func startTCPEcho(t *testing.T) (string, int) {
	return serveLoopback(t, func(c net.Conn) { io.Copy(c, c) })
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// startWebSocketEcho is a minimal RFC 6455 server: it completes the handshake and echoes
// each data frame until a close frame.
func startWebSocketEcho(t *testing.T) (string, int) {
	return serveLoopback(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		key := req.Header.Get("Sec-WebSocket-Key")
		if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") || key == "" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
		for {
			op, payload, err := readFrame(br)
			if err != nil {
				return
			}
			if err := writeFrame(c, op, payload, false); err != nil || op == 0x8 {
				return
			}
		}
	})
}

// readFrame reads one unfragmented frame, unmasking it when masked.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frames are not supported")
	}
	op := hdr[0] & 0x0f
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large")
	}
	var mask [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}

// writeFrame writes one final frame; clients must mask, servers must not.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	body := payload
	if mask {
		var key [4]byte
		rand.Read(key[:])
		b = append(b, key[:]...)
		body = make([]byte, len(payload))
		for i := range payload {
			body[i] = payload[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(b, body...))
	return err
}

// wsEcho opens a WebSocket through nginx at addr for host and path, sends msg and
// returns what came back.
func wsEcho(addr, host, path, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return "", fmt.Errorf("handshake answered %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		return "", fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, wsAccept(key))
	}
	if err := writeFrame(c, 0x1, []byte(msg), true); err != nil {
		return "", err
	}
	op, payload, err := readFrame(br)
	if err != nil {
		return "", err
	}
	if op != 0x1 {
		return "", fmt.Errorf("echo came back with opcode %d", op)
	}
	writeFrame(c, 0x8, nil, true)
	return string(payload), nil
}

// tcpEcho sends msg over a new connection to addr and reads as many bytes back.
func tcpEcho(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// nodeClient talks to the node's nginx: a new connection per request (so each request
// meets the current workers), no redirects followed, no proxy.
var nodeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// hit is one answer from the node.
type hit struct {
	code     int
	body     string
	location string
	cache    string // X-Cache-Status
	err      error
}

func (h hit) String() string {
	if h.err != nil {
		return "error: " + h.err.Error()
	}
	return fmt.Sprintf("%d %q location=%q", h.code, h.body, h.location)
}

// nodeGet asks the node's nginx at addr for path on host, with basic-auth credentials when
// user is set.
func nodeGet(addr, host, path, user, password string) hit {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return hit{err: err}
	}
	req.Host = host
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := nodeClient.Do(req)
	if err != nil {
		return hit{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return hit{code: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"), cache: resp.Header.Get("X-Cache-Status")}
}
