package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// TestDataDir: the data directory is created 0700, the identity key 0600,
// and a restart keeps the peer ID.
func TestDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "pikcio")
	cfg := relayConfig(t, false, nil, nil)
	cfg.Node.DataDir = dir

	n1, err := New(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := n1.ID()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %04o, want 0700", fi.Mode().Perm())
	}
	key := filepath.Join(dir, IdentityFile)
	fi, err = os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity key mode %04o, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil || k.Type() != crypto.Ed25519 {
		t.Fatalf("identity key: %v, type %v", err, k)
	}

	n2, err := New(t.Context(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n2.Close() })
	if n2.ID() != id {
		t.Fatalf("peer ID after restart %s, want %s", n2.ID(), id)
	}

	// A second node on the same directory is refused while n2 runs.
	if n3, err := New(t.Context(), cfg, Options{}); !errors.Is(err, ErrDataDirInUse) {
		if n3 != nil {
			n3.Close()
		}
		t.Fatalf("second node on one data directory: %v, want ErrDataDirInUse", err)
	}
}

func TestIdentityFile(t *testing.T) {
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
		}, ErrKeyPermissions, false},
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
			k, _, err := loadOrCreateIdentity(dir)
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
				k2, created, err := loadOrCreateIdentity(dir)
				if err != nil || created || !k.Equals(k2) {
					t.Fatalf("second load: %v, created %v, same key %v", err, created, k.Equals(k2))
				}
			}
		})
	}
}

func TestPrepareDataDir(t *testing.T) {
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
			warn, err := prepareDataDir(tc.dir)
			if (err != nil) != tc.wantErr || (warn != "") != tc.wantWarn {
				t.Fatalf("err %v, warn %q", err, warn)
			}
		})
	}
}
