package circuit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// flood runs workers that open link streams from h to r until ctx ends,
// each sending what send writes (nothing: the stream is held open silent).
func flood(ctx context.Context, t *testing.T, h host.Host, r *Relay, workers int, send func(s network.Stream)) *sync.WaitGroup {
	t.Helper()
	h.Peerstore().AddAddrs(r.host.ID(), r.host.Addrs(), peerstore.TempAddrTTL)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := h.NewStream(ctx, r.host.ID(), ProtocolID)
				if err != nil {
					continue
				}
				send(s)
			}
		})
	}
	return &wg
}

// TestFloodingPeerBesideHonest: a peer that floods a relay with CREATEs,
// with streams it resets, or with silent streams it holds open, spends its
// own budgets; an honest peer's builds beside it all succeed.
func TestFloodingPeerBesideHonest(t *testing.T) {
	createMsg := func(r *Relay) []byte {
		hs, err := newClientHandshake(r.host.ID(), r.OnionKey().Public, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return hs.msg
	}
	tests := []struct {
		name string
		send func(r *Relay) func(s network.Stream)
	}{
		{"creates", func(r *Relay) func(network.Stream) {
			return func(s network.Stream) {
				cell := make([]byte, CellSize)
				putHandshake(cell, cmdCreate, createMsg(r))
				_, _ = s.Write(cell)
				if c, err := readCell(s); err == nil {
					putCell(c)
				}
				_ = s.Reset()
			}
		}},
		{"resets", func(*Relay) func(network.Stream) {
			return func(s network.Stream) {
				// One byte makes the relay take the stream; then reset.
				_, _ = s.Write([]byte{cmdCreate})
				_ = s.Reset()
			}
		}},
		{"silent streams", func(*Relay) func(network.Stream) {
			return func(s network.Stream) {
				// Held until the relay gives up on it.
				var b [1]byte
				_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = s.Read(b[:])
				_ = s.Reset()
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{relays: 1, relay: RelayOptions{
				HandshakesPerSecond:        20,
				HandshakeBurst:             20,
				HandshakesPerPeerPerSecond: 5,
				HandshakePeerBurst:         10,
				MaxCircuits:                64,
				MaxPendingPerPeer:          8,
				PendingTimeout:             2 * time.Second,
			}})
			r := n.relays[0]
			attacker := newHost(t)
			t.Cleanup(func() { _ = attacker.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			wg := flood(ctx, t, attacker, r, 64, tc.send(r))
			defer func() { cancel(); wg.Wait() }()
			time.Sleep(300 * time.Millisecond) // let the flood fill what it can
			for i := 0; i < 8; i++ {
				c := n.build(t, 0)
				_ = c.Close()
			}
		})
	}
}
