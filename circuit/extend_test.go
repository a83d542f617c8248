package circuit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// countingListener is a local TCP service that counts the connections it
// sees: what an EXTEND must never reach.
func countingListener(t *testing.T) (port int, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int32)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port, conns
}

func randomPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestExtendOnlyToRelays makes relays EXTEND to a local TCP listener under
// a random peer ID, by each address form that reached it before (plain
// loopback, a name, /ws): a relay that may not dial loopback, and one that
// extends only to relays its directory vouches for, never connect to it;
// and the refusal takes ExtendFailureDelay whatever the cause.
func TestExtendOnlyToRelays(t *testing.T) {
	port, conns := countingListener(t)
	forms := []string{"/ip4/127.0.0.1/tcp/%d", "/dns4/localhost/tcp/%d", "/ip4/127.0.0.1/tcp/%d/ws", "/ip6/::ffff:127.0.0.1/tcp/%d"}
	var mu sync.Mutex
	known := map[peer.ID][]ma.Multiaddr{}
	resolve := func(_ context.Context, id peer.ID) ([]ma.Multiaddr, error) {
		mu.Lock()
		defer mu.Unlock()
		if a, ok := known[id]; ok {
			return a, nil
		}
		return nil, errors.New("no descriptor")
	}
	const delay = 300 * time.Millisecond
	tests := []struct {
		name string
		opts netOpts
	}{
		{"no loopback", netOpts{relays: 2, strictAddrs: true, relay: RelayOptions{ExtendFailureDelay: delay}}},
		{"directory", netOpts{relays: 2, relay: RelayOptions{ExtendFailureDelay: delay, ResolveHop: resolve}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, tc.opts)
			mu.Lock()
			known[n.relays[1].host.ID()] = n.relays[1].host.Addrs()
			mu.Unlock()
			for _, f := range forms {
				hop := Hop{ID: randomPeer(t), Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf(f, port))}}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				_, err := n.client.Build(ctx, append(n.path(0), hop))
				took := time.Since(start)
				cancel()
				var de *DestroyedError
				if !errors.As(err, &de) || de.Reason != DestroyConnect {
					t.Fatalf("extend to %s: %v, want DESTROY(connect)", f, err)
				}
				if took < delay {
					t.Errorf("extend to %s refused after %v, before the %v floor", f, took, delay)
				}
			}
			if tc.opts.relay.ResolveHop != nil {
				// A relay the directory knows, named with the listener's
				// address: the relay dials the descriptor's addresses.
				h := n.relays[1].Hop()
				h.Addrs = []ma.Multiaddr{ma.StringCast(fmt.Sprintf(forms[0], port))}
				n.hosts[0].Peerstore().ClearAddrs(h.ID)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := n.client.Build(ctx, append(n.path(0), h))
				cancel()
				if err != nil {
					t.Fatalf("extend to a known relay: %v", err)
				}
				_ = c.Close()
			}
			if got := conns.Load(); got != 0 {
				t.Fatalf("the local listener saw %d connections", got)
			}
		})
	}
}

// TestGaterRefusesLocalDials: a host with the gater of a public node does
// not dial a loopback listener, whoever asks; one on a private network does.
func TestGaterRefusesLocalDials(t *testing.T) {
	for _, allow := range []bool{false, true} {
		port, conns := countingListener(t)
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(),
			libp2p.ConnectionGater(NewGater(allow)))
		if err != nil {
			t.Fatal(err)
		}
		id := randomPeer(t)
		h.Peerstore().AddAddr(id, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)), peerstore.TempAddrTTL)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.Connect(ctx, peer.AddrInfo{ID: id})
		cancel()
		_ = h.Close()
		if got := conns.Load(); (got > 0) != allow {
			t.Errorf("allowPrivate %v: the listener saw %d connections", allow, got)
		}
	}
}

func TestDialableAddr(t *testing.T) {
	tests := []struct {
		addr          string
		public, local bool
	}{
		{"/ip4/8.8.8.8/tcp/4001", true, true},
		{"/ip4/8.8.8.8/udp/4001/quic-v1", true, true},
		{"/ip6/2606:4700::1/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", true, true},
		{"/ip4/127.0.0.1/tcp/4001", false, true},
		{"/ip4/10.1.2.3/tcp/4001", false, true},
		{"/ip4/192.168.1.1/udp/1/quic-v1", false, true},
		{"/ip4/100.64.0.1/tcp/1", false, true},
		{"/ip4/169.254.1.1/tcp/1", false, true},
		{"/ip6/::1/tcp/1", false, true},
		{"/ip6/::ffff:127.0.0.1/tcp/1", false, true},
		{"/ip6/fe80::1/tcp/1", false, true},
		{"/ip4/0.0.0.0/tcp/1", false, false},
		{"/ip4/224.0.0.1/udp/1/quic-v1", false, false},
		{"/ip4/203.0.113.5/tcp/1", false, false},
		{"/dns4/example.com/tcp/443", false, false},
		{"/dns/localhost/tcp/80", false, false},
		{"/ip4/8.8.8.8/tcp/80/ws", false, false},
		{"/ip4/8.8.8.8/tcp/443/tls/ws", false, false},
		{"/ip4/8.8.8.8/udp/1/quic-v1/webtransport", false, false},
		{"/ip4/8.8.8.8/udp/53", false, false},
		{"/unix/tmp/sock", false, false},
	}
	for _, tc := range tests {
		a, err := ma.NewMultiaddr(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if got := DialableAddr(a, false); got != tc.public {
			t.Errorf("DialableAddr(%s, false) = %v", tc.addr, got)
		}
		if got := DialableAddr(a, true); got != tc.local {
			t.Errorf("DialableAddr(%s, true) = %v", tc.addr, got)
		}
	}
}
