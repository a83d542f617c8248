package node

import (
	"runtime/debug"
	"sync"
)

// version may be set at build time:
//
//	go build -ldflags "-X github.com/pikcio/pikcio/node.version=v0.1.0" ./cmd/pikcio
var version string

// Version is pikcio's version: the one set at build time, else the module
// version, else the VCS revision the binary was built from, else "dev".
func Version() string { return versionOnce() }

var versionOnce = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
})
