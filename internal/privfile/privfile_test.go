package privfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceAndCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, content := range []string{"first", "second"} {
		if err := Replace(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %o", fi.Mode().Perm())
		}
	}
	k := filepath.Join(dir, "key")
	if err := Create(k, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if err := Create(k, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(k); string(got) != "secret" {
		t.Fatalf("Create overwrote: %q", got)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("%d files in the directory, want 2", len(entries))
	}
	if err := Replace(filepath.Join(dir, "missing", "x"), nil); err == nil {
		t.Fatal("Replace in a missing directory succeeded")
	}
}
