package tis

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestInitAndOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "tis")
	pub, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	for _, f := range []string{RootKeyFile, SecretFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, RootKeyFile))
	secret, _ := os.ReadFile(filepath.Join(dir, SecretFile))
	if _, err := Init(dir); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if k2, _ := os.ReadFile(filepath.Join(dir, RootKeyFile)); string(k2) != string(key) {
		t.Fatal("second Init changed the root key")
	}
	if s2, _ := os.ReadFile(filepath.Join(dir, SecretFile)); string(s2) != string(secret) {
		t.Fatal("second Init changed the secret")
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r.PublicKey().Equal(pub) || r.Dir() != dir {
		t.Fatal("Open: other key")
	}

	// Refusals of Open.
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  error
	}{
		{"secret readable by others", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, SecretFile), 0o644) }, ErrPermissions},
		{"truncated root key", func(t *testing.T, dir string) {
			k, _ := os.ReadFile(filepath.Join(dir, RootKeyFile))
			os.WriteFile(filepath.Join(dir, RootKeyFile), k[:40], 0o600)
		}, ErrMalformed},
		{"corrupt root key", func(t *testing.T, dir string) {
			k, _ := os.ReadFile(filepath.Join(dir, RootKeyFile))
			k[63] ^= 1
			os.WriteFile(filepath.Join(dir, RootKeyFile), k, 0o600)
		}, ErrMalformed},
		{"missing secret", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, SecretFile)) }, os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "tis")
			if _, err := Init(d); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, d)
			if _, err := Open(d); !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestInitRefusesStateFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over a state file: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Init wrote a key after refusing")
	}
}

func TestKeyText(t *testing.T) {
	s := FormatKey(newRootKey(t).Public().(ed25519.PublicKey))
	tests := []struct {
		in string
		ok bool
	}{
		{s, true},
		{" " + s + "\n", true},
		{s[:len(s)-2], false},
		{"AAAA", false},
		{"not base64!", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			k, err := ParseKey(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseKey(%q): %v", tc.in, err)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			if tc.ok && FormatKey(k) != s {
				t.Fatal("round trip")
			}
		})
	}
}

func TestInitTightensExistingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tis")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestNewServerRefusesBadState(t *testing.T) {
	tests := map[string]string{
		"not JSON":        "{",
		"unknown version": `{"version":2}`,
		"bad serial":      `{"version":1,"enrolled":{"x":{"binding":"b","serials":["zz"]}}}`,
		"unsorted":        `{"version":1,"revoked":["02","01"]}`,
		"null entry":      `{"version":1,"enrolled":{"x":null}}`,
		"upper-case hex":  `{"version":1,"revoked":["0102030405060708090A0B0C0D0E0F10"]}`,
		"no list":         `{"version":1}`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tis")
			if _, err := Init(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := NewServer(dir, ServerOptions{}); err == nil {
				s.Close()
				t.Fatal("bad state accepted")
			}
		})
	}
}
