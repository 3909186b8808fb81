package notify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehousehq/gatehouse/internal/testutil/telegramtest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestNotificationValidate(t *testing.T) {
	t.Parallel()
	ok := firing("inc-1", Field{Name: "Server", Value: "anything <at> all & {{ }}"})
	tests := []struct {
		name    string
		edit    func(*Notification)
		wantErr string // "" for valid
	}{
		{name: "valid", edit: func(*Notification) {}},
		{name: "test needs no incident", edit: func(n *Notification) { n.Kind, n.IncidentID = KindTest, "" }},
		{name: "empty key", edit: func(n *Notification) { n.Key = "" }, wantErr: "key:"},
		{name: "key with spaces", edit: func(n *Notification) { n.Key = "a b" }, wantErr: "key:"},
		{name: "unknown kind", edit: func(n *Notification) { n.Kind = "status" }, wantErr: "kind:"},
		{name: "unknown severity", edit: func(n *Notification) { n.Severity = "fatal" }, wantErr: "severity:"},
		{name: "firing without incident", edit: func(n *Notification) { n.IncidentID = "" }, wantErr: "incident_id: required"},
		{name: "incident with markup", edit: func(n *Notification) { n.IncidentID = "<b>" }, wantErr: "incident_id:"},
		{name: "incident too long", edit: func(n *Notification) { n.IncidentID = strings.Repeat("a", 49) }, wantErr: "incident_id:"},
		{name: "empty title", edit: func(n *Notification) { n.Title = "  " }, wantErr: "title:"},
		{name: "field without name", edit: func(n *Notification) { n.Fields = []Field{{Value: "x"}} }, wantErr: "fields[0].name"},
		{name: "too many fields", edit: func(n *Notification) { n.Fields = make([]Field, MaxFields+1) }, wantErr: "fields: at most"},
	}
	for _, tc := range tests {
		n := ok
		n.Fields = append([]Field(nil), ok.Fields...)
		tc.edit(&n)
		err := n.Validate()
		if tc.wantErr == "" && err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCallbackDataRoundTrip(t *testing.T) {
	t.Parallel()
	n := firing(strings.Repeat("x", 48))
	for _, b := range n.Buttons() {
		data := b.CallbackData()
		if len(data) > 64 {
			t.Errorf("callback data %q is longer than Telegram's 64 bytes", data)
		}
		a, id, err := ParseCallbackData(data)
		if err != nil || a != b.Action || id != b.IncidentID {
			t.Errorf("ParseCallbackData(%q) = %q, %q, %v", data, a, id, err)
		}
	}
	for _, bad := range []string{"", "ack", "ack:", "nuke:inc-1", "ack:inc 1", "ack:<b>", "ack:../x", "sil1h:" + strings.Repeat("x", 49)} {
		if _, _, err := ParseCallbackData(bad); err == nil {
			t.Errorf("ParseCallbackData(%q) accepted", bad)
		}
	}
}

func TestButtonsOnlyForFiring(t *testing.T) {
	t.Parallel()
	for kind, want := range map[Kind]int{KindFiring: 2, KindRepeat: 2, KindResolved: 0, KindTest: 0} {
		n := firing("inc-1")
		n.Kind = kind
		if got := len(n.Buttons()); got != want {
			t.Errorf("%s: %d buttons, want %d", kind, got, want)
		}
	}
}

func TestMakeKey(t *testing.T) {
	t.Parallel()
	if a, b := MakeKey("inc-1", KindRepeat, 1), MakeKey("inc-1", KindRepeat, 2); a == b {
		t.Errorf("repeat rounds share key %q", a)
	}
	if got := MakeKey("inc-1", KindFiring, 3); got != "inc-1:firing" {
		t.Errorf("firing key = %q", got)
	}
}

// TestRenderGolden pins the Telegram rendering and proves each golden text is
// HTML Telegram accepts and that shows hostile values literally.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	hostile := []Field{
		{Name: "Server", Value: "<b>web-1</b>"},
		{Name: "Owner", Value: "Smith & Sons"},
		{Name: "Template", Value: "{{ .Secret }}"},
		{Name: "Log", Value: "line 1 </pre>\nline 2 <script>"},
	}
	long := firing("inc-long")
	for i := 0; i < MaxFields; i++ {
		long.Fields = append(long.Fields, Field{Name: "Field", Value: strings.Repeat("v", MaxFieldRunes+10)})
	}
	tests := []struct {
		file string
		text string
	}{
		{"firing.golden", RenderTelegram(firing("inc-42", hostile...))},
		{"resolved.golden", RenderTelegram(Notification{Key: "inc-42:resolved", IncidentID: "inc-42", Kind: KindResolved, Severity: SeverityWarning, Title: "Disk <ok> again"})},
		{"repeat.golden", RenderTelegram(Notification{Key: "inc-42:repeat:2", IncidentID: "inc-42", Kind: KindRepeat, Severity: SeverityInfo, Title: "Still & still"})},
		{"test.golden", RenderTelegram(TestNotification("ops", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)))},
		{"long.golden", RenderTelegram(long)},
		{"status.golden", RenderStatus([]StatusLine{{Name: "web-<1>", State: "firing", Detail: "disk & more"}, {Name: "db-1", State: "ok"}})},
		{"status-empty.golden", RenderStatus(nil)},
	}
	for _, tc := range tests {
		path := filepath.Join("testdata", tc.file)
		if *update {
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test -update)", tc.file, err)
		}
		if tc.text != string(want) {
			t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", tc.file, tc.text, want)
		}
		plain, err := telegramtest.ParseHTML(tc.text)
		if err != nil {
			t.Errorf("%s: Telegram would refuse the HTML: %v", tc.file, err)
		}
		if n := len([]rune(plain)); n > 4096 {
			t.Errorf("%s: %d characters, over Telegram's limit", tc.file, n)
		}
	}
	plain, _ := telegramtest.ParseHTML(RenderTelegram(firing("inc-42", hostile...)))
	for _, f := range hostile {
		if !strings.Contains(plain, f.Value) {
			t.Errorf("value %q not shown literally in:\n%s", f.Value, plain)
		}
	}
}
