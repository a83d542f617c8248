package liblog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/sirupsen/logrus"
)

// TestSetupLibraries: log.format json and log.level apply to
// kad-dht's (go-log) and go-libp2p's (gologshim) loggers too.
func TestSetupLibraries(t *testing.T) {
	var buf bytes.Buffer
	std := logrus.StandardLogger()
	out, f, lvl := std.Out, std.Formatter, logrus.GetLevel()
	t.Cleanup(func() {
		std.SetOutput(out)
		std.SetFormatter(f)
		logrus.SetLevel(lvl)
		Route()
	})
	if err := Setup("warn", "json"); err != nil {
		t.Fatal(err)
	}
	std.SetOutput(&buf)
	golog.Logger("pikcio-liblog-setup-test").Warn("from go-log")
	gologshim.Logger("pikcio-liblog-setup-test-shim").Warn("from gologshim")
	golog.Logger("pikcio-liblog-setup-test").Info("below the level")
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

// TestSetupRefuses: a bad level or format is an error that names the key,
// and changes nothing.
func TestSetupRefuses(t *testing.T) {
	lvl, f := logrus.GetLevel(), logrus.StandardLogger().Formatter
	tests := []struct{ level, format, key string }{
		{"loud", "text", "log.level"},
		{"info", "xml", "log.format"},
	}
	for _, tt := range tests {
		err := Setup(tt.level, tt.format)
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Fatalf("Setup(%q, %q): %v, want an error about %s", tt.level, tt.format, err, tt.key)
		}
		if logrus.GetLevel() != lvl || logrus.StandardLogger().Formatter != f {
			t.Fatalf("Setup(%q, %q) changed the logger", tt.level, tt.format)
		}
	}
}
