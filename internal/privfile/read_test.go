package privfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		max  int64
		want error
	}{
		{"private", write("ok", []byte("abc"), 0o600), 3, nil},
		{"readable by others", write("open", []byte("abc"), 0o644), 3, ErrPermissions},
		{"too large", write("big", []byte("abcd"), 0o600), 3, ErrTooLarge},
		{"missing", filepath.Join(dir, "none"), 3, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Read(tt.path, tt.max)
			if tt.want == nil && (err != nil || string(b) != "abc") || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Read: %q, %v; want %v", b, err, tt.want)
			}
		})
	}
	if _, err := Read(dir, 10); err == nil {
		t.Fatal("Read of a directory succeeded")
	}
}

func TestEnsureDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if perm, err := EnsureDir(dir); err != nil || perm != 0o700 {
		t.Fatalf("EnsureDir new: %v %v", perm, err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v %v", fi.Mode().Perm(), err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if perm, err := EnsureDir(dir); err != nil || perm != 0o755 {
		t.Fatalf("EnsureDir existing: %v %v", perm, err)
	}
	file := filepath.Join(base, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDir(file); err == nil {
		t.Fatal("EnsureDir of a file succeeded")
	}
	if _, err := EnsureDir(""); err == nil {
		t.Fatal("EnsureDir of an empty path succeeded")
	}
}
