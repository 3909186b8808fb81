package agent

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehousehq/gatehouse/agent/internal/metrics"
	"github.com/gatehousehq/gatehouse/internal/nginxstatus"
)

// nginxActivity reads nginx's counters from the status block the controller
// renders into every release with domains. A node without that block (no
// release yet, nginx down) simply reports no counters; the log says so once
// when reading stops working and once when it works again.
type nginxActivity struct {
	reader *nginxstatus.Reader
	log    hclog.Logger
	// block is the status block's file in the current release; without it
	// nothing is read, so another server on the HTTP port is never asked.
	block string

	// Used by one reading at a time (the sampler's).
	state   activityState
	lastErr string
}

type activityState int

const (
	activityUnknown activityState = iota
	activityOK
	activityFailing
	activityNoBlock
)

func newNginxActivity(cfg Config, log hclog.Logger) *nginxActivity {
	addr := nginxStatusAddr(cfg.NginxBindAddress, cfg.NginxHTTPPort)
	return &nginxActivity{reader: nginxstatus.NewReader(addr, nil), log: log.With("addr", addr),
		block: filepath.Join(cfg.NginxDir, "current", filepath.FromSlash(nginxstatus.File))}
}

// nginxStatusAddr is where the status block listens for the agent: the HTTP
// port on the bind address, or on loopback when nginx listens on all
// addresses (127.0.0.1 for none or 0.0.0.0, ::1 for ::).
func nginxStatusAddr(bind string, port int) string {
	host := "127.0.0.1"
	if a, err := netip.ParseAddr(bind); err == nil {
		switch {
		case a.Is6() && a.IsUnspecified():
			host = "::1"
		case !a.IsUnspecified():
			host = a.String()
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// read returns the counters taken now, or nil when they cannot be read. It
// takes at most nginxstatus.Timeout.
func (n *nginxActivity) read(ctx context.Context) *metrics.NginxStatus {
	if _, err := os.Stat(n.block); err != nil {
		if n.state != activityNoBlock {
			n.log.Debug("the current release has no status block; nginx's counters are not read", "file", n.block)
		}
		n.state, n.lastErr = activityNoBlock, ""
		return nil
	}
	s, rate, err := n.reader.Read(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil { // not the agent stopping
			n.failed(err)
		}
		return nil
	}
	switch n.state {
	case activityFailing:
		n.log.Info("nginx counters readable again")
	case activityUnknown:
		n.log.Debug("reading nginx counters")
	}
	n.state, n.lastErr = activityOK, ""
	return &metrics.NginxStatus{
		Active: s.Active, Reading: s.Reading, Writing: s.Writing, Waiting: s.Waiting,
		Accepts: s.Accepts, Handled: s.Handled, Requests: s.Requests,
		RequestsPerSecond: rate,
	}
}

func (n *nginxActivity) failed(err error) {
	msg := err.Error()
	switch {
	case n.state != activityFailing:
		n.log.Info("nginx counters unavailable; samples carry none until they are", "error", msg)
	case msg != n.lastErr:
		n.log.Debug("nginx counters still unavailable", "error", msg)
	}
	n.state, n.lastErr = activityFailing, msg
}
