package testutil

import (
	golog "github.com/ipfs/go-log/v2"
	"github.com/sirupsen/logrus"
)

// QuietLogs keeps a test binary's logs to warnings of pikcio's own
// (logrus) and to fatal errors of go-libp2p and kad-dht (go-log): what a
// TestMain calls before m.Run.
func QuietLogs() {
	golog.SetAllLoggers(golog.LevelFatal)
	logrus.SetLevel(logrus.WarnLevel)
}
