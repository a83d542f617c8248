package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	rev := "0123456789abcdef0123"
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "dev"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: settings("vcs.revision", rev)}, true, "v1.2.3"},
		{"devel with revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", rev)}, true, "dev-0123456789ab"},
		{"modified tree", &debug.BuildInfo{Settings: settings("vcs.revision", rev, "vcs.modified", "true")}, true, "dev-0123456789ab-dirty"},
		{"short revision", &debug.BuildInfo{Settings: settings("vcs.revision", "abc", "vcs.modified", "false")}, true, "dev-abc"},
		{"no revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.ok); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestString: the version is never empty, and a build-time one wins.
func TestString(t *testing.T) {
	if String() == "" {
		t.Fatal("empty version")
	}
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9"
	if got := compute(); got != "v9.9.9" {
		t.Fatalf("got %q with a build-time version", got)
	}
}
