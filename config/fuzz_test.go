package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts validates and clones; what
// it rejects is described by *Error values naming the file and a line
// inside it.
func FuzzParse(f *testing.F) {
	for _, tt := range errorTests {
		f.Add([]byte(tt.file))
	}
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(data)
	}
	f.Add([]byte("client = { hops = 5, enabled = false }\nrelay.exit_policy = [\"accept 127.0.0.1:*\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.toml", data, nil)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
			c := cfg.Clone()
			if !reflect.DeepEqual(c, cfg) {
				t.Fatalf("Clone differs in %v", Diff(cfg, c))
			}
			if d := Diff(cfg, c); len(d) != 0 {
				t.Fatalf("Diff of a clone = %v", d)
			}
			_ = Diff(Default(), cfg)
			return
		}
		problems := Problems(err)
		if len(problems) == 0 {
			t.Fatalf("error %v holds no *Error", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, p := range problems {
			if p.File != "f.toml" {
				t.Errorf("problem %q: file %q", p, p.File)
			}
			if p.Line < 0 || p.Line > lines {
				t.Errorf("problem %q: line %d outside 0..%d", p, p.Line, lines)
			}
			if p.Key == "" && !errors.Is(p, ErrSyntax) {
				t.Errorf("problem %q has no key", p)
			}
		}
	})
}
