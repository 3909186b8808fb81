package agent

import (
	"errors"
	"io/fs"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehousehq/gatehouse/agent/internal/logtail"
	agentv1 "github.com/gatehousehq/gatehouse/proto/gen/gatehouse/agent/v1"
)

// readNginxLog answers ReadNginxLog with the end of the error or access log
// named in the agent's own configuration; the controller names only which.
func (a *Agent) readNginxLog(req *agentv1.ReadNginxLog) *agentv1.CommandResult {
	var path, key string
	switch req.GetLog() {
	case agentv1.NginxLog_NGINX_LOG_ERROR:
		path, key = a.cfg.NginxErrorLog, "nginx_error_log"
	case agentv1.NginxLog_NGINX_LOG_ACCESS:
		path, key = a.cfg.NginxAccessLog, "nginx_access_log"
	default:
		return cmdError(agentv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "unknown log %d", req.GetLog())
	}
	t, err := logtail.Read(path, int(min(req.GetMaxBytes(), logtail.MaxBytes)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "%s does not exist on the node; point %s in the agent's configuration at nginx's log", path, key)
	case errors.Is(err, fs.ErrPermission):
		return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "the agent may not read %s (permission denied)", path)
	case err != nil:
		return cmdError(agentv1.ErrorCode_ERROR_CODE_FAILED, "read %s: %v", path, err)
	}
	return &agentv1.CommandResult{Result: &agentv1.CommandResult_NginxLog{NginxLog: &agentv1.NginxLogResult{
		Data: t.Data, Truncated: t.Truncated, Size: t.Size, Modified: timestamppb.New(t.Modified), Path: path,
	}}}
}
