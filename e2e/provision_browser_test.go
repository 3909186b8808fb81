package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehousehq/gatehouse/internal/testutil/browsertest"
	"github.com/gatehousehq/gatehouse/internal/testutil/testnode"
)

// TestProvisionFromTheBrowser checks the host key, approves it and installs
// the agent from the server's provisioning page in Chromium, and watches the
// task page fill in live until the agent has enrolled.
func TestProvisionFromTheBrowser(t *testing.T) {
	n := testnode.Start(t)
	b := browsertest.New(t, 90*time.Second)
	c := startController(t, "--agent-listen", hostPort(t, n), "--agent-dist-dir", distDir(t))
	l := newNodeLayout(t)
	id := c.addSSHServer(sshServer{Name: "node-ui", Host: n.Addr, Port: n.Port, User: "root", Auth: "password",
		Password: n.RootPassword, InstallPaths: l.paths()})
	base := "http://" + c.httpAddr
	type C = browsertest.CSS

	b.SignIn(base, "admin", c.password)
	b.Do("open the provisioning page",
		chromedp.Navigate(fmt.Sprintf("%s/servers/%d/ssh", base, id)),
		chromedp.WaitVisible(C(`[data-scan]`)),
	)
	b.Do("check the host key", chromedp.Click(C(`[data-scan]`)), chromedp.WaitVisible(C(`[data-scan-status="unknown"]`)))
	if got := b.Text(`[data-presented]`); got != n.HostKeyType+" "+n.HostKeyFingerprint {
		t.Fatalf("the page shows %q, want the node's key %s %s", got, n.HostKeyType, n.HostKeyFingerprint)
	}
	b.Do("approve it", chromedp.Click(C(`[data-approve]`)), chromedp.WaitVisible(C(`.flash-success`)))
	if got := b.Text(`[data-hostkeys] li`); !strings.Contains(got, n.HostKeyFingerprint) || !strings.Contains(got, "admin") {
		t.Fatalf("approved keys: %q", got)
	}
	b.Do("install the agent", chromedp.Click(C(`[data-provision]`)), chromedp.WaitVisible(C(`[data-task-log]`)))
	b.Do("watch the task finish", chromedp.WaitVisible(C(`.task-succeeded[data-task-status]`)))
	log := b.Text(`[data-task-log]`)
	for _, step := range []string{"== connect", "== upload", "== service", "== enroll"} {
		if !strings.Contains(log, step) {
			t.Errorf("the task page's log lacks %q:\n%s", step, log)
		}
	}
	if !c.server(id).Connected {
		t.Fatal("the agent is not connected after the task succeeded")
	}
	mustSucceed(t, c.runTask(id, "uninstall"))
}
