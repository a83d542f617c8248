package node

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
)

// TestSetupLoggingLibraries: log.format json and log.level apply to
// kad-dht's (go-log) and go-libp2p's (gologshim) loggers too.
func TestSetupLoggingLibraries(t *testing.T) {
	var buf bytes.Buffer
	std := logrus.StandardLogger()
	out, f, lvl := std.Out, std.Formatter, logrus.GetLevel()
	t.Cleanup(func() {
		std.SetOutput(out)
		std.SetFormatter(f)
		logrus.SetLevel(lvl)
		golog.SetAllLoggers(golog.LevelFatal) // as TestMain has it
	})
	if err := SetupLogging(config.LogConfig{Level: "warn", Format: "json"}); err != nil {
		t.Fatal(err)
	}
	std.SetOutput(&buf)
	golog.Logger("pikcio-node-test").Warn("from go-log")
	gologshim.Logger("pikcio-node-test-shim").Warn("from gologshim")
	golog.Logger("pikcio-node-test").Info("below the level")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"from go-log", "from gologshim"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil || m["msg"] != want {
			t.Fatalf("line %d: %q (%v), want JSON with msg %q", i, lines[i], err, want)
		}
	}
}
