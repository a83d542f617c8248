package circuit

import (
	"crypto/rand"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
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

// TestHostAddrs: the announced addresses and the listen addresses are
// both among a host's addresses.
func TestHostAddrs(t *testing.T) {
	announced := ma.StringCast("/ip4/203.0.113.7/tcp/4001")
	announce, err := Announce([]string{announced.String()})
	if err != nil {
		t.Fatal(err)
	}
	h := loopbackHost(t, announce...)
	has := func(want ma.Multiaddr) bool {
		for _, a := range HostAddrs(h) {
			if a.Equal(want) {
				return true
			}
		}
		return false
	}
	if !has(announced) {
		t.Fatalf("announced address missing from %v", HostAddrs(h))
	}
	for _, l := range h.Network().ListenAddresses() {
		if !has(l) {
			t.Fatalf("listen address %s missing from %v", l, HostAddrs(h))
		}
	}
}

// TestAnnounce: a host advertises exactly the announced addresses, or its
// listen addresses when none are; a bad address is an error.
func TestAnnounce(t *testing.T) {
	tests := []struct {
		name     string
		announce []string
		want     []string // nil: the listen addresses
		err      bool
	}{
		{name: "none"},
		{name: "two", announce: []string{"/ip4/203.0.113.7/tcp/4001", "/ip6/2001:db8::7/udp/4001/quic-v1"},
			want: []string{"/ip4/203.0.113.7/tcp/4001", "/ip6/2001:db8::7/udp/4001/quic-v1"}},
		{name: "bad", announce: []string{"/ip4/203.0.113.7/tcp/4001", "not an address"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := Announce(tt.announce)
			if (err != nil) != tt.err {
				t.Fatalf("Announce: %v, want an error: %v", err, tt.err)
			}
			if err != nil {
				return
			}
			h := loopbackHost(t, opts...)
			want := tt.want
			if want == nil {
				for _, a := range h.Network().ListenAddresses() {
					want = append(want, a.String())
				}
			}
			var got []string
			for _, a := range h.Addrs() {
				got = append(got, a.String())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("host advertises %v, want %v", got, want)
			}
		})
	}
}

// loopbackHost is a NewHost on 127.0.0.1 with a fresh key and extra.
func loopbackHost(t *testing.T, extra ...libp2p.Option) host.Host {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, DefaultRelayOptions(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
