package controller

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
)

// openStream opens /events with a bearer token and returns the response.
func (e *editEnv) openStream(ctx context.Context, query, token string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+"/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	return res
}

// TestProvisioningLogsStreamOnlyToAdmins: a provisioning task's steps go out on
// a topic a non-admin may not follow, like the task's pages and API.
func TestProvisioningLogsStreamOnlyToAdmins(t *testing.T) {
	e := newEditEnv(t)
	const port = 1 // nothing listens (no test binds port 1): the connect step fails at once
	body := passwordServer("web-1")
	body["host"], body["port"] = "127.0.0.1", port
	id := e.create(body)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all := e.openStream(ctx, "", e.admin)
	rd := bufio.NewReader(all.Body)
	if line, _ := rd.ReadString('\n'); line != "retry: 5000\n" {
		t.Fatalf("admin stream start %q (status %d)", line, all.StatusCode)
	}
	e.provisionError(id)
	topic := ""
	for topic == "" {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if rest, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(rest, `"name":"task.step"`) {
			_, after, _ := strings.Cut(rest, `"topic":"`)
			topic, _, _ = strings.Cut(after, `"`)
		}
	}
	if !strings.HasPrefix(topic, "provision.") {
		t.Fatalf("provisioning steps go out on %q", topic)
	}
	for _, q := range []string{"?topic=" + topic, ""} {
		if res := e.openStream(ctx, q, e.user); res.StatusCode != http.StatusForbidden {
			t.Errorf("a non-admin's stream %q: %d, want 403", q, res.StatusCode)
		}
	}
	if res := e.openStream(ctx, "?topic=servers", e.user); res.StatusCode != http.StatusOK {
		t.Errorf("a non-admin's server stream: %d", res.StatusCode)
	}
	if res := e.openStream(ctx, "?topic="+topic, e.admin); res.StatusCode != http.StatusOK {
		t.Errorf("an admin's task stream: %d", res.StatusCode)
	}
}
