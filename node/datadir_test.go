package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pikcio/pikcio/internal/datadir"
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
	key := filepath.Join(dir, datadir.IdentityFile)
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
