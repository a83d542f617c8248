package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// examplePath is the example file at the repository root.
const examplePath = "../pikcio.example.toml"

// valueOf returns the value of a dotted key in c.
func valueOf(t *testing.T, c *Config, key string) any {
	t.Helper()
	f := schema().leaves[key]
	if f == nil {
		t.Fatalf("no key %s", key)
	}
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index).Interface()
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		key  string
		want any
	}{
		{"node.data_dir", ""},
		{"node.listen", []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}},
		{"node.bootstrap", []string{}},
		{"node.announce", []string{}},
		{"log.level", "info"},
		{"log.format", "text"},
		{"client.enabled", true},
		{"client.socks_listen", "127.0.0.1:1080"},
		{"client.http_listen", "127.0.0.1:8118"},
		{"client.status_listen", "127.0.0.1:7080"},
		{"client.control_listen", ""},
		{"client.socks_early_success", false},
		{"client.hops", 3},
		{"client.circuit_dirtiness", Duration(10 * time.Minute)},
		{"client.prebuilt_circuits", 2},
		{"client.connect_timeout", Duration(30 * time.Second)},
		{"client.build_timeout", Duration(30 * time.Second)},
		{"relay.enabled", false},
		{"relay.exit", false},
		{"relay.ipv6_exit", false},
		{"relay.exit_policy", []string{}},
		{"relay.max_circuits_per_peer", 1024},
		{"relay.max_streams_per_circuit", 1024},
		{"relay.handshakes_per_second", 200},
		{"relay.bandwidth_rate", int64(0)},
		{"relay.bandwidth_burst", int64(0)},
		{"tis.root_key", ""},
		{"tis.url", ""},
		{"tis.require", true},
		{"tis.revocation_refresh", Duration(10 * time.Minute)},
		{"trust.refresh", Duration(10 * time.Minute)},
		{"trust.min_guard_score", 1},
		{"trust.min_exit_score", 1},
		{"trust.prefer_contact_guards", false},
		{"trust.attesters", []string{}},
		{"services", []ServiceConfig(nil)},
	}
	var covered []string
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := valueOf(t, Default(), tt.key); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("default %s = %#v, want %#v", tt.key, got, tt.want)
			}
		})
		covered = append(covered, tt.key)
	}
	if !slices.Equal(covered, Keys()) {
		t.Errorf("table covers %v, Keys() = %v", covered, Keys())
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

// TestExampleIsDefault keeps pikcio.example.toml true: it parses to exactly
// Default(), sets every key, and has a comment above every key.
func TestExampleIsDefault(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("pikcio.example.toml", data, nil)
	if err != nil {
		t.Fatalf("parse example: %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("example differs from Default() in %v\n got %#v\nwant %#v", Diff(Default(), got), got, Default())
	}
	idx, perr := indexDocument(data)
	if perr != nil {
		t.Fatal(perr)
	}
	lines := strings.Split(string(data), "\n")
	for _, key := range Keys() {
		if f := schema().leaves[key]; f.elems != nil {
			// Arrays of tables are none by default: the example shows
			// a block commented out, every key commented.
			for name := range f.elems {
				if !strings.Contains(string(data), "\n# "+name+" = ") {
					t.Errorf("example lacks a commented %s.%s", key, name)
				}
			}
			if !strings.Contains(string(data), "\n# [["+key+"]]\n") {
				t.Errorf("example lacks a commented [[%s]]", key)
			}
			continue
		}
		k := idx.byKey[key]
		if k == nil {
			t.Errorf("example lacks key %s", key)
			continue
		}
		if k.line < 2 || !strings.HasPrefix(strings.TrimSpace(lines[k.line-2]), "#") {
			t.Errorf("example key %s (line %d) has no comment above it", key, k.line)
		}
	}
}

func TestKeysWalkTags(t *testing.T) {
	// Keys must be exactly the toml-tagged leaves, found independently here.
	var want []string
	var walk func(t reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			key := prefix + name
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
				walk(f.Type, key+".")
				continue
			}
			want = append(want, key)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if got := Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := Default()
	orig.Node.Bootstrap = []string{"a"}
	orig.Relay.ExitPolicy = []string{"accept *:80"}
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone differs: %v", Diff(orig, c))
	}
	// Write through every slice of the clone; the original must not change.
	v := reflect.ValueOf(c).Elem()
	for _, f := range schema().fields {
		fv := v.FieldByIndex(f.index)
		if fv.Kind() == reflect.Slice && fv.Len() > 0 {
			fv.Index(0).SetString("changed")
		}
	}
	if d := Diff(Default(), orig); !slices.Equal(d, []string{"node.bootstrap", "relay.exit_policy"}) {
		t.Errorf("original changed through the clone: %v", d)
	}
	if (*Config)(nil).Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"same", func(c *Config) {}, nil},
		{"nil and empty list are equal", func(c *Config) { c.Node.Bootstrap = nil }, nil},
		{"one", func(c *Config) { c.Client.Hops = 4 }, []string{"client.hops"}},
		{"list element", func(c *Config) { c.Node.Listen[1] = "/ip4/127.0.0.1/tcp/1" }, []string{"node.listen"}},
		{"several in struct order", func(c *Config) {
			c.Relay.ExitPolicy = []string{"accept 127.0.0.1:*"}
			c.Client.Hops = 4
			c.Log.Level = "debug"
		}, []string{"log.level", "client.hops", "relay.exit_policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Default(), Default()
			tt.change(b)
			if got := Diff(a, b); !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
	if got := Diff(nil, Default()); !slices.Equal(got, Keys()) {
		t.Errorf("Diff(nil, c) = %v, want all keys", got)
	}
}

func TestResolveDataDir(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name    string
		dataDir string
		xdg     string
		home    string
		want    string
	}{
		{"explicit", filepath.Join(tmp, "a", "b"), "", tmp, filepath.Join(tmp, "a", "b")},
		{"xdg", "", filepath.Join(tmp, "xdg"), tmp, filepath.Join(tmp, "xdg", "pikcio")},
		{"relative xdg is ignored", "", "rel", filepath.Join(tmp, "h"), filepath.Join(tmp, "h", ".local", "share", "pikcio")},
		{"home", "", "", filepath.Join(tmp, "home"), filepath.Join(tmp, "home", ".local", "share", "pikcio")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := NodeConfig{DataDir: tt.dataDir}.ResolveDataDir()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ResolveDataDir = %s, want %s", got, tt.want)
			}
			st, err := os.Stat(got)
			if err != nil {
				t.Fatal(err)
			}
			if !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want a directory with 0700", got, st.Mode())
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.D() != 90*time.Minute {
		t.Errorf("UnmarshalText(1h30m) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("10")); err == nil {
		t.Error("UnmarshalText(10) succeeded")
	}
	if b, _ := Duration(10 * time.Minute).MarshalText(); string(b) != "10m0s" {
		t.Errorf("MarshalText = %s", b)
	}
}
