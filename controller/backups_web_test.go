package controller

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Admins take, list and download snapshots from the Backups page and the
// API; users may not; only the controller's own snapshot files are served,
// and every download is audited.
func TestBackupsPageAndAPI(t *testing.T) {
	e := newEditEnv(t)
	admin, user := e.browser(e.adminLogin), e.browser(e.userLogin)
	if code, _, _ := send(t, user, "GET", e.base+"/backups", nil); code != http.StatusForbidden {
		t.Fatalf("a user's backups page: %d", code)
	}
	if code, _ := e.api("POST", "/api/v1/backups", e.user, nil, nil); code != http.StatusForbidden {
		t.Fatalf("a user's snapshot: %d", code)
	}
	var taken backupJSON
	if code, b := e.api("POST", "/api/v1/backups", e.admin, nil, &taken); code != http.StatusCreated || !taken.Manual || taken.Size == 0 ||
		!snapshotName.MatchString(taken.Name) {
		t.Fatalf("snapshot through the API: %d %s", code, b)
	}
	if code, _, _ := send(t, admin, "POST", e.base+"/backups", nil); code != http.StatusSeeOther {
		t.Fatalf("snapshot from the page: %d", code)
	}
	// Files that are not snapshots stay out of the list and cannot be fetched.
	dir := backupDir(e.c.cfg)
	for _, stray := range []string{"notes.txt", "gatehouse-20200101-000000.000.db.partial"} {
		if err := os.WriteFile(filepath.Join(dir, stray), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Backups []backupJSON `json:"backups"`
	}
	// The scheduled job may have taken its first snapshot meanwhile.
	manual := 0
	if code, b := e.api("GET", "/api/v1/backups", e.admin, nil, &list); code != http.StatusOK {
		t.Fatalf("list: %d %s", code, b)
	}
	for _, b := range list.Backups {
		if b.Manual {
			manual++
		}
	}
	if manual != 2 || list.Backups[0].At.Before(list.Backups[len(list.Backups)-1].At) {
		t.Fatalf("list: %+v", list.Backups)
	}
	code, _, page := send(t, admin, "GET", e.base+"/backups", nil)
	if code != http.StatusOK || strings.Count(page, "data-backup=") != len(list.Backups) || !strings.Contains(page, `href="/backups/`+taken.Name+`"`) ||
		strings.Contains(page, "notes.txt") {
		t.Fatalf("backups page: %d", code)
	}

	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Disposition") != `attachment; filename="`+taken.Name+`"` {
			t.Errorf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
		}
		return resp.StatusCode, b
	}
	want, err := os.ReadFile(filepath.Join(dir, taken.Name))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := get("/api/v1/backups/"+taken.Name, e.admin); code != http.StatusOK || string(b) != string(want) {
		t.Fatalf("download: %d, %d bytes of %d", code, len(b), len(want))
	}
	if code, _ := get("/api/v1/backups/"+taken.Name, e.user); code != http.StatusForbidden {
		t.Errorf("a user's download: %d", code)
	}
	for _, bad := range []string{"notes.txt", "gatehouse-20200101-000000.000.db.partial", "..%2Fgatehouse.db", "..%2F..%2Fmaster.key",
		"%2Fetc%2Fpasswd", "gatehouse-99999999-999999.999.db"} {
		if code, _ := get("/api/v1/backups/"+bad, e.admin); code != http.StatusNotFound {
			t.Errorf("download %q: %d", bad, code)
		}
	}
	if got := e.auditEvents("backup.download"); len(got) != 1 {
		t.Errorf("downloads audited: %q", got)
	}
	if got := e.auditEvents("backup.create"); len(got) != 2 {
		t.Errorf("snapshots audited: %q", got)
	}
}
