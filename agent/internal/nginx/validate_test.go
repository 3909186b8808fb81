package nginx

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestReleaseValidate(t *testing.T) {
	t.Parallel()
	ok := func(p string) File { return File{Path: p, Content: []byte("x")} }
	cases := []struct {
		name string
		rel  Release
		want string // substring of the error; "" means valid
	}{
		{"valid", Release{Revision: 1, Files: []File{ok("http/a.example.com.conf"), ok("streams/x_y-z.conf"), ok("top.conf")}}, ""},
		{"empty release is valid", Release{Revision: 1}, ""},
		{"zero revision", Release{Revision: 0, Files: []File{ok("a.conf")}}, "revision: must be greater than 0"},
		{"parent escape", Release{Revision: 1, Files: []File{ok("../etc/passwd")}}, `file[0] path "../etc/passwd": must not contain ..`},
		{"inner escape", Release{Revision: 1, Files: []File{ok("http/../../x")}}, "must not contain .."},
		{"absolute", Release{Revision: 1, Files: []File{ok("/etc/nginx/nginx.conf")}}, "must be relative"},
		{"double slash", Release{Revision: 1, Files: []File{ok("http//a.conf")}}, "empty components"},
		{"trailing slash", Release{Revision: 1, Files: []File{ok("http/")}}, "empty components"},
		{"dot component", Release{Revision: 1, Files: []File{ok("./a.conf")}}, "must be clean"},
		{"hidden manifest", Release{Revision: 1, Files: []File{ok(".manifest.json")}}, "must not start with a dot"},
		{"hidden nested", Release{Revision: 1, Files: []File{ok("http/.x")}}, "must not start with a dot"},
		{"empty path", Release{Revision: 1, Files: []File{ok("")}}, "must not be empty"},
		{"nul byte", Release{Revision: 1, Files: []File{ok("a\x00b")}}, "not allowed"},
		{"space", Release{Revision: 1, Files: []File{ok("a b.conf")}}, `character ' ' not allowed`},
		{"newline", Release{Revision: 1, Files: []File{ok("a\nb")}}, "not allowed"},
		{"backslash", Release{Revision: 1, Files: []File{ok(`a\b`)}}, "not allowed"},
		{"glob", Release{Revision: 1, Files: []File{ok("http/*.conf")}}, "not allowed"},
		{"unicode", Release{Revision: 1, Files: []File{ok("http/ünï.conf")}}, "not allowed"},
		{"too long", Release{Revision: 1, Files: []File{ok(strings.Repeat(strings.Repeat("a", 100)+"/", 3) + "b")}}, "longer than 255"},
		{"too deep", Release{Revision: 1, Files: []File{ok("a/b/c/d/e/f/g/h/i.conf")}}, "levels deep"},
		{"long component", Release{Revision: 1, Files: []File{ok(strings.Repeat("a", 129))}}, "component longer"},
		{"duplicate", Release{Revision: 1, Files: []File{ok("a.conf"), ok("a.conf")}}, "duplicate of file[0]"},
		{"file and dir", Release{Revision: 1, Files: []File{ok("http"), ok("http/a.conf")}}, `"http": is also used as a directory`},
		{"too big", Release{Revision: 1, Files: []File{{Path: "big", Content: make([]byte, MaxFileSize+1)}}}, "bytes, at most"},
		{"exec mode", Release{Revision: 1, Files: []File{{Path: "a", Mode: 0o755}}}, "execute bits"},
		{"setuid mode", Release{Revision: 1, Files: []File{{Path: "a", Mode: fs.ModeSetuid | 0o644}}}, "only permission bits"},
		{"symlink mode", Release{Revision: 1, Files: []File{{Path: "a", Mode: fs.ModeSymlink | 0o644}}}, "only permission bits"},
		{"unreadable mode", Release{Revision: 1, Files: []File{{Path: "a", Mode: 0o044}}}, "readable by its owner"},
		{"private key mode", Release{Revision: 1, Files: []File{{Path: "tls/k.pem", Mode: 0o600}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.rel.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an InvalidError containing %q", err, tc.want)
			}
		})
	}
}

func TestReleaseValidateTooManyFiles(t *testing.T) {
	t.Parallel()
	rel := Release{Revision: 1, Files: make([]File, MaxFiles+1)}
	for i := range rel.Files {
		rel.Files[i] = File{Path: "f" + releaseName(uint64(i+1))}
	}
	if err := rel.Validate(); err == nil || !strings.Contains(err.Error(), "at most 50000 allowed") {
		t.Fatalf("Validate() = %v", err)
	}
}

// A hostile release is refused before anything is written, in or out of Dir.
func TestApplyRefusesHostileReleaseWithoutWriting(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "gatehouse")
	a, err := New(nil, Config{Dir: dir, NginxBinary: "/nonexistent/nginx", PIDFile: filepath.Join(base, "pid")})
	if err != nil {
		t.Fatal(err)
	}
	rel := Release{Revision: 3, Files: []File{
		{Path: "http/ok.conf", Content: []byte("# fine\n")},
		{Path: "../../escape.conf", Content: []byte("owned\n")},
	}}
	o, err := a.Apply(context.Background(), rel)
	var inv *InvalidError
	if !errors.As(err, &inv) || o.Code != 0 {
		t.Fatalf("Apply = %+v, %v; want an InvalidError and no outcome", o, err)
	}
	if _, err := os.Stat(filepath.Join(base, "escape.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file written outside Dir: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "releases"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("releases = %v, %v; want empty", entries, err)
	}
}

func TestNewRefusesSymlinkedLayout(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"releases", "acme", "acme/.well-known/acme-challenge"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			dir := filepath.Join(base, "gatehouse")
			outside := filepath.Join(base, "outside")
			mustDo(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, sub)), 0o755))
			mustDo(t, os.Mkdir(outside, 0o755))
			mustDo(t, os.Symlink(outside, filepath.Join(dir, sub)))
			_, err := New(nil, Config{Dir: dir})
			if err == nil || !strings.Contains(err.Error(), "is not a directory") {
				t.Fatalf("New with %s as a symlink: %v", sub, err)
			}
		})
	}
}

// Drift refuses a current link that leads anywhere but a managed release.
func TestDriftRefusesForeignCurrentLink(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "gatehouse")
	a, err := New(nil, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := a.Drift(); err != nil || d.Revision != 0 || !d.Clean() {
		t.Fatalf("Drift with nothing applied = %+v, %v; want zero", d, err)
	}
	mustDo(t, os.Symlink("/etc", filepath.Join(dir, "current")))
	if _, err := a.Drift(); err == nil || !strings.Contains(err.Error(), `points to "/etc"`) {
		t.Fatalf("Drift = %v, want a refusal naming the target", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := Config{}.withDefaults()
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"private nginx", func(c *Config) {
			c.NginxArgs = []string{"-p", "/tmp/x", "-c", "/tmp/x/nginx.conf", "-g", "daemon off;"}
		}, ""},
		{"relative dir", func(c *Config) { c.Dir = "gatehouse" }, "dir \"gatehouse\": must be a clean absolute path"},
		{"root dir", func(c *Config) { c.Dir = "/" }, "other than /"},
		{"unclean dir", func(c *Config) { c.Dir = "/etc/nginx/../gatehouse" }, "clean absolute path"},
		{"signal flag", func(c *Config) { c.NginxArgs = []string{"-s", "stop"} }, `flag "-s" is not allowed`},
		{"odd args", func(c *Config) { c.NginxArgs = []string{"-p"} }, "flag/value pairs"},
		{"empty value", func(c *Config) { c.NginxArgs = []string{"-c", ""} }, "must be non-empty"},
		{"relative pid", func(c *Config) { c.PIDFile = "nginx.pid" }, "pid file"},
		{"relative log", func(c *Config) { c.ErrorLog = "error.log" }, "error log"},
		{"keep zero after defaults", func(c *Config) { c.Keep = -1 }, "keep -1"},
		{"negative timeout", func(c *Config) { c.ReloadTimeout = -1 }, "reload timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCodeStrings(t *testing.T) {
	t.Parallel()
	for c, want := range map[Code]string{
		Applied: "APPLIED", TestFailed: "TEST_FAILED", ReloadFailedRolledBack: "RELOAD_FAILED_ROLLED_BACK", RollbackFailed: "ROLLBACK_FAILED", Code(9): "Code(9)",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}

// FuzzReleaseValidate: whatever the controller (or anyone holding its
// connection) sends, a release that validates names only files below the
// release root, with plain names and safe modes.
func FuzzReleaseValidate(f *testing.F) {
	for _, s := range []string{"http/a.conf", "../etc/passwd", "/etc/passwd", "http/../../x", "a//b", ".manifest.json",
		"http/.hidden", "a\x00b", "a\nb", "http/a b.conf", "ok/./x", "ünïcode/a.conf", strings.Repeat("a/", 9) + "x"} {
		f.Add(s, uint32(0o644))
	}
	f.Add("tls/key.pem", uint32(0o600))
	f.Add("http/a.conf", uint32(0o4755))
	f.Fuzz(func(t *testing.T, p string, mode uint32) {
		rel := Release{Revision: 1, Files: []File{{Path: p, Content: []byte("x"), Mode: fs.FileMode(mode)}}}
		if err := rel.Validate(); err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("refusal is not an InvalidError with problems: %v", err)
			}
			return
		}
		if path.Clean(p) != p || path.IsAbs(p) || strings.HasPrefix(p, ".") || strings.Contains(p, "/.") {
			t.Fatalf("accepted unclean or hidden path %q", p)
		}
		for _, r := range p {
			if !(r == '/' || allowedNameRune(r)) {
				t.Fatalf("accepted path %q with %q", p, r)
			}
		}
		m := fileMode(fs.FileMode(mode))
		if m&^fs.ModePerm != 0 || m&0o111 != 0 || m&0o400 == 0 {
			t.Fatalf("accepted mode %#o", mode)
		}
	})
}
