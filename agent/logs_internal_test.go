package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// The controller chooses a log only by kind: the agent reads the path of
// its own configuration, says which, and explains a missing file.
func TestReadNginxLog(t *testing.T) {
	dir := t.TempDir()
	errLog, accLog := filepath.Join(dir, "error.log"), filepath.Join(dir, "access.log")
	if err := os.WriteFile(errLog, []byte("2026/01/01 [notice] 1#1: signal process started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{NginxErrorLog: errLog, NginxAccessLog: accLog}}

	res := a.readNginxLog(&agentv1.ReadNginxLog{Log: agentv1.NginxLog_NGINX_LOG_ERROR, MaxBytes: 1 << 30})
	l := res.GetNginxLog()
	if res.GetError() != nil || l.GetPath() != errLog || !strings.Contains(string(l.GetData()), "signal process started") || l.GetSize() == 0 || l.GetTruncated() {
		t.Fatalf("error log: %v", res)
	}
	res = a.readNginxLog(&agentv1.ReadNginxLog{Log: agentv1.NginxLog_NGINX_LOG_ACCESS})
	if e := res.GetError(); e.GetCode() != agentv1.ErrorCode_ERROR_CODE_FAILED || !strings.Contains(e.GetMessage(), "nginx_access_log") {
		t.Fatalf("missing access log: %v", res)
	}
	res = a.readNginxLog(&agentv1.ReadNginxLog{Log: agentv1.NginxLog(99)})
	if res.GetError().GetCode() != agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("unknown log: %v", res)
	}
}
