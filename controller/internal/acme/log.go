package acme

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogHandler sends lego's log records (lego logs through log/slog) to an
// hclog logger, so they carry our format and levels instead of going to
// stdout. lego is chatty at Info about every step of an order, which the
// client already reports in its own words, so its Info becomes our Debug and
// its Debug our Trace; warnings and errors keep their level.
type slogHandler struct {
	log   hclog.Logger
	attrs []any // key, value pairs from WithAttrs
	group string
}

func newSlogHandler(l hclog.Logger) *slogHandler { return &slogHandler{log: l} }

func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l >= slog.LevelError:
		return hclog.Error
	case l >= slog.LevelWarn:
		return hclog.Warn
	case l >= slog.LevelInfo:
		return hclog.Debug
	default:
		return hclog.Trace
	}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= hclogLevel(l) && h.log.GetLevel() != hclog.Off
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	args := append([]any(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		args = h.appendAttr(args, h.group, a)
		return true
	})
	h.log.Log(hclogLevel(r.Level), r.Message, args...)
	return nil
}

func (h *slogHandler) appendAttr(args []any, prefix string, a slog.Attr) []any {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return args
	}
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			args = h.appendAttr(args, key, g)
		}
		return args
	}
	return append(args, key, a.Value.String())
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]any(nil), h.attrs...)
	for _, a := range attrs {
		n.attrs = n.appendAttr(n.attrs, h.group, a)
	}
	return &n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	if n.group != "" {
		n.group += "." + name
	} else {
		n.group = name
	}
	return &n
}
