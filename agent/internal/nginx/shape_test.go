package nginx

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/nginxtest"
)

// The benchmarks apply domains in two shapes:
//
//   - rendered: server blocks exactly as the controller renders them, taken
//     from testdata/rendered (written by the controller's
//     TestAgentBenchmarkReleaseIsCurrent from the shape of its render
//     benchmark): an ACME challenge location, a proxy route, a WebSocket
//     route and a redirect per domain, every second domain also with TLS
//     (HTTP/2, HSTS, force-HTTPS), over eight upstreams with keepalive;
//   - rendered-notls: the same without TLS, every domain built from the
//     rendered domains that have none;
//   - minimal: one listen, one name and one fixed answer per domain, the
//     smallest server block nginx accepts, which no Gatehouse domain is.
const (
	shapeRendered      = "rendered"
	shapeRenderedNoTLS = "rendered-notls"
	shapeMinimal       = "minimal"
)

// renderedRoot is the placeholder root of the controller's test renders.
const renderedRoot = "/srv/gatehouse-test"

// renderedTemplates are the eight rendered domains; domain i is built from
// template i%8 with its names changed.
const renderedTemplates = 8

// domainSet builds the files of a release of n domains in one shape, on the
// fixture's ports, and changes one domain per revision.
type domainSet struct {
	shape   string
	port    int
	tlsPort int
	fixed   []File   // rendered: the http-level file and the upstreams
	domains []string // rendered: the domain templates
}

func newDomainSet(t testing.TB, shape string, root string) *domainSet {
	t.Helper()
	s := &domainSet{shape: shape, port: freePort(t)}
	if shape == shapeMinimal {
		return s
	}
	s.tlsPort = freePort(t)
	dir := filepath.Join("testdata", "rendered", "http")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.domains = make([]string, renderedTemplates)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := s.localize(string(data), root)
		name := e.Name()
		if k, ok := strings.CutPrefix(name, "domain-tenant-"); ok {
			i, err := strconv.Atoi(strings.TrimSuffix(k, ".example.com.conf"))
			if err != nil || i < 0 || i >= renderedTemplates {
				t.Fatalf("unexpected fixture %s", name)
			}
			s.domains[i] = text
			continue
		}
		if name == "00-gatehouse.conf" {
			// The node's nginx.conf of the fixture sizes the server-name
			// hash for the largest benchmark, as the renderer does for it.
			text = dropLines(text, "server_names_hash_")
		}
		s.fixed = append(s.fixed, File{Path: "http/" + name, Content: []byte(text)})
	}
	for i, d := range s.domains {
		if d == "" {
			t.Fatalf("fixture for domain %d missing from %s", i, dir)
		}
	}
	tls := filepath.Join(root, "tls")
	if err := os.MkdirAll(tls, 0o755); err != nil {
		t.Fatal(err)
	}
	nginxtest.WriteSelfSigned(t, filepath.Join(tls, "cert.pem"), filepath.Join(tls, "key.pem"), "*.example.com")
	return s
}

// localize points a rendered file at the fixture: its root, and loopback
// ports instead of 80 and 443 (the IPv6 listeners move to 127.0.0.2, so each
// server keeps its two listen sockets).
func (s *domainSet) localize(text, root string) string {
	return strings.NewReplacer(
		renderedRoot, root,
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", s.port),
		"listen [::]:80;", fmt.Sprintf("listen 127.0.0.2:%d;", s.port),
		"listen 443 ssl", fmt.Sprintf("listen 127.0.0.1:%d ssl", s.tlsPort),
		"listen [::]:443 ssl", fmt.Sprintf("listen 127.0.0.2:%d ssl", s.tlsPort),
	).Replace(text)
}

func dropLines(text, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(line, prefix) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func domainName(i int) string { return "tenant-" + strconv.Itoa(i) + ".example.com" }

// domain is domain i's file at revision rev: its answer (minimal) or its
// redirect target (rendered) carries the revision.
func (s *domainSet) domain(i int, rev uint64) File {
	name := domainName(i)
	if s.shape == shapeMinimal {
		return File{Path: "http/" + name + ".conf", Content: []byte(server(s.port, name, fmt.Sprintf("%s r%d", name, rev)))}
	}
	k := i % renderedTemplates
	if s.shape == shapeRenderedNoTLS {
		k = 2*(i%(renderedTemplates/2)) + 1 // the odd ones have no TLS
	}
	text := strings.ReplaceAll(s.domains[k], domainName(k), name)
	text = strings.ReplaceAll(text, name+"/new;", fmt.Sprintf("%s/new-r%d;", name, rev))
	return File{Path: "http/domain-" + name + ".conf", Content: []byte(text)}
}

// release is n domains at revision 1 plus the shape's fixed files.
func (s *domainSet) release(n int) []File {
	files := append([]File(nil), s.fixed...)
	for i := range n {
		files = append(files, s.domain(i, 1))
	}
	return files
}

// changeable is the domain a revision changes: for the rendered shapes always
// one without TLS, so that its redirect can be checked over plain HTTP.
func (s *domainSet) changeable(n int, rev uint64) int {
	if s.shape == shapeMinimal {
		return int(rev) % n
	}
	return (2*int(rev) + 1) % n
}

// wantRevision checks that nginx serves domain i at revision rev.
func (s *domainSet) wantRevision(t testing.TB, i int, rev uint64) {
	t.Helper()
	name := domainName(i)
	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	path := "/"
	if s.shape != shapeMinimal {
		path = "/old"
	}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = name
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", name, path, err)
	}
	defer resp.Body.Close()
	if s.shape != shapeMinimal {
		want := fmt.Sprintf("https://%s/new-r%d", name, rev)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Fatalf("GET %s/old = %d to %q, want 301 to %q", name, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		return
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s r%d", name, rev); resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s = %d %q, want 200 %q", name, resp.StatusCode, body, want)
	}
}

// TestBenchmarkShapesApply keeps the benchmarks' releases honest: both shapes
// apply through the applier on real nginx, and a changed domain is served.
func TestBenchmarkShapesApply(t *testing.T) {
	t.Parallel()
	for _, shape := range []string{shapeRendered, shapeRenderedNoTLS, shapeMinimal} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			set := newDomainSet(t, shape, f.dir)
			const n = 16
			files := set.release(n)
			f.mustApply(Release{Revision: 1, Files: files})
			k := set.changeable(n, 2)
			files[len(files)-n+k] = set.domain(k, 2)
			f.mustApply(Release{Revision: 2, Files: files})
			f.settle()
			set.wantRevision(t, k, 2)
			set.wantRevision(t, set.changeable(n, 3), 1)
		})
	}
}
