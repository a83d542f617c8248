package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pikcio/pikcio/circuit"
)

// TestRelayKeepsOnionKey: a relay that restarts on its data directory
// keeps the onion key its published descriptor names (kept 0600 there).
func TestRelayKeepsOnionKey(t *testing.T) {
	cfg := relayConfig(t, false, nil, nil)
	cfg.Node.DataDir = t.TempDir()
	start := func() *Node {
		n, err := New(t.Context(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Start(ctx); err != nil {
			n.Close()
			t.Fatal(err)
		}
		return n
	}
	n1 := start()
	key := n1.relay.OnionKey()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(cfg.Node.DataDir, circuit.OnionKeysFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("onion key file mode %04o, want 0600", fi.Mode().Perm())
	}
	n2 := start()
	t.Cleanup(func() { n2.Close() })
	if got := n2.relay.OnionKey(); got.Public != key.Public {
		t.Fatal("onion key changed across a restart")
	}
}
