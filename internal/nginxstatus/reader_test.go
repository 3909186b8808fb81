package nginxstatus

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

// get asks addr for path with the Host header host on a fresh connection.
func get(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// ipv6Loopback reports whether ::1 can be listened on here.
func ipv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestReaderAgainstRealNginx(t *testing.T) {
	t.Parallel()
	port, bare := freePort(t), freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	listen := []string{addr}
	v6 := ipv6Loopback()
	if v6 {
		listen = append(listen, net.JoinHostPort("::1", strconv.Itoa(port)))
	}
	bareAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(bare))
	servers := statusBlock(listen) + siteBlocks(listen) +
		fmt.Sprintf("server {\n    listen %s;\n    return 404;\n}\n", bareAddr)
	nginxtest.Start(t, servers, addr)
	ctx := context.Background()

	r := NewReader(addr, nil)
	t0 := time.Now()
	s1, rate, err := r.Read(ctx, t0)
	if err != nil {
		t.Fatalf("first reading: %v", err)
	}
	// The reading's own request is open and being answered.
	if s1.Active < 1 || s1.Writing < 1 || s1.Accepts < 1 || s1.Handled < 1 || s1.Requests < 1 {
		t.Fatalf("first reading %+v: want the reading's own connection and request counted", s1)
	}
	if s1.Reading+s1.Writing+s1.Waiting > s1.Active+1 {
		t.Fatalf("first reading %+v: more connections in states than open", s1)
	}
	if rate != 0 {
		t.Fatalf("first reading's rate = %v, want 0", rate)
	}

	const n = 7
	for range n {
		if code, body := get(t, addr, "app.test", "/"); code != http.StatusOK || body != "app\n" {
			t.Fatalf("app.test = %d %q", code, body)
		}
	}
	const dt = 10 * time.Second
	s2, rate, err := r.Read(ctx, t0.Add(dt))
	if err != nil {
		t.Fatalf("second reading: %v", err)
	}
	if s2.Requests < s1.Requests+n || s2.Accepts < s1.Accepts+n || s2.Handled < s1.Handled+n {
		t.Fatalf("after %d requests: %+v then %+v; want each counter up by at least %d", n, s1, s2, n)
	}
	if want := float64(s2.Requests-s1.Requests) / dt.Seconds(); rate != want || rate <= 0 {
		t.Fatalf("rate = %v, want %v", rate, want)
	}
	if _, rate, err := r.Read(ctx, t0.Add(dt)); err != nil || rate != 0 {
		t.Fatalf("reading at the same instant: rate %v, %v; want 0", rate, err)
	}

	// Only the status block at its exact path answers with the counters.
	for _, tc := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"other.test", Path, http.StatusNotFound, ""},
		{"app.test", Path, http.StatusOK, "app\n"},
		{Host, "/", http.StatusNotFound, ""},
		{Host, Path + "/x", http.StatusNotFound, ""},
		{Host, strings.ToUpper(Path), http.StatusNotFound, ""},
	} {
		code, body := get(t, addr, tc.host, tc.path)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s%s = %d %q, want %d", tc.host, tc.path, code, body, tc.code)
		}
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("GET %s%s served the counters", tc.host, tc.path)
		}
	}

	// A listener without the status block (no release yet) says so.
	if _, _, err := NewReader(bareAddr, nil).Read(ctx, time.Now()); err == nil || !strings.Contains(err.Error(), "answered HTTP 404") {
		t.Fatalf("reading a listener without the status block: %v, want HTTP 404", err)
	}
	if v6 {
		s, _, err := NewReader(net.JoinHostPort("::1", strconv.Itoa(port)), nil).Read(ctx, time.Now())
		if err != nil || s.Requests <= s2.Requests {
			t.Fatalf("reading over ::1: %+v, %v", s, err)
		}
	}
}

// fakeStatus serves the queued bodies to requests for Host at Path, one per
// request, and counts every request.
type fakeStatus struct {
	mu     sync.Mutex
	bodies []string
	hits   int
}

func (f *fakeStatus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits++
	if r.Host != Host || r.URL.Path != Path || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	if len(f.bodies) == 0 {
		http.Error(w, "no more", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, f.bodies[0])
	f.bodies = f.bodies[1:]
}

func body(requests uint64) string {
	return format(Status{Active: 1, Writing: 1, Accepts: requests, Handled: requests, Requests: requests})
}

// The rate is computed against the last good reading and restarts at 0
// when nginx's counters go back.
func TestReaderRate(t *testing.T) {
	t.Parallel()
	f := &fakeStatus{bodies: []string{body(100), body(160), "garbage", body(260), body(5), body(35), body(40)}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	r := NewReader(srv.Listener.Addr().String(), nil)
	t0 := time.Now()
	for i, step := range []struct {
		at       time.Duration
		requests uint64
		rate     float64
		fails    bool
	}{
		{at: 0, requests: 100, rate: 0},                // first reading
		{at: 10 * time.Second, requests: 160, rate: 6}, // 60 in 10 s
		{at: 20 * time.Second, fails: true},            // garbage
		{at: 30 * time.Second, requests: 260, rate: 5}, // 100 in 20 s since the last good one
		{at: 40 * time.Second, requests: 5, rate: 0},   // restarted
		{at: 50 * time.Second, requests: 35, rate: 3},  // 30 in 10 s from the new base
		{at: 45 * time.Second, requests: 40, rate: 0},  // clock went back: no rate
	} {
		s, rate, err := r.Read(context.Background(), t0.Add(step.at))
		if step.fails {
			if err == nil || s != nil || rate != 0 {
				t.Fatalf("step %d: %+v, %v, %v; want an error", i, s, rate, err)
			}
			continue
		}
		if err != nil || s.Requests != step.requests || rate != step.rate {
			t.Fatalf("step %d: %+v, rate %v, %v; want requests %d at %v/s", i, s, rate, err, step.requests, step.rate)
		}
	}
}

// A reading accepts only a 200 with a well-formed body from the address it
// was given, within its timeout.
func TestReaderRefuses(t *testing.T) {
	t.Parallel()
	elsewhere := &fakeStatus{bodies: []string{body(1)}}
	other := httptest.NewServer(elsewhere)
	t.Cleanup(other.Close)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })

	t.Run("answers", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			handler http.HandlerFunc
			want    string
		}{
			{"redirect", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+Path, http.StatusFound)
			}, "answered HTTP 302"},
			{"server error", func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, body(1), http.StatusInternalServerError)
			}, "answered HTTP 500"},
			{"forbidden", func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "<html>403 Forbidden</html>", http.StatusForbidden)
			}, "answered HTTP 403"},
			{"endless body", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body(1))
				for range 1 << 10 {
					if _, err := io.WriteString(w, strings.Repeat(" ", 1<<10)); err != nil {
						return
					}
				}
			}, "more than the 1024 allowed"},
			{"not stub_status", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html><body>Welcome to nginx!</body></html>\n")
			}, "stub_status line 1"},
			{"hangs", func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}, "no answer from http://"},
			{"hangs mid-body", func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "Active connections: 1 \n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}, "body: no answer"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				s, rate, err := NewReader(srv.Listener.Addr().String(), nil).Read(context.Background(), time.Now())
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Read = %+v, %v, %v; want an error containing %q", s, rate, err, tc.want)
				}
			})
		}
	})
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if elsewhere.hits != 0 {
		t.Fatalf("the redirect was followed")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, _, err := NewReader(closed, nil).Read(context.Background(), time.Now()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("nginx down: %v, want connection refused", err)
	}
}

// The default client never goes through a proxy from the environment, and
// a caller's client is bounded all the same.
func TestReaderClient(t *testing.T) {
	t.Parallel()
	r := NewReader("127.0.0.1:1", nil)
	tr, ok := r.client.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil || !tr.DisableKeepAlives {
		t.Fatalf("default transport %+v: want no proxy and no kept-alive connections", r.client.Transport)
	}
	if r.client.Timeout != Timeout || r.client.CheckRedirect == nil {
		t.Fatalf("default client: timeout %s, redirect check %v", r.client.Timeout, r.client.CheckRedirect != nil)
	}
	mine := &http.Client{Timeout: time.Hour}
	r = NewReader("127.0.0.1:1", mine)
	if r.client == mine || r.client.Timeout != Timeout || r.client.CheckRedirect == nil || mine.CheckRedirect != nil {
		t.Fatalf("caller's client not bounded, or changed in place")
	}
	if r.url != "http://127.0.0.1:1"+Path {
		t.Fatalf("url %q", r.url)
	}
}
