package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/ent/notificationchannel"
	"github.com/gatehousehq/gatehouse/ent/server"
)

func TestKindsHaveWords(t *testing.T) {
	for _, k := range alerts.Kinds {
		if k.Label() == "" || k.Label() == string(k) || k.Description() == "" {
			t.Errorf("kind %s: label %q, description %q", k, k.Label(), k.Description())
		}
	}
	if got := alerts.Kind("<x>").Label(); got != "<x>" {
		t.Errorf("an unknown kind is labelled %q, want its code", got)
	}
}

// TestRuleFormChecklists drives the rule form of a running controller: the
// type select offers labels with the codes as values, servers and channels
// are checkboxes by (escaped) name without removed servers, checked ids are
// saved as the rule's scope and channels, and unknown or removed ids are
// refused beside the list with the checked state kept and nothing stored.
func TestRuleFormChecklists(t *testing.T) {
	e := newEditEnv(t)
	ctx := context.Background()
	db := e.c.db.Client
	// Offline, not online: the controller's offline detection would turn an
	// online server that never reported offline while the test runs.
	web1 := db.Server.Create().SetName("web-1").SetStatus(server.StatusOffline).SaveX(ctx)
	hostile := db.Server.Create().SetName(`<i>edge</i>"x`).SaveX(ctx)
	gone := db.Server.Create().SetName("gone-1").SetStatus(server.StatusRemoved).SaveX(ctx)
	ops := db.NotificationChannel.Create().SetName("<b>ops</b>").SetKind(notificationchannel.KindWebhook).
		SetURL("http://127.0.0.1:1/hook").SaveX(ctx)
	pager := db.NotificationChannel.Create().SetName("pager").SetKind(notificationchannel.KindTelegram).SetEnabled(false).SaveX(ctx)
	cl := e.browser(e.adminLogin)
	base := e.base + "/alerts/rules"

	code, _, page := send(t, cl, "GET", base+"/new", nil)
	if code != http.StatusOK {
		t.Fatalf("new rule form: %d", code)
	}
	want := []string{
		`<option value="metric" data-description="A measured value such as CPU, memory or disk usage crosses a warning or critical level." selected>Metric threshold</option>`,
		`id="kind-description">A measured value such as CPU`,
		`data-kinds="metric"`, `data-kinds="cert_expiring monitor_cert_expiring"`, `data-kinds="metric offline domain_down uptime_below monitor_down upstream_down"`, `data-kinds="uptime_below"`,
		`data-kinds="offline nginx_failed nginx_drift cert_expiring cert_renewal_failed cert_served_mismatch dns_mismatch domain_down monitor_down monitor_cert_expiring upstream_down"`,
		fmt.Sprintf(`name="server_ids" value="%d"> web-1 <span class="hint">offline</span>`, web1.ID),
		fmt.Sprintf(`name="server_ids" value="%d"> &lt;i&gt;edge&lt;/i&gt;&#34;x <span class="hint">pending</span>`, hostile.ID),
		fmt.Sprintf(`name="channel_ids" value="%d"> &lt;b&gt;ops&lt;/b&gt; <span class="hint">webhook</span>`, ops.ID),
		fmt.Sprintf(`name="channel_ids" value="%d"> pager <span class="hint">telegram, disabled</span>`, pager.ID),
	}
	for _, k := range alerts.Kinds {
		want = append(want, fmt.Sprintf(`<option value="%s" data-description=`, k), ">"+k.Label()+"</option>")
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("the new rule form lacks %s", w)
		}
	}
	for _, bad := range []string{"<b>ops</b>", "<i>edge</i>", "gone-1", fmt.Sprintf(`value="%d"`, gone.ID), "checked> web-1"} {
		if strings.Contains(page, bad) {
			t.Errorf("the new rule form shows %s", bad)
		}
	}

	form := func(name string, servers, channels []int) url.Values {
		v := url.Values{"name": {name}, "kind": {"offline"}, "severity": {"critical"}, "window": {"30s"}, "enabled": {"on"},
			// The metric and days fields are always posted; an offline rule ignores them.
			"metric": {"cpu"}, "op": {">"}, "warning": {"80"}, "critical": {"95"}, "days": {"14"}}
		for _, id := range servers {
			v.Add("server_ids", strconv.Itoa(id))
		}
		for _, id := range channels {
			v.Add("channel_ids", strconv.Itoa(id))
		}
		return v
	}
	rules := func() []ruleJSON {
		t.Helper()
		var out struct {
			Rules []ruleJSON `json:"rules"`
		}
		if code, b := e.api("GET", "/api/v1/alerts/rules", e.admin, nil, &out); code != http.StatusOK {
			t.Fatalf("list rules: %d %s", code, b)
		}
		return out.Rules
	}

	code, loc, body := send(t, cl, "POST", base, form("Two servers", []int{web1.ID, hostile.ID}, []int{ops.ID}))
	if code != http.StatusSeeOther || loc != "/alerts/rules" {
		t.Fatalf("save: %d %s %s", code, loc, body)
	}
	list := rules()
	if len(list) != 1 || list[0].Name != "Two servers" || list[0].Kind != "offline" ||
		!slices.Equal(list[0].ServerIDs, []int{web1.ID, hostile.ID}) || !slices.Equal(list[0].ChannelIDs, []int{ops.ID}) {
		t.Fatalf("the API reads back %+v", list)
	}
	code, _, page = send(t, cl, "GET", fmt.Sprintf("%s/%d", base, list[0].ID), nil)
	for _, w := range []string{
		fmt.Sprintf(`value="%d" checked> web-1`, web1.ID), fmt.Sprintf(`value="%d" checked> &lt;i&gt;edge`, hostile.ID),
		fmt.Sprintf(`value="%d" checked> &lt;b&gt;ops`, ops.ID), fmt.Sprintf(`value="%d"> pager`, pager.ID),
		`<option value="offline" data-description="A server has sent no report for longer than the window." selected>Server offline</option>`,
	} {
		if code != http.StatusOK || !strings.Contains(page, w) {
			t.Errorf("the edit form (%d) lacks %s", code, w)
		}
	}

	// The rules list names the kind in words, with the code as its title.
	if code, _, page := send(t, cl, "GET", base, nil); code != http.StatusOK || !strings.Contains(page, `<td title="offline">Server offline</td>`) {
		t.Errorf("the rules list (%d) does not name the kind in words:\n%s", code, page)
	}

	for _, tc := range []struct {
		name              string
		servers, channels []int
		raw               string // an extra raw server_ids value
		want              []string
	}{
		{"unknown server", []int{web1.ID, 99999}, nil, "", []string{"there is no server #99999; choose servers from the list",
			fmt.Sprintf(`value="%d" checked> web-1`, web1.ID), `value="99999" checked> #99999 <span class="hint">no longer exists; uncheck it to save`}},
		{"removed server", []int{gone.ID}, []int{ops.ID}, "", []string{"gone-1 was removed; uncheck it",
			fmt.Sprintf(`value="%d" checked> gone-1 <span class="hint">removed; uncheck it to save`, gone.ID),
			fmt.Sprintf(`value="%d" checked> &lt;b&gt;ops`, ops.ID)}},
		{"unknown channel", nil, []int{ops.ID, 424242}, "", []string{"there is no channel #424242; choose channels from the list"}},
		{"not an id", nil, nil, "1, 2", []string{"choose servers from the list"}},
		{"negative id", nil, nil, "-3", []string{"choose servers from the list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := form("Refused", tc.servers, tc.channels)
			if tc.raw != "" {
				v.Add("server_ids", tc.raw)
			}
			code, _, page := send(t, cl, "POST", base, v)
			if code != http.StatusUnprocessableEntity {
				t.Fatalf("save: %d, want 422", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("the refused form lacks %s", w)
				}
			}
			if !strings.Contains(page, `class="field-error"`) || !strings.Contains(page, `value="Refused"`) {
				t.Error("the refused form has no field message or lost the name")
			}
			if n := len(rules()); n != 1 {
				t.Fatalf("%d rules stored after a refused save", n)
			}
		})
	}

	// Explain refuses an unknown server the same way, without saving.
	v := form("Preview", []int{99999}, nil)
	v.Set("preview", "1")
	if code, _, page := send(t, cl, "POST", base, v); code != http.StatusOK || !strings.Contains(page, "there is no server #99999") ||
		strings.Contains(page, `id="rule-explanation"`) {
		t.Fatalf("explain with an unknown server: %d", code)
	}
	v = form("Preview", []int{web1.ID}, nil)
	v.Set("preview", "1")
	if code, _, page := send(t, cl, "POST", base, v); code != http.StatusOK ||
		!strings.Contains(page, "When a server has sent nothing for 30 seconds, a critical incident fires for the servers web-1.") {
		t.Fatalf("explain: %d %s", code, page)
	}
	if n := len(rules()); n != 1 {
		t.Fatalf("%d rules stored after Explain", n)
	}
}

// An uptime rule is made from its own fields on the form (the metric levels,
// always posted, are ignored), reads back through the API, and its edit form
// shows the levels where they were typed.
func TestUptimeRuleForm(t *testing.T) {
	e := newEditEnv(t)
	cl := e.browser(e.adminLogin)
	base := e.base + "/alerts/rules"
	v := url.Values{"name": {"Shop SLO"}, "kind": {"uptime_below"}, "window": {"168h"}, "enabled": {"on"}, "severity": {"critical"},
		"uptime_warning": {"99.9"}, "uptime_critical": {"99"},
		"metric": {"cpu"}, "op": {">"}, "warning": {"80"}, "critical": {"95"}, "days": {"14"}}
	bad := url.Values{}
	for k, x := range v {
		bad[k] = x
	}
	bad.Set("uptime_warning", "98")
	if code, _, body := send(t, cl, "POST", base, bad); code != http.StatusUnprocessableEntity || !strings.Contains(body, "the higher percentage") {
		t.Fatalf("warning below critical: %d\n%s", code, body)
	}
	if code, loc, body := send(t, cl, "POST", base, v); code != http.StatusSeeOther || loc != "/alerts/rules" {
		t.Fatalf("save: %d %s %s", code, loc, body)
	}
	var out struct {
		Rules []ruleJSON `json:"rules"`
	}
	e.api("GET", "/api/v1/alerts/rules", e.admin, nil, &out)
	if len(out.Rules) != 1 {
		t.Fatalf("rules %+v", out.Rules)
	}
	r := out.Rules[0]
	if r.Kind != "uptime_below" || r.Warning == nil || *r.Warning != 99.9 || r.Critical == nil || *r.Critical != 99 || r.Window != "168h0m0s" ||
		r.Metric != "" || r.Op != "" || r.Severity != "" || !strings.Contains(r.Explanation, "over the last 7 days falls below 99.9 % (warning) or 99 % (critical)") {
		t.Fatalf("stored %+v", r)
	}
	_, _, page := send(t, cl, "GET", fmt.Sprintf("%s/%d", base, r.ID), nil)
	if !strings.Contains(page, `name="uptime_warning" inputmode="decimal" value="99.9"`) || !strings.Contains(page, `name="uptime_critical" inputmode="decimal" value="99"`) {
		t.Fatalf("edit form does not show the levels:\n%s", page)
	}
}
