package node

import (
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/liblog"
)

// SetupLogging applies the [log] section to the process's logging, the
// libraries' included (liblog.Setup).
func SetupLogging(lc config.LogConfig) error { return liblog.Setup(lc.Level, lc.Format) }
