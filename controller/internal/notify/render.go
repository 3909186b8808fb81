package notify

import (
	"fmt"
	"html"
	"strings"
	"unicode/utf8"
)

// telegramTextBudget keeps rendered messages under Telegram's 4096-character
// limit with room for the header and footer.
const telegramTextBudget = 3600

var kindHeadings = map[Kind]string{
	KindFiring:   "🔥 <b>FIRING</b>",
	KindResolved: "✅ <b>RESOLVED</b>",
	KindRepeat:   "🔁 <b>STILL FIRING</b>",
	KindTest:     "🧪 <b>TEST</b>",
}

var severityLabels = map[Severity]string{
	SeverityInfo:     "info",
	SeverityWarning:  "warning",
	SeverityCritical: "CRITICAL",
}

// esc prepares untrusted text for Telegram's HTML parse mode.
func esc(s string) string { return html.EscapeString(clean(s)) }

// RenderTelegram renders a validated notification as Telegram HTML. Every
// piece of caller data is escaped; only the fixed markup is HTML.
func RenderTelegram(n Notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s · %s\n", kindHeadings[n.Kind], esc(severityLabels[n.Severity]))
	fmt.Fprintf(&b, "<b>%s</b>\n", esc(truncate(n.Title, MaxTitleRunes)))
	used := utf8.RuneCountInString(n.Title)
	for i, f := range n.Fields {
		name := truncate(f.Name, MaxFieldNameRunes)
		value := truncate(f.Value, MaxFieldRunes)
		cost := utf8.RuneCountInString(name) + utf8.RuneCountInString(value) + 3
		if used+cost > telegramTextBudget {
			fmt.Fprintf(&b, "<i>… %d more fields not shown</i>\n", len(n.Fields)-i)
			break
		}
		used += cost
		if strings.Contains(value, "\n") {
			fmt.Fprintf(&b, "<b>%s:</b>\n<pre>%s</pre>\n", esc(name), esc(value))
		} else {
			fmt.Fprintf(&b, "<b>%s:</b> %s\n", esc(name), esc(value))
		}
	}
	if n.IncidentID != "" {
		fmt.Fprintf(&b, "\n<i>incident %s</i>", esc(n.IncidentID))
	}
	return strings.TrimRight(b.String(), "\n")
}

// StatusLine is one line of the /status reply.
type StatusLine struct {
	Name   string // what is described, e.g. a server or an incident title
	State  string // short state, e.g. "firing", "ok", "acked"
	Detail string // optional extra text
}

// maxStatusLines bounds the /status reply.
const maxStatusLines = 40

// RenderStatus renders the /status reply as Telegram HTML.
func RenderStatus(lines []StatusLine) string {
	var b strings.Builder
	b.WriteString("📋 <b>Gatehouse status</b>\n")
	if len(lines) == 0 {
		b.WriteString("All clear: no open incidents.")
		return b.String()
	}
	used := 0
	for i, l := range lines {
		line := fmt.Sprintf("• <b>%s</b>: %s", esc(truncate(l.Name, 128)), esc(truncate(l.State, 32)))
		if l.Detail != "" {
			line += " — " + esc(truncate(l.Detail, 256))
		}
		cost := utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.State) + utf8.RuneCountInString(l.Detail) + 8
		if i == maxStatusLines || used+cost > telegramTextBudget {
			fmt.Fprintf(&b, "<i>… %d more</i>", len(lines)-i)
			return b.String()
		}
		used += cost
		b.WriteString(line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
