package node

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/config"
)

// SetupLogging applies the [log] section to the process's logrus logger,
// which every pikcio package logs through: the level, and the format
// (text, coloured on a terminal, or one JSON object per line). It is safe
// to call while logging goes on, as a reload does.
func SetupLogging(lc config.LogConfig) error {
	lvl, err := logrus.ParseLevel(lc.Level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	var f logrus.Formatter
	switch lc.Format {
	case "json":
		f = &logrus.JSONFormatter{}
	case "text", "":
		f = &logrus.TextFormatter{FullTimestamp: true}
	default:
		return fmt.Errorf("log.format: %q: want text or json", lc.Format)
	}
	logrus.SetFormatter(f)
	logrus.SetLevel(lvl)
	return nil
}
