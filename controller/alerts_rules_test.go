package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/controller/internal/alerts"
	"github.com/gatehousehq/gatehouse/controller/internal/audit"
	"github.com/gatehousehq/gatehouse/controller/internal/auth"
	"github.com/gatehousehq/gatehouse/internal/testutil/syncbuf"
	"github.com/gatehousehq/gatehouse/ui"
)

// TestDomainRuleKindsThroughTheAPI creates certificate and DNS rules over
// the JSON API of a running controller: days defaults for expiry rules, is
// refused out of range and on other kinds, and the explanation says it.
func TestDomainRuleKindsThroughTheAPI(t *testing.T) {
	c, stop := start(t, testConfig(t, t.TempDir()), &syncbuf.Buffer{}, io.Discard)
	defer stop()
	ctx := context.Background()
	admin, err := c.users.Create(ctx, audit.System("test"), "ops", "long enough password for ops", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := newTokenForTest(c, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://"+c.HTTPAddr()+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	fieldErr := func(out map[string]any, field string) string {
		e, _ := out["error"].(map[string]any)
		fs, _ := e["fields"].(map[string]any)
		s, _ := fs[field].(string)
		return s
	}

	status, out := call("POST", "/api/v1/alerts/rules", map[string]any{"name": "Expiry", "kind": "cert_expiring", "severity": "warning"})
	if status != http.StatusCreated || out["days"] != float64(14) || !strings.Contains(out["explanation"].(string), "expires within 14 days") {
		t.Fatalf("create expiry rule: %d %v", status, out)
	}
	status, out = call("POST", "/api/v1/alerts/rules", map[string]any{"name": "Soon", "kind": "cert_expiring", "severity": "critical", "days": 3, "labels": []string{"edge"}})
	if status != http.StatusCreated || out["days"] != float64(3) {
		t.Fatalf("create expiry rule with days: %d %v", status, out)
	}
	status, out = call("POST", "/api/v1/alerts/rules", map[string]any{"name": "Endpoint certificates", "kind": "monitor_cert_expiring", "severity": "warning"})
	if status != http.StatusCreated || out["days"] != float64(14) || !strings.Contains(out["explanation"].(string), "monitor's https or TLS target presents expires within 14 days") {
		t.Fatalf("create a monitor certificate rule: %d %v", status, out)
	}
	for _, bad := range []map[string]any{
		{"name": "Zero", "kind": "cert_expiring", "severity": "warning", "days": 0},
		{"name": "Monitor zero", "kind": "monitor_cert_expiring", "severity": "warning", "days": 0},
		{"name": "Long", "kind": "cert_expiring", "severity": "warning", "days": 366},
		{"name": "Metric", "kind": "metric", "metric": "cpu", "op": ">", "critical": 90, "days": 3},
		{"name": "Renewal", "kind": "cert_renewal_failed", "severity": "warning", "days": 3},
	} {
		if status, out := call("POST", "/api/v1/alerts/rules", bad); status != http.StatusUnprocessableEntity || fieldErr(out, "days") == "" {
			t.Errorf("%v: %d %v, want a days error", bad, status, out)
		}
	}
	status, out = call("POST", "/api/v1/alerts/rules", map[string]any{"name": "DNS", "kind": "dns_mismatch", "severity": "warning", "window": "5m"})
	if status != http.StatusUnprocessableEntity || fieldErr(out, "window") == "" {
		t.Fatalf("dns rule with a window: %d %v", status, out)
	}
	for _, kind := range []string{"dns_mismatch", "cert_renewal_failed"} {
		status, out = call("POST", "/api/v1/alerts/rules", map[string]any{"name": kind, "kind": kind, "severity": "critical"})
		if status != http.StatusCreated || out["days"] != nil {
			t.Fatalf("create %s rule: %d %v", kind, status, out)
		}
	}
	status, out = call("GET", "/api/v1/alerts/rules", nil)
	if rules, _ := out["rules"].([]any); status != http.StatusOK || len(rules) != 5 {
		t.Fatalf("list: %d %v", status, out)
	}
}

func TestRuleFormDays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		form   ruleForm
		days   int
		window time.Duration
		err    string
	}{
		{"expiry default", ruleForm{Kind: "cert_expiring", Severity: "warning", Window: "5m"}, alerts.DefaultDays, 0, ""},
		{"expiry days", ruleForm{Kind: "cert_expiring", Severity: "warning", Days: " 30 "}, 30, 0, ""},
		{"expiry not a number", ruleForm{Kind: "cert_expiring", Severity: "warning", Days: "two weeks"}, 0, 0, "days"},
		{"days ignored elsewhere", ruleForm{Kind: "offline", Severity: "warning", Days: "14", Window: "5m"}, 0, 5 * time.Minute, ""},
		{"window ignored for dns", ruleForm{Kind: "dns_mismatch", Severity: "warning", Days: "14", Window: "5m"}, 0, 0, ""},
		{"monitor certificate default", ruleForm{Kind: "monitor_cert_expiring", Severity: "warning", Window: "5m"}, alerts.DefaultDays, 0, ""},
		{"monitor certificate days", ruleForm{Kind: "monitor_cert_expiring", Severity: "warning", Days: "5"}, 5, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Name = "rule"
			rule, errs := tc.form.parse()
			if tc.err != "" {
				if errs[tc.err] == "" {
					t.Fatalf("parse: %v, want a message for %s", errs, tc.err)
				}
				return
			}
			if len(errs) > 0 || rule.Days != tc.days || rule.Window != tc.window {
				t.Fatalf("parse = %+v, %v; want days %d window %s", rule, errs, tc.days, tc.window)
			}
			if err := rule.Validate(); err != nil {
				t.Fatalf("parsed rule refused: %v", err)
			}
		})
	}
}

// TestRuleFormRendersDays renders the rule editor with a refused expiry rule:
// the days field keeps its input and shows its message next to it.
func TestRuleFormRendersDays(t *testing.T) {
	r, err := ui.New(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := ruleForm{Name: "Expiry", Kind: "cert_expiring", Severity: "warning", Days: "400<x>",
		Metrics: alerts.MetricInfos, Errors: alerts.FieldErrors{"days": "must be a whole number of days between 1 and 365"}}
	for _, k := range alerts.Kinds {
		f.Kinds = append(f.Kinds, kindOption{Code: string(k), Label: k.Label(), Description: k.Description(), Selected: k == alerts.KindCertExpiring})
	}
	var b strings.Builder
	if err := r.Render(&b, "alerts_rule", ui.Page{Title: "Edit alert rule", Data: f}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`name="days"`, `value="400&lt;x&gt;"`, "between 1 and 365", `<option value="cert_expiring" data-description="`, `selected>Certificate expiring</option>`, `<option value="dns_mismatch" data-description="`} {
		if !strings.Contains(page, want) {
			t.Errorf("the rule form lacks %s", want)
		}
	}
}
