package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestIdentity(t *testing.T) {
	valid := func(t *testing.T, path string) {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := crypto.MarshalPrivateKey(k)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error // nil: loads
		anyErr  bool
	}{
		{"created", func(*testing.T, string) {}, nil, false},
		{"existing", valid, nil, false},
		{"readable by others", func(t *testing.T, path string) {
			valid(t, path)
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrPermissions, false},
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"too large", func(t *testing.T, path string) {
			if err := os.WriteFile(path, make([]byte, maxKeyFile+1), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"secp256k1 key", func(t *testing.T, path string) {
			k, _, err := crypto.GenerateSecp256k1Key(nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := crypto.MarshalPrivateKey(k)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, IdentityFile)
			tc.prepare(t, path)
			k, created, err := Identity(dir)
			switch {
			case tc.anyErr || tc.want != nil:
				if err == nil {
					t.Fatal("loaded, want an error")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if created != (tc.name == "created") {
					t.Fatalf("created %v", created)
				}
				fi, err := os.Stat(path)
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("key file: %v, mode %v", err, fi.Mode())
				}
				k2, created, err := Identity(dir)
				if err != nil || created || !k.Equals(k2) {
					t.Fatalf("second load: %v, created %v, same key %v", err, created, k.Equals(k2))
				}
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		dir      string
		wantErr  bool
		wantWarn bool
	}{
		{"new", filepath.Join(base, "new", "deeper"), false, false},
		{"a file", file, true, false},
		{"open to others", open, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := Prepare(tc.dir)
			if (err != nil) != tc.wantErr || (warn != "") != tc.wantWarn {
				t.Fatalf("err %v, warn %q", err, warn)
			}
			if err == nil && tc.name == "new" {
				if fi, err := os.Stat(tc.dir); err != nil || fi.Mode().Perm() != 0o700 {
					t.Fatalf("new directory: %v, mode %v", err, fi.Mode())
				}
			}
		})
	}
}
