// Package ui holds the controller's web pages: html/template files, the
// stylesheet and small vanilla JavaScript, embedded into the binary. Pages
// render and read without JavaScript; scripts only open modal dialogs and
// apply live updates.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"golang.org/x/net/idna"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates static
var files embed.FS

// Page is what every page template receives.
type Page struct {
	Title   string
	Nav     []NavItem // navigation the viewer may use
	Active  string    // path of the active navigation item
	Viewer  *Viewer   // nil when nobody is signed in
	Flash   *Flash
	Version string
	Asset   string // cache-busting suffix for static files
	Data    any    // the page's own data
}

// NavItem is one navigation link, or a menu of links when Items is set.
type NavItem struct {
	Label string
	Path  string // empty for a menu
	// Current marks the page shown, or a menu holding it.
	Current bool
	Items   []NavItem
}

// Viewer is the signed-in user as the layout shows them.
type Viewer struct {
	Username string
	Admin    bool
}

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind    string // "success" or "error"
	Message string
}

// Renderer renders the embedded pages.
type Renderer struct {
	pages map[string]*template.Template
	asset string
}

// Funcs are the helpers templates may call.
func Funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"ago": func(t any) string { return ago(now(), t) },
		// past reports whether a time is before now (an expiry gone by).
		"past":     func(t any) bool { v, ok := toTime(t); return ok && v.Before(now()) },
		"datetime": func(t any) string { return formatTime(t, time.RFC3339) },
		"when":     func(t any) string { return formatTime(t, "2006-01-02 15:04 MST") },
		"bytes":    HumanBytes,
		// words turns a stored code such as reload_failed into words.
		"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
		// unicode is the Unicode form of a punycode (IDN) name, or "" when the
		// name has none.
		"unicode": unicodeName,
		"uptime":  humanUptime,
		"join":    strings.Join,
		"initial": func(s string) string {
			if s == "" {
				return "?"
			}
			return strings.ToUpper(s[:1])
		},
	}
}

// New parses every page with the layout and partials.
func New(now func() time.Time) (*Renderer, error) {
	if now == nil {
		now = time.Now
	}
	base, err := template.New("layout").Funcs(Funcs(now)).ParseFS(files, "templates/layout.html", "templates/partials/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/pages/*.html")
	if err != nil {
		return nil, err
	}
	r := &Renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		r.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	h := sha256.New()
	fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := files.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	r.asset = hex.EncodeToString(h.Sum(nil))[:12]
	return r, nil
}

// Asset is the cache-busting version of the static files.
func (r *Renderer) Asset() string { return r.asset }

// Has reports whether a page template exists.
func (r *Renderer) Has(page string) bool { _, ok := r.pages[page]; return ok }

// Render writes page with data. The page is rendered fully before anything
// is written, so a template error never leaves half a page behind.
func (r *Renderer) Render(w io.Writer, page string, data Page) error {
	t, ok := r.pages[page]
	if !ok {
		return fmt.Errorf("no page template %q", page)
	}
	data.Asset = r.asset
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Static serves the embedded static files under the path they are mounted at
// (strip the prefix first). Requests carrying the current asset version are
// cached for a year; others must revalidate.
func (r *Renderer) Static() http.Handler {
	sub, _ := fs.Sub(files, "static")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/") || req.URL.Path == "" {
			http.NotFound(w, req) // no directory listings
			return
		}
		if req.URL.Query().Get("v") == r.asset {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		fsrv.ServeHTTP(w, req)
	})
}

func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

func formatTime(v any, layout string) string {
	t, ok := toTime(v)
	if !ok {
		return ""
	}
	return t.UTC().Format(layout)
}

// ago renders how long before now t was, coarsely, for people.
func ago(now time.Time, v any) string {
	t, ok := toTime(v)
	if !ok {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		return "just now"
	case d < 90*time.Minute:
		s = plural(int((d+30*time.Second)/time.Minute), "minute")
	case d < 36*time.Hour:
		s = plural(int((d+30*time.Minute)/time.Hour), "hour")
	default:
		s = plural(int((d+12*time.Hour)/(24*time.Hour)), "day")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// HumanBytes formats a byte count (any integer or float) with binary units.
func HumanBytes(v any) string {
	var f float64
	switch n := v.(type) {
	case uint64:
		f = float64(n)
	case int64:
		f = float64(n)
	case int:
		f = float64(n)
	case uint32:
		f = float64(n)
	case float64:
		f = n
	default:
		return "?"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// humanUptime formats seconds as days, hours and minutes.
func humanUptime(v any) string {
	var s uint64
	switch n := v.(type) {
	case uint64:
		s = n
	case int64:
		s = uint64(max(n, 0))
	case int:
		s = uint64(max(n, 0))
	default:
		return "?"
	}
	d, h, m := s/86400, s%86400/3600, s%3600/60
	switch {
	case d > 0:
		return fmt.Sprintf("%dd %dh %dm", d, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		return fmt.Sprintf("%dm", m)
	}
}

// unicodeName returns the Unicode form of name when one of its labels is
// punycode ("xn--") and decodes, else "".
func unicodeName(name string) string {
	if !strings.Contains(name, "xn--") {
		return ""
	}
	u, err := idna.Display.ToUnicode(name)
	if err != nil || u == name {
		return ""
	}
	return u
}
