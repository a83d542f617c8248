// Package version is pikcio's version, as `pikcio version` and the
// status page show it.
package version

import (
	"runtime/debug"
	"sync"
)

// version may be set at build time:
//
//	go build -ldflags "-X github.com/pikcio/pikcio/internal/version.version=v0.1.0" ./cmd/pikcio
var version string

// String is pikcio's version: the one set at build time, else the module
// version, else the VCS revision the binary was built from, else "dev".
func String() string { return once() }

var once = sync.OnceValue(compute)

func compute() string {
	if version != "" {
		return version
	}
	return fromBuildInfo(debug.ReadBuildInfo())
}

// fromBuildInfo is the version a binary's build information gives.
func fromBuildInfo(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
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
}
