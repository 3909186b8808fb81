package monitors

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/store"
	"github.com/gatehousehq/gatehouse/controller/internal/store/storetest"
	"github.com/gatehousehq/gatehouse/ent"
	"github.com/gatehousehq/gatehouse/ent/auditevent"
	"github.com/gatehousehq/gatehouse/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Input{Name: "billing api", Kind: KindHTTP, Target: "https://api.example.com:8443/healthz?full=1", Enabled: true}
	for _, tc := range []struct {
		name  string
		edit  func(*Input)
		field string // "" when accepted
	}{
		{"accepted", func(*Input) {}, ""},
		{"ipv4 url", func(in *Input) { in.Target = "http://127.0.0.1:8080/" }, ""},
		{"ipv6 url", func(in *Input) { in.Target = "http://[::1]/x" }, ""},
		{"tcp", func(in *Input) { in.Kind, in.Target = KindTCP, "db.example.com:5432" }, ""},
		{"tcp ipv6", func(in *Input) { in.Kind, in.Target = KindTCP, "[2001:db8::1]:5432" }, ""},
		{"name empty", func(in *Input) { in.Name = " " }, "name"},
		{"name too long", func(in *Input) { in.Name = strings.Repeat("a", 65) }, "name"},
		{"name markup", func(in *Input) { in.Name = "<script>" }, "name"},
		{"name quote", func(in *Input) { in.Name = `a"b` }, "name"},
		{"name leading dash", func(in *Input) { in.Name = "-a" }, "name"},
		{"name newline", func(in *Input) { in.Name = "a\nb" }, "name"},
		{"name unicode", func(in *Input) { in.Name = "caf\u00e9" }, "name"},
		{"kind", func(in *Input) { in.Kind = "icmp" }, "kind"},
		{"timeout low", func(in *Input) { in.TimeoutMS = 999 }, "timeout_ms"},
		{"timeout high", func(in *Input) { in.TimeoutMS = 60001 }, "timeout_ms"},
		{"target empty", func(in *Input) { in.Target = "" }, "target"},
		{"space", func(in *Input) { in.Target = "https://a.example/a b" }, "target"},
		{"crlf", func(in *Input) { in.Target = "https://a.example/\r\nX-Evil: 1" }, "target"},
		{"nul", func(in *Input) { in.Target = "https://a.example/\x00" }, "target"},
		{"quote", func(in *Input) { in.Target = `https://a.example/"` }, "target"},
		{"single quote", func(in *Input) { in.Target = "https://a.example/'" }, "target"},
		{"dollar", func(in *Input) { in.Target = "https://a.example/$(id)" }, "target"},
		{"backslash", func(in *Input) { in.Target = `https://a.example\@evil/` }, "target"},
		{"ftp", func(in *Input) { in.Target = "ftp://a.example/" }, "target"},
		{"file", func(in *Input) { in.Target = "file:///etc/passwd" }, "target"},
		{"javascript", func(in *Input) { in.Target = "javascript:alert(1)" }, "target"},
		{"relative", func(in *Input) { in.Target = "/healthz" }, "target"},
		{"no host", func(in *Input) { in.Target = "http:///x" }, "target"},
		{"user info", func(in *Input) { in.Target = "https://u:p@a.example/" }, "target"},
		{"fragment", func(in *Input) { in.Target = "https://a.example/#x" }, "target"},
		{"port zero", func(in *Input) { in.Target = "https://a.example:0/" }, "target"},
		{"port high", func(in *Input) { in.Target = "https://a.example:65536/" }, "target"},
		{"port empty", func(in *Input) { in.Target = "https://a.example:/" }, "target"},
		{"zone", func(in *Input) { in.Target = "http://[fe80::1%25eth0]/" }, "target"},
		{"bad host", func(in *Input) { in.Target = "https://a_b.example/" }, "target"},
		{"host dash", func(in *Input) { in.Target = "https://-a.example/" }, "target"},
		{"non ascii", func(in *Input) { in.Target = "https://a.example/\u00e4" }, "target"},
		{"oversized", func(in *Input) { in.Target = "https://a.example/" + strings.Repeat("a", MaxTarget) }, "target"},
		{"tcp no port", func(in *Input) { in.Kind, in.Target = KindTCP, "db.example.com" }, "target"},
		{"tcp url", func(in *Input) { in.Kind, in.Target = KindTCP, "http://db.example.com:5432" }, "target"},
		{"tcp port word", func(in *Input) { in.Kind, in.Target = KindTCP, "db.example.com:pg" }, "target"},
		{"tcp zone", func(in *Input) { in.Kind, in.Target = KindTCP, "[fe80::1%eth0]:22" }, "target"},
		{"tcp newline", func(in *Input) { in.Kind, in.Target = KindTCP, "db\n:22" }, "target"},
		{"trailing crlf", func(in *Input) { in.Kind, in.Target = KindTCP, "db:22\r\n" }, "target"},
		{"name trailing newline", func(in *Input) { in.Name = "db\n" }, "name"},
		{"interval low", func(in *Input) { in.IntervalS = 19 }, "interval_s"},
		{"interval high", func(in *Input) { in.IntervalS = 86401 }, "interval_s"},
		{"interval negative", func(in *Input) { in.IntervalS = -60 }, "interval_s"},
		{"statuses", func(in *Input) { in.ExpectStatus = "200-299, 301 ,404" }, ""},
		{"status range spaced", func(in *Input) { in.ExpectStatus = "200 - 204" }, ""},
		{"status low", func(in *Input) { in.ExpectStatus = "99" }, "expect_status"},
		{"status high", func(in *Input) { in.ExpectStatus = "600" }, "expect_status"},
		{"status word", func(in *Input) { in.ExpectStatus = "2xx" }, "expect_status"},
		{"status open range", func(in *Input) { in.ExpectStatus = "200-" }, "expect_status"},
		{"status reversed", func(in *Input) { in.ExpectStatus = "299-200" }, "expect_status"},
		{"status semicolon", func(in *Input) { in.ExpectStatus = "200;301" }, "expect_status"},
		{"status newline", func(in *Input) { in.ExpectStatus = "200\n301" }, "expect_status"},
		{"status empty item", func(in *Input) { in.ExpectStatus = "200,,301" }, "expect_status"},
		{"status plus", func(in *Input) { in.ExpectStatus = "+200" }, "expect_status"},
		{"status too many", func(in *Input) { in.ExpectStatus = strings.Repeat("200,", 10) + "201" }, "expect_status"},
		{"status oversized", func(in *Input) { in.ExpectStatus = "200" + strings.Repeat(" ", 98) + ",201" }, "expect_status"},
		{"body", func(in *Input) { in.ExpectBody = `"status":"ok" — <b>$ok</b>` }, ""},
		{"body newline", func(in *Input) { in.ExpectBody = "ok\nX-Evil: 1" }, "expect_body"},
		{"body nul", func(in *Input) { in.ExpectBody = "ok\x00" }, "expect_body"},
		{"body tab", func(in *Input) { in.ExpectBody = "a\tb" }, "expect_body"},
		{"body bad utf8", func(in *Input) { in.ExpectBody = "ok\xff" }, "expect_body"},
		{"body padded", func(in *Input) { in.ExpectBody = " ok" }, "expect_body"},
		{"body oversized", func(in *Input) { in.ExpectBody = strings.Repeat("a", MaxExpectBody+1) }, "expect_body"},
		{"tcp status", func(in *Input) { in.Kind, in.Target, in.ExpectStatus = KindTCP, "db:5432", "200" }, "expect_status"},
		{"tcp body", func(in *Input) { in.Kind, in.Target, in.ExpectBody = KindTCP, "db:5432", "ok" }, "expect_body"},
		{"any certificate", func(in *Input) { in.IgnoreTLSErrors = true }, ""},
		{"any certificate of plain http", func(in *Input) { in.Target, in.IgnoreTLSErrors = "http://a.example/", true }, "ignore_tls_errors"},
		{"any certificate of tcp", func(in *Input) { in.Kind, in.Target, in.IgnoreTLSErrors = KindTCP, "db:5432", true }, "ignore_tls_errors"},
		{"tls", func(in *Input) { in.Kind, in.Target, in.IgnoreTLSErrors = KindTLS, "mail.example.com:465", true }, ""},
		{"tls url", func(in *Input) { in.Kind, in.Target = KindTLS, "https://mail.example.com:465" }, "target"},
		{"tls status", func(in *Input) { in.Kind, in.Target, in.ExpectStatus = KindTLS, "mail.example.com:465", "200" }, "expect_status"},
	} {
		in := ok
		tc.edit(&in)
		_, err := Validate(in)
		fe, _ := err.(FieldErrors)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.field != "" && fe[tc.field] == "":
			t.Errorf("%s: %q accepted for %s (%v)", tc.name, in.Target, tc.field, err)
		case tc.field != "" && len(fe) != 1:
			t.Errorf("%s: other fields refused too: %v", tc.name, fe)
		}
	}
	if in, _ := Validate(ok); in.TimeoutMS != DefaultTimeoutMS || in.IntervalS != DefaultIntervalS {
		t.Errorf("default timeout %d, interval %d", in.TimeoutMS, in.IntervalS)
	}
	withStatuses := ok
	withStatuses.ExpectStatus = " 200 - 299, 301 "
	if in, err := Validate(withStatuses); err != nil || in.ExpectStatus != "200-299,301" {
		t.Errorf("statuses are not written back plainly: %q %v", in.ExpectStatus, err)
	}
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	s, msg := ParseStatuses("200-204,301,404")
	if msg != "" {
		t.Fatal(msg)
	}
	for code, want := range map[int]bool{199: false, 200: true, 204: true, 205: false, 301: true, 302: false, 404: true, 500: false} {
		if s.Has(code) != want {
			t.Errorf("Has(%d) = %v", code, !want)
		}
	}
	if !DefaultStatuses.Has(399) || DefaultStatuses.Has(400) || DefaultStatuses.String() != DefaultExpectText {
		t.Errorf("default statuses %s", DefaultStatuses)
	}
}

// The expected text is found across reads of any size, only in the first
// 64 KiB, and reading stops once it is found.
func TestBodyHolds(t *testing.T) {
	t.Parallel()
	page := strings.Repeat("x", 1000) + `{"status":"ok"}` + strings.Repeat("y", 1000)
	for _, tc := range []struct {
		name string
		r    io.Reader
		text string
		want bool
	}{
		{"whole", strings.NewReader(page), `"status":"ok"`, true},
		{"byte by byte", iotest.OneByteReader(strings.NewReader(page)), `"status":"ok"`, true},
		{"half reads", iotest.HalfReader(strings.NewReader(page)), `{"status"`, true},
		{"absent", strings.NewReader(page), `"status":"down"`, false},
		{"at the limit", strings.NewReader(strings.Repeat("x", bodyLimit-2) + "okay"), "ok", true},
		{"past the limit", strings.NewReader(strings.Repeat("x", bodyLimit-1) + "okay"), "ok", false},
		{"empty body", strings.NewReader(""), "ok", false},
	} {
		got, err := bodyHolds(tc.r, tc.text)
		if got != tc.want || err != nil {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
	// Found before an endless body stops: the reader fails if read again.
	r := io.MultiReader(strings.NewReader("ready"), iotest.ErrReader(errors.New("read past the match")))
	if got, err := bodyHolds(r, "ready"); !got || err != nil {
		t.Errorf("read on after the match: %v %v", got, err)
	}
	r = io.MultiReader(strings.NewReader("not yet"), iotest.ErrReader(errors.New("connection reset")))
	if got, err := bodyHolds(r, "ready"); got || err == nil {
		t.Errorf("a failed read: %v %v", got, err)
	}
}

// acceptingListener is a loopback port that accepts connections and closes
// them, until the test ends.
func acceptingListener(t *testing.T) net.Listener {
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
			c.Close()
		}
	}()
	return l
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProbe(t *testing.T) {
	t.Parallel()
	var agent atomic.Value
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent.Store(r.UserAgent())
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(strings.Repeat("x", 200<<10))) // more than is read
		case "/fail":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "/moved":
			http.Redirect(w, r, "/fail", http.StatusFound)
		case "/slow":
			<-r.Context().Done()
		case "/missing":
			http.NotFound(w, r)
		case "/stream":
			// The text, then a body that never ends.
			w.Write([]byte(`{"status":"ok"`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(handler)
	t.Cleanup(tlsSrv.Close)
	listener := acceptingListener(t)
	s := New(nil, Config{}, hclog.NewNullLogger())
	statuses := func(text string) Statuses {
		st, msg := ParseStatuses(text)
		if msg != "" {
			t.Fatal(msg)
		}
		return st
	}
	for _, tc := range []struct {
		name    string
		spec    Spec
		ok      bool
		status  int
		message string
	}{
		{"200", Spec{Kind: KindHTTP, Target: plain.URL + "/ok"}, true, 200, ""},
		{"500", Spec{Kind: KindHTTP, Target: plain.URL + "/fail"}, false, 500, "answered 500 Internal Server Error"},
		{"302 not followed", Spec{Kind: KindHTTP, Target: plain.URL + "/moved"}, true, 302, ""},
		{"self-signed", Spec{Kind: KindHTTP, Target: tlsSrv.URL + "/ok"}, false, 0, "certificate"},
		{"slow", Spec{Kind: KindHTTP, Target: plain.URL + "/slow", Timeout: 100 * time.Millisecond}, false, 0, "no answer within 100ms"},
		{"http refused", Spec{Kind: KindHTTP, Target: "http://" + closedPort(t) + "/"}, false, 0, "refused"},
		{"404 expected", Spec{Kind: KindHTTP, Target: plain.URL + "/missing", Statuses: statuses("404")}, true, 404, ""},
		{"302 unexpected", Spec{Kind: KindHTTP, Target: plain.URL + "/moved", Statuses: statuses("200-299")}, false, 302, "answered 302 Found, expected 200-299"},
		{"body holds", Spec{Kind: KindHTTP, Target: plain.URL + "/fail", Statuses: statuses("500"), Body: "broken"}, true, 500, ""},
		{"body lacks", Spec{Kind: KindHTTP, Target: plain.URL + "/ok", Body: `"status":"ok"`}, false, 200, `do not contain "\"status\":\"ok\""`},
		{"body past the limit", Spec{Kind: KindHTTP, Target: plain.URL + "/ok", Body: "xxxxy"}, false, 200, "do not contain"},
		{"body of an endless answer", Spec{Kind: KindHTTP, Target: plain.URL + "/stream", Body: `"status":"ok"`}, true, 200, ""},
		{"status before body", Spec{Kind: KindHTTP, Target: plain.URL + "/fail", Body: "broken"}, false, 500, "answered 500 Internal Server Error"},
		{"tcp open", Spec{Kind: KindTCP, Target: listener.Addr().String()}, true, 0, ""},
		{"tcp closed", Spec{Kind: KindTCP, Target: closedPort(t)}, false, 0, "refused"},
	} {
		if tc.spec.Timeout == 0 {
			tc.spec.Timeout = 5 * time.Second
		}
		r := s.Probe(context.Background(), tc.spec)
		if r.OK != tc.ok || r.Status != tc.status || !strings.Contains(r.Message, tc.message) || (tc.ok && r.Message != "") {
			t.Errorf("%s: %+v", tc.name, r)
		}
		if r.LatencyMS < 0 {
			t.Errorf("%s: latency %d", tc.name, r.LatencyMS)
		}
	}
	if got, _ := agent.Load().(string); got != UserAgent {
		t.Errorf("user agent %q", got)
	}
}

// Results are kept on the monitor with the run of failures, every check is
// counted in its hour, uptime sums the right hours and old hours are pruned.
func TestChecks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var status atomic.Int32
		status.Store(200)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(int(status.Load()))
		}))
		t.Cleanup(srv.Close)
		clock := time.Date(2030, 1, 10, 12, 30, 0, 0, time.UTC)
		s := New(db, Config{Now: func() time.Time { return clock }, Audit: audit.New(db.Client, hclog.NewNullLogger())}, hclog.NewNullLogger())
		admin := audit.System("test")

		web, _, err := s.Create(ctx, admin, Input{Name: "web", Kind: KindHTTP, Target: srv.URL + "/", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		dbm, _, err := s.Create(ctx, admin, Input{Name: "db", Kind: KindTCP, Target: closedPort(t), TimeoutMS: 2000, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		off, _, err := s.Create(ctx, admin, Input{Name: "off", Kind: KindTCP, Target: closedPort(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Create(ctx, admin, Input{Name: "web", Kind: KindTCP, Target: "a.example:1", Enabled: true}); err == nil || err.(FieldErrors)["name"] == "" {
			t.Errorf("a second monitor named web: %v", err)
		}
		if _, _, err := s.Update(ctx, admin, web.ID, Input{Name: "db", Kind: KindHTTP, Target: srv.URL + "/"}); err == nil || err.(FieldErrors)["name"] == "" {
			t.Errorf("renamed onto another monitor: %v", err)
		}

		// Round 1 at 12:30: web up, db down.
		err = s.ProbeAll(ctx, func(string, ...any) {})
		if err == nil || !strings.Contains(err.Error(), "db (") || strings.Contains(err.Error(), "web") || strings.Contains(err.Error(), "off") {
			t.Fatalf("round 1: %v", err)
		}
		first := clock
		// Round 2 at 12:40: web fails too; db's run of failures goes on.
		clock = clock.Add(10 * time.Minute)
		status.Store(503)
		if err := s.ProbeAll(ctx, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "web (") {
			t.Fatalf("round 2: %v", err)
		}
		got, _ := s.Get(ctx, dbm.ID)
		if got.Ok || got.FailingSince == nil || !got.FailingSince.Equal(first) || got.CheckedAt == nil || !got.CheckedAt.Equal(clock) {
			t.Errorf("db after two failures: %+v", got)
		}
		got, _ = s.Get(ctx, web.ID)
		if got.Ok || got.Status != 503 || got.FailingSince == nil || !got.FailingSince.Equal(clock) || got.Message != "answered 503 Service Unavailable" {
			t.Errorf("web after its first failure: %+v", got)
		}
		// Hour 13: web back up, checked by hand; its failure run ends.
		clock = clock.Add(time.Hour)
		status.Store(200)
		if got, err = s.Check(ctx, web.ID); err != nil || !got.Ok || got.FailingSince != nil || got.Message != "" {
			t.Errorf("web after a success: %+v %v", got, err)
		}
		if got, _ = s.Get(ctx, off.ID); got.CheckedAt != nil {
			t.Error("a disabled monitor was checked")
		}
		// Two days earlier: one failure of web, outside 24 hours, inside 7 days.
		now := clock
		clock = clock.Add(-48 * time.Hour)
		status.Store(500)
		if _, err := s.Check(ctx, web.ID); err != nil {
			t.Fatal(err)
		}
		clock = now

		if n := db.Client.MonitorHour.Query().CountX(ctx); n != 4 {
			t.Errorf("%d hour rows, want 4 (web: 3 hours, db: 1)", n)
		}
		up, err := s.Uptime(ctx, []int{web.ID, dbm.ID, off.ID})
		if err != nil {
			t.Fatal(err)
		}
		if u := up["24h"][web.ID]; u.Up != 2 || u.Down != 1 || u.Label() != "66.66 %" {
			t.Errorf("web over 24h: %+v %s", u, u.Label())
		}
		if u := up["7d"][web.ID]; u.Up != 2 || u.Down != 2 {
			t.Errorf("web over 7d: %+v", u)
		}
		if u := up["30d"][dbm.ID]; u.Up != 0 || u.Down != 2 || u.Label() != "0.00 %" {
			t.Errorf("db over 30d: %+v", u)
		}
		if _, ok := up["24h"][off.ID]; ok {
			t.Error("a monitor never checked has uptime")
		}
		hours, err := s.Hours(ctx, web.ID, 48)
		if err != nil {
			t.Fatal(err)
		}
		if len(hours) != 48 || !hours[47].Start.Equal(time.Date(2030, 1, 10, 13, 0, 0, 0, time.UTC)) ||
			hours[46].Up != 1 || hours[46].Down != 1 || hours[47].Up != 1 || hours[0].Probes() != 0 {
			t.Errorf("hours: %+v %+v %+v", hours[0], hours[46], hours[47])
		}
		days, err := s.Days(ctx, web.ID, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 30 || days[29].Up != 2 || days[29].Down != 1 || days[27].Down != 1 || days[28].Probes() != 0 {
			t.Errorf("days: %+v", days[27:])
		}

		// A run past the retention prunes the old hours and counts new ones.
		clock = clock.Add(Retention - 24*time.Hour)
		_ = s.ProbeAll(ctx, func(string, ...any) {})
		if n := db.Client.MonitorHour.Query().CountX(ctx); n != 5 {
			t.Errorf("%d hour rows after the prune, want 5 (4, less web's earliest, plus 2 new)", n)
		}
		// Deleting a monitor deletes its counts, and every change is audited.
		if err := s.Delete(ctx, admin, dbm.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, admin, dbm.ID); err != ErrNotFound {
			t.Errorf("second delete: %v", err)
		}
		if n := db.Client.MonitorHour.Query().CountX(ctx); n != 3 {
			t.Errorf("%d hour rows after the delete, want 3", n)
		}
		for action, want := range map[string]int{"monitor.create": 3, "monitor.update": 0, "monitor.delete": 1} {
			if n := db.Client.AuditEvent.Query().Where(auditevent.Action(action)).CountX(ctx); n != want {
				t.Errorf("%d %s entries, want %d", n, action, want)
			}
		}
		// Changing the target starts afresh.
		got, _, err = s.Update(ctx, admin, web.ID, Input{Name: "web2", Kind: KindTCP, Target: "127.0.0.1:1", Enabled: true})
		if err != nil || got.CheckedAt != nil || got.Name != "web2" || got.Kind != KindTCP {
			t.Errorf("update: %+v %v", got, err)
		}
	})
}

// Each monitor is checked on its own interval, on the job's run nearest to
// its due time.
func TestDue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		listener := acceptingListener(t)
		start := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
		clock := start
		s := New(db, Config{Now: func() time.Time { return clock }, Every: 20 * time.Second}, hclog.NewNullLogger())
		admin := audit.System("test")
		fast, _, err := s.Create(ctx, admin, Input{Name: "fast", Kind: KindTCP, Target: listener.Addr().String(), Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		slow, _, err := s.Create(ctx, admin, Input{Name: "slow", Kind: KindTCP, Target: listener.Addr().String(), IntervalS: 3600, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if fast.IntervalS != DefaultIntervalS || slow.IntervalS != 3600 {
			t.Fatalf("intervals %d and %d", fast.IntervalS, slow.IntervalS)
		}
		checkedAt := func(id int) time.Time {
			m, err := s.Get(ctx, id)
			if err != nil || m.CheckedAt == nil {
				t.Fatalf("monitor %d: %+v %v", id, m, err)
			}
			return m.CheckedAt.UTC()
		}
		for _, step := range []struct {
			after      time.Duration
			fast, slow time.Duration // when each was last checked, after start
		}{
			{0, 0, 0},                                 // never checked: both due
			{40 * time.Second, 0, 0},                  // 40 s + half a tick is short of 60 s
			{50 * time.Second, 50 * time.Second, 0},   // 50 s + 10 s reaches it
			{90 * time.Second, 50 * time.Second, 0},   // 40 s since the last check
			{100 * time.Second, 100 * time.Second, 0}, // 50 s since it: due within half a tick
			{3590 * time.Second, 3590 * time.Second, 3590 * time.Second},
		} {
			clock = start.Add(step.after)
			if err := s.ProbeAll(ctx, func(string, ...any) {}); err != nil {
				t.Fatal(err)
			}
			if got, want := checkedAt(fast.ID), start.Add(step.fast); !got.Equal(want) {
				t.Errorf("at +%s fast was last checked at %s, want %s", step.after, got, want)
			}
			if got, want := checkedAt(slow.ID), start.Add(step.slow); !got.Equal(want) {
				t.Errorf("at +%s slow was last checked at %s, want %s", step.after, got, want)
			}
		}
	})
}

// A run of failed checks is one outage: opened by the first failure with
// its reason, counted while it lasts, ended by the next good check, by a
// new target or by turning the monitor off, and pruned with the counts.
func TestOutages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var status atomic.Int32
		status.Store(200)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(int(status.Load()))
		}))
		t.Cleanup(srv.Close)
		start := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
		clock := start
		s := New(db, Config{Now: func() time.Time { return clock }}, hclog.NewNullLogger())
		admin := audit.System("test")
		in := Input{Name: "web", Kind: KindHTTP, Target: srv.URL + "/", Enabled: true}
		m, _, err := s.Create(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		at := func(minutes int, code int32) {
			t.Helper()
			clock = start.Add(time.Duration(minutes) * time.Minute)
			status.Store(code)
			if _, err := s.Check(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		outages := func() []*ent.MonitorOutage {
			t.Helper()
			o, err := s.Outages(ctx, m.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		at(0, 200)
		if o := outages(); len(o) != 0 {
			t.Fatalf("outages while up: %+v", o)
		}
		at(1, 503)
		at(2, 500)
		o := outages()
		if len(o) != 1 || !o[0].StartedAt.Equal(start.Add(time.Minute)) || o[0].EndedAt != nil || o[0].Checks != 2 ||
			o[0].Message != "answered 503 Service Unavailable" {
			t.Fatalf("open outage: %+v", o)
		}
		at(3, 200)
		at(4, 503)
		if o = outages(); len(o) != 2 || o[1].EndedAt == nil || !o[1].EndedAt.Equal(start.Add(3*time.Minute)) || o[0].EndedAt != nil {
			t.Fatalf("after recovery and a new failure: %+v", o)
		}
		// Turning the monitor off ends the open outage.
		clock = start.Add(5 * time.Minute)
		in.Enabled = false
		if _, _, err := s.Update(ctx, admin, m.ID, in); err != nil {
			t.Fatal(err)
		}
		if o = outages(); o[0].EndedAt == nil || !o[0].EndedAt.Equal(clock) {
			t.Fatalf("outage of a monitor turned off: %+v", o[0])
		}
		// Back on and failing: a new open outage, which pruning keeps while
		// the ended ones past the retention go.
		in.Enabled = true
		if _, _, err := s.Update(ctx, admin, m.ID, in); err != nil {
			t.Fatal(err)
		}
		at(6, 500)
		clock = start.Add(Retention + time.Hour)
		if _, err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if o = outages(); len(o) != 1 || o[0].EndedAt != nil || !o[0].StartedAt.Equal(start.Add(6*time.Minute)) {
			t.Fatalf("after pruning: %+v", o)
		}
		if err := s.Delete(ctx, admin, m.ID); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.MonitorOutage.Query().CountX(ctx); n != 0 {
			t.Errorf("%d outages left after the monitor was deleted", n)
		}
	})
}

// An https target's certificate is verified against the roots and the
// target's host, as Go's client would, unless the monitor accepts any; its
// expiry is kept either way.
func TestProbeCertificates(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	cert := srv.Certificate() // self-signed for 127.0.0.1, ::1 and example.com
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	system := New(nil, Config{}, hclog.NewNullLogger())
	trusting := New(nil, Config{RootCAs: roots}, hclog.NewNullLogger())
	for _, tc := range []struct {
		name    string
		s       *Service
		spec    Spec
		ok      bool
		message string
		cert    bool
	}{
		{"trusted root, its address", trusting, Spec{Target: "https://127.0.0.1:" + port + "/"}, true, "", true},
		{"trusted root, another name", trusting, Spec{Target: "https://localhost:" + port + "/"}, false, "the TLS certificate is not valid: x509: certificate is valid for", true},
		{"unknown root", system, Spec{Target: "https://127.0.0.1:" + port + "/"}, false, "the TLS certificate is not valid: x509: certificate signed by unknown authority", true},
		{"unknown root accepted", system, Spec{Target: "https://127.0.0.1:" + port + "/", IgnoreTLSErrors: true}, true, "", true},
		{"another name accepted", trusting, Spec{Target: "https://localhost:" + port + "/", IgnoreTLSErrors: true}, true, "", true},
		{"plain http", system, Spec{Target: plain.URL + "/"}, true, "", false},
		{"tls, trusted root", trusting, Spec{Kind: KindTLS, Target: "127.0.0.1:" + port}, true, "", true},
		{"tls, another name", trusting, Spec{Kind: KindTLS, Target: "localhost:" + port}, false, "the TLS certificate is not valid: x509: certificate is valid for", true},
		{"tls, unknown root", system, Spec{Kind: KindTLS, Target: "127.0.0.1:" + port}, false, "certificate signed by unknown authority", true},
		{"tls, any accepted", system, Spec{Kind: KindTLS, Target: "127.0.0.1:" + port, IgnoreTLSErrors: true}, true, "", true},
		{"tls to a plain server", system, Spec{Kind: KindTLS, Target: plain.Listener.Addr().String()}, false, "", false},
	} {
		if tc.spec.Kind == "" {
			tc.spec.Kind = KindHTTP
		}
		tc.spec.Timeout = 5 * time.Second
		r := tc.s.Probe(context.Background(), tc.spec)
		if r.OK != tc.ok || !strings.Contains(r.Message, tc.message) {
			t.Errorf("%s: %+v", tc.name, r)
		}
		switch {
		case tc.cert && (r.CertNotAfter == nil || !r.CertNotAfter.Equal(cert.NotAfter)):
			t.Errorf("%s: certificate expiry %v, want %s", tc.name, r.CertNotAfter, cert.NotAfter)
		case !tc.cert && r.CertNotAfter != nil:
			t.Errorf("%s: certificate expiry %v without TLS", tc.name, r.CertNotAfter)
		}
	}
}

// A check keeps the certificate's expiry; a failed check that did not reach
// the handshake keeps the one before; a new target forgets it.
func TestCertificateKept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(srv.Close)
		s := New(db, Config{}, hclog.NewNullLogger())
		admin := audit.System("test")
		in := Input{Name: "api", Kind: KindHTTP, Target: srv.URL + "/", IgnoreTLSErrors: true, Enabled: true}
		m, _, err := s.Create(ctx, admin, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Check(ctx, m.ID)
		if err != nil || !got.Ok || got.CertNotAfter == nil || !got.CertNotAfter.Equal(srv.Certificate().NotAfter) {
			t.Fatalf("after a check: %+v %v", got, err)
		}
		srv.Close()
		if got, err = s.Check(ctx, m.ID); err != nil || got.Ok || got.CertNotAfter == nil {
			t.Errorf("after a refused connection: %+v %v", got, err)
		}
		in.Target = "https://127.0.0.1:1/"
		if got, _, err = s.Update(ctx, admin, m.ID, in); err != nil || got.CertNotAfter != nil {
			t.Errorf("after a new target: %+v %v", got, err)
		}
	})
}

// A monitor that was already failing before it had any outage on record
// (outages came with an upgrade) gets an outage from the start of its run,
// as "down since" shows it.
func TestOutageOfARunBeforeRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
		s := New(db, Config{Now: func() time.Time { return clock }}, hclog.NewNullLogger())
		started := clock.Add(-3 * time.Hour)
		m := db.Client.Monitor.Create().SetName("db").SetKind("tcp").SetTarget(closedPort(t)).SetCheckedAt(clock.Add(-time.Minute)).
			SetOk(false).SetFailingSince(started).SaveX(ctx)
		if _, err := s.Check(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		o, err := s.Outages(ctx, m.ID, 5)
		if err != nil || len(o) != 1 || !o[0].StartedAt.Equal(started) {
			t.Fatalf("outages: %+v %v", o, err)
		}
	})
}

// With retries, a monitor stays up (retrying) through that many failed
// checks in a row; the next failure makes it down, with the run and its
// outage dated from the first failure; a good check clears the count.
func TestRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var status atomic.Int32
		status.Store(200)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
		t.Cleanup(srv.Close)
		start := time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
		clock := start
		s := New(db, Config{Now: func() time.Time { return clock }}, hclog.NewNullLogger())
		m, _, err := s.Create(ctx, audit.System("test"), Input{Name: "api", Kind: KindHTTP, Target: srv.URL + "/", Retries: 2, Enabled: true})
		if err != nil || m.Retries != 2 {
			t.Fatalf("create: %+v %v", m, err)
		}
		at := func(minutes int, code int32) *ent.Monitor {
			t.Helper()
			clock = start.Add(time.Duration(minutes) * time.Minute)
			status.Store(code)
			got, err := s.Check(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		// An outage ended long ago does not hold the next one's start back.
		at(0, 500)
		at(1, 500)
		at(2, 500)
		at(3, 200)
		for i, step := range []struct {
			minutes  int
			code     int32
			ok       bool
			failed   int
			since    int // minutes; -1 for none
			outages  int
			openedAt int
		}{
			{10, 500, true, 1, 10, 1, 0},
			{11, 503, true, 2, 10, 1, 0},
			{12, 500, false, 3, 10, 2, 10},
			{13, 500, false, 4, 10, 2, 10},
			{14, 200, true, 0, -1, 2, 10},
		} {
			got := at(step.minutes, step.code)
			since := -1
			if got.FailingSince != nil {
				since = int(got.FailingSince.Sub(start) / time.Minute)
			}
			if got.Ok != step.ok || got.FailedChecks != step.failed || since != step.since {
				t.Errorf("step %d: ok %v, failed %d, failing since %d", i, got.Ok, got.FailedChecks, since)
			}
			o, err := s.Outages(ctx, m.ID, 5)
			if err != nil || len(o) != step.outages || !o[0].StartedAt.Equal(start.Add(time.Duration(step.openedAt)*time.Minute)) {
				t.Errorf("step %d: outages %+v %v", i, o, err)
			}
		}
		if _, err := Validate(Input{Name: "x", Kind: KindTCP, Target: "db:1", Retries: 11}); err == nil || err.(FieldErrors)["retries"] == "" {
			t.Errorf("eleven retries: %v", err)
		}
	})
}
