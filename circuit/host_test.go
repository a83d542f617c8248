package circuit

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestNewHost: the host has the given identity and listens where asked
// (nowhere without listen addresses).
func TestNewHost(t *testing.T) {
	tests := []struct {
		name   string
		listen []string
		addrs  bool
	}{
		{"loopback", []string{"/ip4/127.0.0.1/tcp/0"}, true},
		{"no listener", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			h, err := NewHost(priv, tt.listen, DefaultRelayOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.Close() })
			if id, _ := peer.IDFromPrivateKey(priv); h.ID() != id {
				t.Fatalf("host ID %s, want %s", h.ID(), id)
			}
			if got := len(h.Network().ListenAddresses()) > 0; got != tt.addrs {
				t.Fatalf("listen addresses %v, want some: %v", h.Network().ListenAddresses(), tt.addrs)
			}
		})
	}
	if _, err := NewHost(nil, []string{"not an address"}, DefaultRelayOptions()); err == nil {
		t.Fatal("NewHost with a bad listen address: no error")
	}
}
