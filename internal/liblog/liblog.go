// Package liblog routes the logs of go-libp2p and go-libp2p-kad-dht into
// logrus, so that log.level and log.format apply to them as to pikcio's
// own: kad-dht logs through go-log (zap), go-libp2p through gologshim
// (slog); Route installs a zap core and a slog handler that hand every
// entry to logrus, with the component "libp2p/<subsystem>".
//
// A library's debug and info entries become logrus debug entries: they
// name peers and addresses, which pikcio logs at debug only. Warnings and
// errors keep their level. Nothing a library logs makes logrus exit or
// panic. Setup applies the configuration's [log] section (level and
// format) to logrus and routes the libraries.
package liblog

import (
	"context"
	"log/slog"
	"sync"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap/zapcore"
)

var once sync.Once

// Route sends the libraries' logs to logrus from now on, and sets their
// levels from logrus's (call it again after logrus.SetLevel). go-libp2p's
// loggers take the handler at their first entry, so Route must run
// before the first libp2p host starts.
func Route() {
	once.Do(func() {
		golog.SetPrimaryCore(zapCore{})
		gologshim.SetDefaultHandler(slogHandler{})
	})
	lvl := golog.LevelWarn
	if logrus.IsLevelEnabled(logrus.DebugLevel) {
		lvl = golog.LevelDebug
	}
	golog.SetAllLoggers(lvl)
	_ = golog.SetLogLevel("*", lvl.String())
}

// level maps a library level to logrus's.
func level(l zapcore.Level) logrus.Level {
	switch {
	case l <= zapcore.InfoLevel:
		return logrus.DebugLevel
	case l == zapcore.WarnLevel:
		return logrus.WarnLevel
	default:
		return logrus.ErrorLevel
	}
}

func slogLevel(l slog.Level) zapcore.Level {
	switch {
	case l < slog.LevelInfo:
		return zapcore.DebugLevel
	case l < slog.LevelWarn:
		return zapcore.InfoLevel
	case l < slog.LevelError:
		return zapcore.WarnLevel
	default:
		return zapcore.ErrorLevel
	}
}

func component(subsystem string) string {
	if subsystem == "" {
		return "libp2p"
	}
	return "libp2p/" + subsystem
}

// zapCore is go-log's primary core: each entry to logrus.
type zapCore struct{ fields []zapcore.Field }

var _ zapcore.Core = zapCore{}

func (c zapCore) Enabled(l zapcore.Level) bool { return logrus.IsLevelEnabled(level(l)) }

func (c zapCore) With(fields []zapcore.Field) zapcore.Core {
	return zapCore{fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c zapCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c zapCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	logrus.WithFields(enc.Fields).WithField("component", component(e.LoggerName)).Log(level(e.Level), e.Message)
	return nil
}

func (c zapCore) Sync() error { return nil }

// slogHandler is gologshim's handler: each record to logrus.
type slogHandler struct {
	attrs  []slog.Attr
	prefix string // of attribute keys, from WithGroup
}

var _ slog.Handler = slogHandler{}

func (h slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return logrus.IsLevelEnabled(level(slogLevel(l)))
}

func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	fields := logrus.Fields{}
	subsystem := ""
	add := func(prefix string, a slog.Attr) {
		if prefix == "" && a.Key == "logger" {
			subsystem = a.Value.String()
			return
		}
		fields[prefix+a.Key] = a.Value.Resolve().Any()
	}
	for _, a := range h.attrs {
		add("", a) // keys carry their group prefix already
	}
	r.Attrs(func(a slog.Attr) bool {
		add(h.prefix, a)
		return true
	})
	logrus.WithFields(fields).WithField("component", component(subsystem)).Log(level(slogLevel(r.Level)), r.Message)
	return nil
}

func (h slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := slogHandler{attrs: append([]slog.Attr(nil), h.attrs...), prefix: h.prefix}
	for _, a := range attrs {
		if h.prefix != "" {
			a.Key = h.prefix + a.Key
		}
		out.attrs = append(out.attrs, a)
	}
	return out
}

func (h slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return slogHandler{attrs: h.attrs, prefix: h.prefix + name + "."}
}
