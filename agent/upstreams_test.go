package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

var probeCmd = &agentv1.Command{Kind: &agentv1.Command_ProbeUpstreams{ProbeUpstreams: &agentv1.ProbeUpstreams{}}}

// acceptAll listens on a loopback port and accepts until the test ends.
func acceptAll(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// writeRelease lays out a release as the applier does: the files under
// releases/<rev>/ of the managed dir and `current` pointing there.
func writeRelease(t *testing.T, dir string, rev int, files map[string]string) {
	t.Helper()
	rel := filepath.Join(dir, "releases", fmt.Sprint(rev))
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(rel, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join("releases", fmt.Sprint(rev)), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
}

func runProbe(t *testing.T, a *Agent) *agentv1.CommandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return a.execute(ctx, probeCmd)
}

func TestProbeUpstreams(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t, nil)
	open, db, outsideAddr := acceptAll(t), acceptAll(t), acceptAll(t)
	_, openPort, _ := net.SplitHostPort(open)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	writeRelease(t, a.cfg.NginxDir, 7, map[string]string{
		"http/upstream-app.conf": fmt.Sprintf(`# Managed by Gatehouse; changes are overwritten by the next release.
upstream app {
    least_conn;
    server %s weight=5 max_fails=3 fail_timeout=30s;
    server %s;
    server localhost:%s backup;
    server 127.0.0.2:1 down;
    server unix:/run/app.sock;
    keepalive 32;
}
`, open, closed, openPort),
		"stream/stream-db.conf": fmt.Sprintf(`# Managed by Gatehouse; changes are overwritten by the next release.
upstream gatehouse_stream_db {
    server %s;
}

server {
    listen 15432;
    listen [::]:15432;
    proxy_pass gatehouse_stream_db;
}
`, db),
		"stream/stream-dns.conf": `upstream gatehouse_stream_dns {
    server 127.0.0.1:1;
}

server {
    listen 53 udp;
    proxy_pass gatehouse_stream_dns;
}
`,
	})
	// A file of the release that is a symlink out of the managed dir is
	// not read, though nginx would follow it.
	outside := filepath.Join(t.TempDir(), "upstream-outside.conf")
	if err := os.WriteFile(outside, []byte("upstream outside { server "+outsideAddr+"; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(a.cfg.NginxDir, "releases/7/http/upstream-outside.conf")); err != nil {
		t.Fatal(err)
	}

	res := runProbe(t, a)
	if res.GetError() != nil {
		t.Fatalf("probe failed: %v", res.GetError())
	}
	got := res.GetUpstreamProbe()
	if got.GetRevision() != 7 {
		t.Fatalf("revision = %d, want 7", got.GetRevision())
	}
	want := []*agentv1.TargetProbe{
		{Upstream: "app", Address: open, Ok: true},
		{Upstream: "app", Address: closed, Error: "connection refused"},
		{Upstream: "app", Address: "localhost:" + openPort, Ok: true},
		{Upstream: "gatehouse_stream_db", Address: db, Ok: true},
	}
	targets := got.GetTargets()
	if len(targets) != len(want) {
		t.Fatalf("targets = %v, want %d of them", targets, len(want))
	}
	for i, w := range want {
		g := targets[i]
		if g.GetUpstream() != w.GetUpstream() || g.GetAddress() != w.GetAddress() || g.GetOk() != w.GetOk() || g.GetError() != w.GetError() {
			t.Errorf("target %d = %v, want %v", i, g, w)
		}
		// Every attempt takes some time, rounded up to the millisecond.
		if g.GetLatencyMs() == 0 {
			t.Errorf("target %d = %v: no latency", i, g)
		}
	}
}

func TestProbeUpstreamsWithoutRelease(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t, nil)
	res := runProbe(t, a)
	if res.GetError() != nil || res.GetUpstreamProbe() == nil || res.GetUpstreamProbe().GetRevision() != 0 || len(res.GetUpstreamProbe().GetTargets()) != 0 {
		t.Fatalf("got %v, want revision 0 and no targets", res)
	}
	if _, err := os.Stat(a.cfg.NginxDir); !os.IsNotExist(err) {
		t.Fatalf("probing created the managed dir: %v", err)
	}
	// A managed dir with releases but none current is the same.
	if err := os.MkdirAll(filepath.Join(a.cfg.NginxDir, "releases", "3", "http"), 0o755); err != nil {
		t.Fatal(err)
	}
	res = runProbe(t, a)
	if res.GetError() != nil || res.GetUpstreamProbe().GetRevision() != 0 || len(res.GetUpstreamProbe().GetTargets()) != 0 {
		t.Fatalf("got %v, want revision 0 and no targets", res)
	}
}

// A current link that leads out of the managed dir is refused, not read.
func TestProbeUpstreamsRefusesCurrentOutsideManagedDir(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t, nil)
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "http"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "http", "upstream-x.conf"), []byte("upstream x { server "+acceptAll(t)+"; }"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(a.cfg.NginxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(a.cfg.NginxDir, "current")); err != nil {
		t.Fatal(err)
	}
	res := runProbe(t, a)
	e := res.GetError()
	if e.GetCode() != agentv1.ErrorCode_ERROR_CODE_FAILED || !strings.Contains(e.GetMessage(), "not to a managed release") || res.GetUpstreamProbe() != nil {
		t.Fatalf("got %v, want FAILED about the current link", res)
	}
}

func TestLatencyMS(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]uint32{
		0:                      0,
		-time.Second:           0,
		time.Nanosecond:        1,
		time.Millisecond:       1,
		time.Millisecond + 1:   2,
		3 * time.Second:        3000,
		time.Duration(1 << 62): 1<<32 - 1,
	} {
		if got := latencyMS(d); got != want {
			t.Errorf("latencyMS(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestWithReplyReserve(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	pctx, pcancel := withReplyReserve(ctx)
	defer pcancel()
	if d, _ := pctx.Deadline(); !d.Equal(deadline.Add(-maxReplyReserve)) {
		t.Fatalf("probe deadline %v before the command's, want %v", deadline.Sub(d), maxReplyReserve)
	}
	bare, bcancel := withReplyReserve(context.Background())
	defer bcancel()
	if _, ok := bare.Deadline(); ok {
		t.Fatal("a context without deadline got one")
	}
}

// What the release holds that cannot be probed is logged as a warning when
// it changes, not on every probe.
func TestProbeUpstreamsWarnsOnceAboutIgnoredLines(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t, nil)
	var buf bytes.Buffer
	a.log = hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	writeRelease(t, a.cfg.NginxDir, 2, map[string]string{"http/upstream-a.conf": "upstream a { server nope; }\n"})
	warnings := func() int { return strings.Count(buf.String(), "[WARN]") }
	for range 3 {
		if res := runProbe(t, a); res.GetError() != nil || len(res.GetUpstreamProbe().GetTargets()) != 0 {
			t.Fatalf("got %v, want no targets", res)
		}
	}
	if n := warnings(); n != 1 || !strings.Contains(buf.String(), `server \"nope\": not host:port`) {
		t.Fatalf("%d warnings, want 1 naming the line:\n%s", n, buf.String())
	}
	if err := os.WriteFile(filepath.Join(a.cfg.NginxDir, "releases/2/http/upstream-b.conf"), []byte("upstream b { server also-bad; }"), 0o644); err != nil {
		t.Fatal(err)
	}
	runProbe(t, a)
	if n := warnings(); n != 2 {
		t.Fatalf("%d warnings after a change, want 2:\n%s", n, buf.String())
	}
}
