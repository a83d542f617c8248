package liblog

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// logTime is the logs' timestamp: RFC 3339 in milliseconds, since failover
// and build timing live below the second.
const logTime = "2006-01-02T15:04:05.000Z07:00"

// Setup applies the [log] section (log.level, log.format) to the
// process's logrus logger, which every pikcio package logs through: the
// level, and the format (text, coloured on a terminal, or one JSON object
// per line). The logs of go-libp2p and kad-dht go through logrus too
// (Route), so the same level and format apply to them. It is safe to call
// while logging goes on, as a reload does; call it before the first node
// starts.
func Setup(level, format string) error {
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	var f logrus.Formatter
	switch format {
	case "json":
		f = &logrus.JSONFormatter{TimestampFormat: logTime}
	case "text", "":
		f = &logrus.TextFormatter{FullTimestamp: true, TimestampFormat: logTime}
	default:
		return fmt.Errorf("log.format: %q: want text or json", format)
	}
	logrus.SetFormatter(f)
	logrus.SetLevel(lvl)
	Route()
	return nil
}
