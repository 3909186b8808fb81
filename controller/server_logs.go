package controller

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehousehq/gatehouse/controller/internal/hub"
	"github.com/gatehousehq/gatehouse/controller/internal/web"
	"github.com/gatehousehq/gatehouse/ent"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// nginx's logs, read through a server's agent. Admins only: access logs
// carry client addresses and whole URLs. The agent reads only the paths of
// its own configuration; the controller names the log by kind.

// logKinds maps the names in URLs to the agent's log kinds.
var logKinds = map[string]agentv1.NginxLog{
	"error":  agentv1.NginxLog_NGINX_LOG_ERROR,
	"access": agentv1.NginxLog_NGINX_LOG_ACCESS,
}

// How much of a log is read (the agent caps it at 256 KiB too), and the
// longest filter.
const (
	defaultLogBytes = 64 << 10
	maxLogBytes     = 256 << 10
	maxLogFilter    = 200
)

// serverLog is the end of one log, ready to show.
type serverLog struct {
	Kind      string    `json:"log"`
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	Modified  time.Time `json:"modified"`
	Truncated bool      `json:"truncated"`
	Filter    string    `json:"filter,omitempty"`
	Lines     []string  `json:"lines"` // oldest first
}

// logError is a failure to read a log, with the status and words to show.
type logError struct {
	status  int
	code    string
	message string
}

func (e *logError) Error() string { return e.message }

// readLog asks the server's agent for the end of a log and returns its
// lines made safe to show: valid UTF-8 without control characters, filtered
// by a case-insensitive substring when filter is set.
func (sv *serversWeb) readLog(ctx context.Context, s *ent.Server, kind string, maxBytes int, filter string) (*serverLog, error) {
	k, ok := logKinds[kind]
	if !ok {
		return nil, &logError{http.StatusNotFound, "not_found", "no such log; use error or access"}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := sv.c.hub.Send(ctx, strconv.Itoa(s.ID), &agentv1.Command{Kind: &agentv1.Command_ReadNginxLog{
		ReadNginxLog: &agentv1.ReadNginxLog{Log: k, MaxBytes: uint32(maxBytes)}}})
	var cerr *hub.CommandError
	switch {
	case errors.Is(err, hub.ErrNotConnected):
		return nil, &logError{http.StatusServiceUnavailable, "offline", "the server's agent is not connected"}
	case errors.As(err, &cerr) && cerr.Code == agentv1.ErrorCode_ERROR_CODE_UNSUPPORTED:
		return nil, &logError{http.StatusBadGateway, "agent_too_old", "the agent on this server is too old to read logs; update it by installing again from its SSH page"}
	case errors.As(err, &cerr):
		return nil, &logError{http.StatusBadGateway, "agent_error", "the agent could not read the " + kind + " log: " + cleanLine(cerr.Message)}
	case err != nil:
		return nil, &logError{http.StatusBadGateway, "agent_error", "the agent did not answer: " + err.Error()}
	}
	l := res.GetNginxLog()
	out := &serverLog{Kind: kind, Path: cleanLine(l.GetPath()), Size: l.GetSize(), Modified: l.GetModified().AsTime(),
		Truncated: l.GetTruncated(), Filter: filter, Lines: []string{}}
	needle := strings.ToLower(filter)
	for line := range strings.Lines(string(l.GetData())) {
		line = cleanLine(line)
		if needle != "" && !strings.Contains(strings.ToLower(line), needle) {
			continue
		}
		out.Lines = append(out.Lines, line)
	}
	return out, nil
}

// cleanLine makes one line of node output safe to show: invalid UTF-8 and
// control characters (terminal escapes among them) become U+FFFD, tabs spaces.
func cleanLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || unicode.IsControl(r) }) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// logParams reads ?bytes= and ?q= (the filter).
func logParams(r *http.Request) (maxBytes int, filter string, fields map[string]string) {
	fields = map[string]string{}
	maxBytes = defaultLogBytes
	if v := r.URL.Query().Get("bytes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogBytes {
			fields["bytes"] = "must be a whole number from 1 to " + strconv.Itoa(maxLogBytes)
		}
		maxBytes = n
	}
	filter = strings.TrimSpace(r.URL.Query().Get("q"))
	if len(filter) > maxLogFilter || !utf8.ValidString(filter) || strings.ContainsFunc(filter, unicode.IsControl) {
		fields["q"] = "must be at most " + strconv.Itoa(maxLogFilter) + " bytes of text"
	}
	return maxBytes, filter, fields
}

// apiLog returns the end of a server's error or access log.
func (sv *serversWeb) apiLog(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	maxBytes, filter, fields := logParams(r)
	if len(fields) > 0 {
		web.WriteError(w, http.StatusUnprocessableEntity, "validation_failed", "some parameters are invalid", fields)
		return
	}
	l, err := sv.readLog(r.Context(), s, r.PathValue("log"), maxBytes, filter)
	var le *logError
	if errors.As(err, &le) {
		web.WriteError(w, le.status, le.code, le.message, nil)
		return
	}
	if err != nil {
		sv.apiFail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, l)
}

// logsPageData is the logs page: the chosen log's end, or why it is missing.
type logsPageData struct {
	Server *ent.Server
	Kind   string
	Filter string
	Log    *serverLog
	Error  string
}

// logsPage shows the end of a server's error or access log.
func (sv *serversWeb) logsPage(w http.ResponseWriter, r *http.Request) {
	s, err := sv.lookup(r)
	if errors.Is(err, errNoServer) {
		sv.w.Render(w, r, http.StatusNotFound, "error", "Not found", "/servers", map[string]string{"Heading": "No such server", "Message": "It may have been removed."})
		return
	}
	if err != nil {
		sv.c.log.Error("logs page", "error", err)
		http.Error(w, "the server could not be read", http.StatusInternalServerError)
		return
	}
	kind := r.URL.Query().Get("log")
	if kind == "" {
		kind = "error"
	}
	maxBytes, filter, fields := logParams(r)
	d := logsPageData{Server: s, Kind: kind, Filter: filter}
	status := http.StatusOK
	switch {
	case len(fields) > 0:
		status, d.Filter = http.StatusUnprocessableEntity, ""
		d.Error = "The filter must be at most " + strconv.Itoa(maxLogFilter) + " bytes of text."
	default:
		l, err := sv.readLog(r.Context(), s, kind, maxBytes, filter)
		var le *logError
		switch {
		case errors.As(err, &le):
			status, d.Error = le.status, strings.ToUpper(le.message[:1])+le.message[1:]+"."
			if le.code == "not_found" {
				d.Kind = "error"
			}
		case err != nil:
			sv.c.log.Error("logs page", "error", err)
			status, d.Error = http.StatusInternalServerError, "The log could not be read because of a problem on our side."
		default:
			d.Log = l
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	sv.w.Render(w, r, status, "server_logs", "Logs of "+s.Name, "/servers", d)
}
