package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// MaxPluginBytes bounds a response fetched through Plugin.
	MaxPluginBytes = 4 << 20
	// MaxSampleBytes bounds each response fetched to build a Sample.
	MaxSampleBytes = 1 << 20
	// maxPluginsList bounds the number of names accepted from pluginslist.
	maxPluginsList = 512
)

// allowedPlugins lists the Glances plugins that may be fetched on demand. It
// covers the plugins of Glances 3.3 and 4.x; anything else is refused before a
// request is made, so a caller cannot steer the agent to other paths.
var allowedPlugins = map[string]struct{}{
	"alert": {}, "amps": {}, "cloud": {}, "connections": {}, "containers": {}, "core": {},
	"cpu": {}, "diskio": {}, "docker": {}, "folders": {}, "fs": {}, "gpu": {}, "hddtemp": {},
	"ip": {}, "irq": {}, "load": {}, "mem": {}, "memswap": {}, "network": {}, "now": {},
	"npu": {}, "percpu": {}, "ports": {}, "processcount": {}, "processlist": {},
	"programlist": {}, "psutilversion": {}, "quicklook": {}, "raid": {}, "sensors": {},
	"smart": {}, "system": {}, "uptime": {}, "version": {}, "vms": {}, "wifi": {},
}

// AllowedPlugin reports whether name is a Glances plugin the agent may fetch.
func AllowedPlugin(name string) bool {
	_, ok := allowedPlugins[name]
	return ok
}

// samplePlugins are fetched, in this order, to build a Sample. cpu and mem
// are required; the others are skipped when Glances lacks or fails them.
var samplePlugins = []string{
	"cpu", "percpu", "load", "mem", "memswap", "fs", "network", "diskio",
	"uptime", "processcount", "sensors",
}

func requiredPlugin(name string) bool { return name == "cpu" || name == "mem" }

// Glances reads a Glances REST API server. It detects the API version (4,
// then 3) on first use and again after any failure. Safe for concurrent use.
type Glances struct {
	base   string
	err    error // set when the base URL is unusable
	client *http.Client
	log    hclog.Logger
	now    func() time.Time

	mu      sync.Mutex
	version int                 // 0 until detected
	plugins map[string]struct{} // plugins the server reported

	sampleMu sync.Mutex
	buf      bytes.Buffer // reused by Sample; guarded by sampleMu
	skipped  map[string]string
}

// NewGlances returns a Glances source for baseURL (like
// http://127.0.0.1:61208). A nil client gets a default one with a 5 s
// timeout. Redirects are never followed. An unusable baseURL is reported by
// every call.
func NewGlances(baseURL string, client *http.Client, log hclog.Logger) *Glances {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var c http.Client
	if client != nil {
		c = *client
	} else {
		c.Timeout = 5 * time.Second
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("glances redirects are not followed")
	}
	base, err := checkBaseURL(baseURL)
	return &Glances{
		base:    base,
		err:     err,
		client:  &c,
		log:     log,
		now:     time.Now,
		skipped: make(map[string]string),
	}
}

func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("glances url %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("glances url %q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("glances url %q: host is missing", raw)
	case u.User != nil:
		return "", fmt.Errorf("glances url %q: credentials in the url are not supported", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("glances url %q: query and fragment are not allowed", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Name returns "glances".
func (g *Glances) Name() string { return SourceGlances }

// Version returns the detected API version (3 or 4), or 0 before detection
// or after a failure.
func (g *Glances) Version() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.version
}

// Plugin returns the raw JSON of one Glances plugin. name must pass
// AllowedPlugin and be provided by the server. Bare NaN and Infinity tokens,
// which Python's encoder emits, are replaced by null so the result is valid
// JSON.
func (g *Glances) Plugin(ctx context.Context, name string) (json.RawMessage, error) {
	if !AllowedPlugin(name) {
		return nil, fmt.Errorf("glances plugin %q is not allowed", cleanName(name))
	}
	version, plugins, err := g.detect(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := plugins[name]; !ok {
		return nil, fmt.Errorf("glances does not provide plugin %q; enable it in glances.conf", name)
	}
	var buf bytes.Buffer
	body, err := g.get(ctx, version, name, MaxPluginBytes, &buf)
	if err != nil {
		g.failed(err)
		return nil, err
	}
	body = sanitizeJSON(body)
	if !json.Valid(body) {
		return nil, fmt.Errorf("glances plugin %q: response is not valid json", name)
	}
	out := make(json.RawMessage, len(body))
	copy(out, body)
	return out, nil
}

// Sample fetches the plugins a Sample needs, one request each, and maps them.
func (g *Glances) Sample(ctx context.Context) (Sample, error) {
	version, plugins, err := g.detect(ctx)
	if err != nil {
		return Sample{}, err
	}
	g.sampleMu.Lock()
	defer g.sampleMu.Unlock()

	s := Sample{Time: g.now(), Source: SourceGlances}
	for _, name := range samplePlugins {
		if _, ok := plugins[name]; !ok {
			if requiredPlugin(name) {
				return Sample{}, fmt.Errorf("glances does not provide the %q plugin", name)
			}
			continue
		}
		body, err := g.get(ctx, version, name, MaxSampleBytes, &g.buf)
		if err == nil {
			err = mapPlugin(&s, name, sanitizeJSON(body))
		}
		if err == nil {
			delete(g.skipped, name)
			continue
		}
		var se *statusError
		if requiredPlugin(name) || (!errors.As(err, &se) && !errors.Is(err, errBadJSON)) {
			// Transport failures and broken required plugins mean Glances
			// cannot be relied on: detect the API again next time.
			g.failed(err)
			return Sample{}, err
		}
		if g.skipped[name] != err.Error() {
			g.log.Warn("skipping glances plugin", "plugin", name, "error", err)
			g.skipped[name] = err.Error()
		}
	}
	return s, nil
}

// detect returns the API version and plugin set, asking the server when
// they are not known yet.
func (g *Glances) detect(ctx context.Context) (int, map[string]struct{}, error) {
	if g.err != nil {
		return 0, nil, g.err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.version != 0 {
		return g.version, g.plugins, nil
	}
	var errs []error
	for _, v := range []int{4, 3} {
		var buf bytes.Buffer
		body, err := g.get(ctx, v, "pluginslist", MaxSampleBytes, &buf)
		if err == nil {
			var names []string
			if err = json.Unmarshal(body, &names); err != nil {
				err = fmt.Errorf("glances api v%d pluginslist: %w", v, errBadJSON)
			} else if len(names) > maxPluginsList {
				err = fmt.Errorf("glances api v%d pluginslist: more than %d plugins", v, maxPluginsList)
			}
			if err == nil {
				set := make(map[string]struct{}, len(names))
				for _, n := range names {
					set[n] = struct{}{}
				}
				g.version, g.plugins = v, set
				g.log.Debug("glances api detected", "version", v, "plugins", len(set))
				return v, set, nil
			}
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return 0, nil, fmt.Errorf("glances api not reachable at %s: %w", g.base, errors.Join(errs...))
}

// failed forgets the detected version so the next call detects it again.
func (g *Glances) failed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.version != 0 {
		g.log.Debug("glances request failed; will detect the api again", "error", err)
	}
	g.version, g.plugins = 0, nil
}

type statusError struct {
	path string
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("glances %s: http status %d", e.path, e.code)
}

var errBadJSON = errors.New("response is not the expected json")

// get fetches /api/<version>/<name> into buf, reading at most limit bytes.
func (g *Glances) get(ctx context.Context, version int, name string, limit int64, buf *bytes.Buffer) ([]byte, error) {
	path := fmt.Sprintf("/api/%d/%s", version, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("glances %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("glances %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &statusError{path: path, code: resp.StatusCode}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("glances %s: response of %d bytes exceeds the %d byte limit", path, resp.ContentLength, limit)
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("glances %s: reading response: %w", path, err)
	}
	if n > limit {
		return nil, fmt.Errorf("glances %s: response exceeds the %d byte limit", path, limit)
	}
	return buf.Bytes(), nil
}

// sanitizeJSON replaces the bare NaN, Infinity and -Infinity tokens that
// Python's json module writes with null. It returns b itself when there are
// none.
func sanitizeJSON(b []byte) []byte {
	var out []byte
	last := 0
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		var n int
		switch c {
		case '"':
			inString = true
			continue
		case 'N':
			if bytes.HasPrefix(b[i:], []byte("NaN")) {
				n = 3
			}
		case 'I':
			if bytes.HasPrefix(b[i:], []byte("Infinity")) {
				n = 8
			}
		case '-':
			if bytes.HasPrefix(b[i:], []byte("-Infinity")) {
				n = 9
			}
		}
		if n == 0 {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b)+8)
		}
		out = append(out, b[last:i]...)
		out = append(out, "null"...)
		last = i + n
		i += n - 1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}
