package liblog

import (
	"encoding/json"
	"strings"
	"testing"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/sirupsen/logrus"
)

// lines parses what buf holds, one JSON object a line, and resets it.
func lines(t *testing.T, buf *testutil.SyncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not one JSON object a line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// TestRoute: after Route, kad-dht's go-log loggers and go-libp2p's
// gologshim loggers write through logrus, as JSON with log.format json,
// at logrus's level, with the component named; a library's info is
// logrus debug.
func TestRoute(t *testing.T) {
	var buf testutil.SyncBuffer
	out, f, lvl := logrus.StandardLogger().Out, logrus.StandardLogger().Formatter, logrus.GetLevel()
	t.Cleanup(func() {
		logrus.SetOutput(out)
		logrus.SetFormatter(f)
		logrus.SetLevel(lvl)
		Route()
	})
	logrus.SetOutput(&buf)
	logrus.SetFormatter(&logrus.JSONFormatter{})
	logrus.SetLevel(logrus.WarnLevel)
	Route()

	zl := golog.Logger("pikcio-test-dht")
	sl := gologshim.Logger("pikcio-test-swarm")
	zl.Infow("dht info", "peer", "12D3KooWx")
	sl.Info("swarm info", "peer", "12D3KooWy")
	zl.Warnw("dht warning", "n", 3)
	sl.Warn("swarm warning", "n", 4)
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("at warn: %d lines, want the 2 warnings: %v", len(got), got)
	}
	want := []struct{ msg, component string }{{"dht warning", "libp2p/pikcio-test-dht"}, {"swarm warning", "libp2p/pikcio-test-swarm"}}
	for i, w := range want {
		if got[i]["msg"] != w.msg || got[i]["component"] != w.component || got[i]["level"] != "warning" {
			t.Fatalf("line %d: %v, want %q from %s at warning", i, got[i], w.msg, w.component)
		}
	}
	if got[0]["n"] != float64(3) || got[1]["n"] != float64(4) {
		t.Fatalf("fields lost: %v", got)
	}

	logrus.SetLevel(logrus.DebugLevel)
	Route()
	zl.Infow("dht info")
	sl.Info("swarm info")
	got = lines(t, &buf)
	if len(got) != 2 || got[0]["level"] != "debug" || got[1]["level"] != "debug" {
		t.Fatalf("at debug: %v, want both infos as debug", got)
	}

	logrus.SetLevel(logrus.ErrorLevel)
	Route()
	zl.Warn("quiet")
	sl.Warn("quiet")
	if got := lines(t, &buf); len(got) != 0 {
		t.Fatalf("at error: %v", got)
	}
}
