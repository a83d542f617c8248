package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseServices(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []ServiceConfig
	}{
		{"none", "[log]\nlevel = \"info\"\n", nil},
		{"empty list", "services = []\n", []ServiceConfig{}},
		{"one", "[[services]]\nname = \"blog\"\ntarget = \"127.0.0.1:8080\"\n",
			[]ServiceConfig{{Name: "blog", Target: "127.0.0.1:8080"}}},
		{"two in order, options", "[[services]]\nname = \"b\"\ntarget = \"[::1]:80\"\ncontacts_only = true\n\n[client]\nhops = 3\n\n[[services]]\nname = \"a-1\"\ntarget = \"localhost:9\"\n",
			[]ServiceConfig{{Name: "b", Target: "[::1]:80", ContactsOnly: true}, {Name: "a-1", Target: "localhost:9"}}},
		{"lan allowed", "[[services]]\nname = \"nas\"\ntarget = \"192.168.1.10:443\"\nallow_lan = true\n",
			[]ServiceConfig{{Name: "nas", Target: "192.168.1.10:443", AllowLAN: true}}},
		{"whole loopback net", "[[services]]\nname = \"x\"\ntarget = \"127.8.9.10:1\"\n",
			[]ServiceConfig{{Name: "x", Target: "127.8.9.10:1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.toml", []byte(tt.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Services, tt.want) {
				t.Fatalf("services %+v, want %+v", cfg.Services, tt.want)
			}
			if d := Diff(Default(), cfg); (len(tt.want) > 0) != slices.Contains(d, ServicesKey) {
				t.Fatalf("Diff %v", d)
			}
			if RestartKeys(Default(), cfg) != nil && slices.Contains(RestartKeys(Default(), cfg), ServicesKey) {
				t.Fatalf("services need a restart: %v", RestartKeys(Default(), cfg))
			}
		})
	}
}

// editBase is a file with comments and sections around a service block.
const editBase = `# my pikcio
[log]
# quiet
level = "warn"

[[services]]
name = "blog"
target = "127.0.0.1:8080"

# the client section
[client]
hops = 3
`

func TestAppendRemoveService(t *testing.T) {
	added, err := AppendService("f.toml", []byte(editBase), ServiceConfig{Name: "wiki", Target: "127.0.0.1:9090", ContactsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(added), editBase) {
		t.Fatalf("append changed the file:\n%s", added)
	}
	cfg, err := Parse("f.toml", added, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServiceConfig{{Name: "blog", Target: "127.0.0.1:8080"}, {Name: "wiki", Target: "127.0.0.1:9090", ContactsOnly: true}}
	if !slices.Equal(cfg.Services, want) || cfg.Log.Level != "warn" {
		t.Fatalf("after append: %+v", cfg)
	}
	if _, err := AppendService("f.toml", added, ServiceConfig{Name: "wiki", Target: "127.0.0.1:1"}); !errors.Is(err, ErrServiceExists) {
		t.Fatalf("second append: %v", err)
	}
	if _, err := AppendService("f.toml", added, ServiceConfig{Name: "lan", Target: "10.0.0.1:80"}); !errors.Is(err, ErrValue) {
		t.Fatalf("append of a LAN target: %v", err)
	}
	back, err := RemoveService("f.toml", added, "wiki")
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != editBase {
		t.Fatalf("remove of the appended block:\n%q\nwant\n%q", back, editBase)
	}
	noBlog, err := RemoveService("f.toml", back, "blog")
	if err != nil {
		t.Fatal(err)
	}
	wantNoBlog := "# my pikcio\n[log]\n# quiet\nlevel = \"warn\"\n\n# the client section\n[client]\nhops = 3\n"
	if string(noBlog) != wantNoBlog {
		t.Fatalf("remove of a middle block:\n%q\nwant\n%q", noBlog, wantNoBlog)
	}
	if _, err := RemoveService("f.toml", noBlog, "blog"); !errors.Is(err, ErrServiceMissing) {
		t.Fatalf("remove of a missing block: %v", err)
	}
	if _, err := RemoveService("f.toml", []byte("[client\n"), "blog"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("remove from a bad file: %v", err)
	}
	if _, err := AppendService("f.toml", []byte("services = []\n"), ServiceConfig{Name: "a", Target: "127.0.0.1:1"}); !errors.Is(err, ErrValue) {
		t.Fatalf("append after services = []: %v", err)
	}
	empty, err := AppendService("f.toml", nil, ServiceConfig{Name: "a", Target: "127.0.0.1:1"})
	if err != nil || string(empty) != "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:1\"\n" {
		t.Fatalf("append to an empty file: %q %v", empty, err)
	}
}

// FuzzEditServices: on any file that parses, appending a service and
// removing it again gives back the same configuration, and removing
// leaves the other services.
func FuzzEditServices(f *testing.F) {
	f.Add([]byte(editBase), "x")
	f.Add([]byte("[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:1\"\n[[services]]\nname = \"b\"\ntarget = \"127.0.0.1:2\""), "a")
	f.Add([]byte("[client]\nhops = 3 # c\n"), "b")
	for _, tt := range errorTests {
		f.Add([]byte(tt.file), "a")
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		cfg, err := Parse("f.toml", data, nil)
		if err != nil {
			return
		}
		sc := ServiceConfig{Name: name, Target: "127.0.0.1:7"}
		added, err := AppendService("f.toml", data, sc)
		if err != nil {
			return // a bad name, an existing one, or no client role
		}
		back, err := RemoveService("f.toml", added, name)
		if err != nil {
			t.Fatalf("remove what was appended: %v\n%q", err, added)
		}
		got, err := Parse("f.toml", back, nil)
		if err != nil {
			t.Fatalf("parse after remove: %v", err)
		}
		if d := Diff(cfg, got); len(d) != 0 {
			t.Fatalf("append+remove changed %v:\n%q\n->\n%q", d, data, back)
		}
		for _, s := range cfg.Services {
			if _, err := RemoveService("f.toml", data, s.Name); err != nil {
				t.Fatalf("remove %s: %v", s.Name, err)
			}
		}
	})
}
