package circuit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/endreason"
)

// TestMiddleRelayLearnsNothing records every cell the middle relay passes
// on, after it removed or added its layer, and checks that neither the
// destination nor the payload is in them; and that no cell is the same on
// two links.
func TestMiddleRelayLearnsNothing(t *testing.T) {
	const dest = "only-at-exit.test"
	payload := bytes.Repeat([]byte("SECRET-PAYLOAD-"), 1000)
	var mu sync.Mutex
	seen := map[int][][]byte{}
	n := newTestNet(t, netOpts{exit: func(i int) ExitDialer {
		if i != 2 {
			return nil
		}
		o := exitnode.DefaultOptions()
		rules, _ := exitnode.ParseRules([]string{"accept 127.0.0.1:*"})
		o.Policy = exitnode.NewPolicy(rules, nil)
		o.Resolver = fakeResolver{dest: {netip.MustParseAddr("127.0.0.1")}}
		return exitnode.New(o)
	}})
	for i := 0; i < 2; i++ {
		n.relays[i].tap = func(fwd bool, cell []byte) {
			mu.Lock()
			seen[i] = append(seen[i], append([]byte(nil), cell...))
			mu.Unlock()
		}
	}
	echo, _ := echoServer(t)
	c := n.build(t, 0, 1, 2)
	s := openStream(t, c, dest, echo)
	roundTrip(t, s, payload)

	mu.Lock()
	defer mu.Unlock()
	if len(seen[1]) == 0 {
		t.Fatal("middle relay passed no cells")
	}
	var all []byte
	for _, cell := range seen[1] {
		all = append(all, cell...)
	}
	for _, secret := range [][]byte{[]byte(dest), []byte("SECRET"), payload[:64]} {
		if bytes.Contains(all, secret) {
			t.Errorf("middle relay saw %q", secret)
		}
	}
	guard := map[string]bool{}
	for _, cell := range seen[0] {
		guard[string(cell[1:])] = true
	}
	for _, cell := range seen[1] {
		if guard[string(cell[1:])] {
			t.Fatal("a cell looks the same on two links")
		}
	}
}

// TestTamperDetected flips one byte of a cell in transit at the middle
// relay, in each direction: the circuit closes instead of delivering it.
func TestTamperDetected(t *testing.T) {
	for _, forward := range []bool{true, false} {
		name := map[bool]string{true: "towards exit", false: "towards client"}[forward]
		t.Run(name, func(t *testing.T) {
			n := newTestNet(t, netOpts{})
			echo, _ := echoServer(t)
			var armed atomic.Bool
			n.relays[1].tap = func(fwd bool, cell []byte) {
				if fwd == forward && armed.CompareAndSwap(true, false) {
					cell[200] ^= 0x01
				}
			}
			c := n.build(t, 0, 1, 2)
			s := openStream(t, c, "127.0.0.1", echo)
			armed.Store(true)
			go func() { _, _ = s.Write(randBytes(t, 64<<10)) }()
			_, err := io.ReadAll(s)
			if err == nil {
				t.Fatal("stream read to EOF through a tampered circuit")
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("circuit still open after tampering")
			}
			var de *DestroyedError
			if forward {
				if !errors.As(c.Err(), &de) || de.Reason != DestroyIntegrity {
					t.Fatalf("circuit error %v, want destroyed for integrity", c.Err())
				}
			} else if !errors.Is(c.Err(), ErrIntegrity) {
				t.Fatalf("circuit error %v, want ErrIntegrity", c.Err())
			}
			// The relays survive: a new circuit works.
			c2 := n.build(t, 0, 1, 2)
			roundTrip(t, openStream(t, c2, "127.0.0.1", echo), []byte("ok"))
		})
	}
}

// rawLink opens a circuit link to r by hand.
func rawLink(t *testing.T, n *testNet, r *Relay) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.chost.Peerstore().AddAddrs(r.host.ID(), r.host.Addrs(), peerstore.TempAddrTTL)
	s, err := n.chost.NewStream(ctx, r.host.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { s.Reset() })
	return s
}

func sendCreate(t *testing.T, s network.Stream, msg []byte) []byte {
	t.Helper()
	cell := make([]byte, CellSize)
	putHandshake(cell, cmdCreate, msg)
	if _, err := s.Write(cell); err != nil {
		t.Fatal(err)
	}
	reply, err := readCell(s)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), *reply...)
}

func TestReplayedHandshakeFails(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 1})
	r := n.relays[0]
	hs, err := newClientHandshake(r.host.ID(), r.OnionKey().Public, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	first := sendCreate(t, rawLink(t, n, r), hs.msg)
	if first[0] != cmdCreated {
		t.Fatalf("first handshake answered with cell %d", first[0])
	}
	body, _ := getHandshake(first)
	if _, err := hs.finish(body); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	again := sendCreate(t, rawLink(t, n, r), hs.msg)
	if again[0] != cmdDestroy || DestroyReason(again[1]) != DestroyHandshake {
		t.Fatalf("replayed handshake answered with cell %d reason %d", again[0], again[1])
	}
	// A handshake whose timestamp is far off is refused too.
	old, _ := newClientHandshake(r.host.ID(), r.OnionKey().Public, time.Now().Add(-time.Hour))
	if got := sendCreate(t, rawLink(t, n, r), old.msg); got[0] != cmdDestroy {
		t.Fatalf("stale handshake answered with cell %d", got[0])
	}
}

// TestHandshakeAuth checks that only the onion key's holder completes the
// handshake: a reply made with another key fails the client's check.
func TestHandshakeAuth(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	a, b := n.relays[0], n.relays[1]
	hs, _ := newClientHandshake(a.host.ID(), a.OnionKey().Public, time.Now())
	// b answers a handshake meant for a (it does not hold a's key).
	if _, _, err := serverHandshake(b.host.ID(), hs.msg, func(k []byte) *ecdhKey { return b.keys.lookup(k, time.Now()) }, newReplayCache(time.Minute, 10), time.Now()); !errors.Is(err, ErrUnknownOnionKey) {
		t.Fatalf("got %v, want ErrUnknownOnionKey", err)
	}
	// b pretends the key is its own: the client's AUTH check fails.
	reply, _, err := serverHandshake(b.host.ID(), hs.msg, func([]byte) *ecdhKey { return b.keys.cur.priv }, newReplayCache(time.Minute, 10), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.finish(reply); !errors.Is(err, ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	// A reply altered in transit fails as well.
	hs2, _ := newClientHandshake(a.host.ID(), a.OnionKey().Public, time.Now())
	reply, _, err = serverHandshake(a.host.ID(), hs2.msg, func(k []byte) *ecdhKey { return a.keys.lookup(k, time.Now()) }, newReplayCache(time.Minute, 10), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reply[40] ^= 1
	if _, err := hs2.finish(reply); !errors.Is(err, ErrAuth) {
		t.Fatalf("altered reply: got %v, want ErrAuth", err)
	}
}

// TestMalformedCellClosesCircuitOnly sends bad cells on hand-made circuits:
// each closes its circuit with a DESTROY; the relay keeps serving others.
func TestMalformedCellClosesCircuitOnly(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 1})
	r := n.relays[0]
	echo, _ := echoServer(t)
	good := n.build(t, 0)
	handshake := func(s network.Stream) *layer {
		hs, _ := newClientHandshake(r.host.ID(), r.OnionKey().Public, time.Now())
		reply := sendCreate(t, s, hs.msg)
		body, err := getHandshake(reply)
		if err != nil {
			t.Fatal(err)
		}
		k, err := hs.finish(body)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := newLayer(k)
		return l
	}
	tests := []struct {
		name string
		cell func(l *layer) []byte
		want DestroyReason
	}{
		{"unknown link command", func(*layer) []byte { c := make([]byte, CellSize); c[0] = 99; return c }, DestroyProtocol},
		{"second create", func(*layer) []byte { c := make([]byte, CellSize); c[0] = cmdCreate; return c }, DestroyProtocol},
		{"garbage relay cell", func(*layer) []byte { c := randBytes(t, CellSize); c[0] = cmdRelay; return c }, DestroyIntegrity},
		{"unknown relay command", func(l *layer) []byte {
			c := make([]byte, CellSize)
			c[0] = cmdRelay
			encodeRelay(c[1:], relayData, 1, nil)
			c[1+offCmd] = 200
			l.fwd.seal(c[1:])
			return c
		}, DestroyProtocol},
		{"bad begin", func(l *layer) []byte {
			c := make([]byte, CellSize)
			c[0] = cmdRelay
			encodeRelay(c[1:], relayBegin, 1, []byte{0, 80, 9, 'x'})
			l.fwd.seal(c[1:])
			return c
		}, DestroyProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := rawLink(t, n, r)
			l := handshake(s)
			if _, err := s.Write(tc.cell(l)); err != nil {
				t.Fatal(err)
			}
			reply, err := readCell(s)
			if err != nil {
				t.Fatalf("no DESTROY: %v", err)
			}
			if (*reply)[0] != cmdDestroy || DestroyReason((*reply)[1]) != tc.want {
				t.Fatalf("got cell %d reason %v, want DESTROY %v", (*reply)[0], DestroyReason((*reply)[1]), tc.want)
			}
		})
	}
	roundTrip(t, openStream(t, good, "127.0.0.1", echo), []byte("relay still serves"))
}

func TestOnionKeyRotation(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 1})
	r := n.relays[0]
	old := r.Hop()
	if err := r.RotateOnionKey(); err != nil {
		t.Fatal(err)
	}
	if r.Hop().OnionKey == old.OnionKey {
		t.Fatal("key did not change")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, h := range map[string]Hop{"new key": r.Hop(), "previous key in grace": old} {
		c, err := n.client.Build(ctx, []Hop{h})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = c.Close()
	}
	// After a second rotation the first key is no longer held.
	_ = r.RotateOnionKey()
	_, err := n.client.Build(ctx, []Hop{old})
	var de *DestroyedError
	if !errors.As(err, &de) || de.Reason != DestroyHandshake {
		t.Fatalf("build with a retired key: %v", err)
	}
}

func TestOnionKeyVerify(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	a, b := n.relays[0], n.relays[1]
	now := time.Now()
	if err := a.OnionKey().Verify(a.host.ID(), now); err != nil {
		t.Fatalf("valid key: %v", err)
	}
	tampered := a.OnionKey()
	tampered.Public[0] ^= 1
	expiredRing, err := newOnionKeyring(a.host.Peerstore().PrivKey(a.host.ID()), time.Second, time.Second, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		k  OnionKey
		id peer.ID
	}{
		"another relay's key": {b.OnionKey(), a.host.ID()},
		"tampered public key": {tampered, a.host.ID()},
		"expired":             {expiredRing.current(), a.host.ID()},
		"signature stripped":  {OnionKey{Public: a.OnionKey().Public, Expires: a.OnionKey().Expires}, a.host.ID()},
		"expiry pushed out":   {OnionKey{Public: a.OnionKey().Public, Expires: a.OnionKey().Expires.Add(time.Hour), Sig: a.OnionKey().Sig}, a.host.ID()},
	} {
		if err := tc.k.Verify(tc.id, now); !errors.Is(err, ErrOnionKey) {
			t.Errorf("%s: got %v, want ErrOnionKey", name, err)
		}
	}
}

func TestCaps(t *testing.T) {
	t.Run("streams per circuit", func(t *testing.T) {
		n := newTestNet(t, netOpts{relay: RelayOptions{MaxStreamsPerCircuit: 2}})
		echo, _ := echoServer(t)
		c := n.build(t, 0, 1, 2)
		openStream(t, c, "127.0.0.1", echo)
		openStream(t, c, "127.0.0.1", echo)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.OpenStream(ctx, "127.0.0.1", echo); !errors.Is(err, endreason.ErrCircuitFull) {
			t.Fatalf("third stream: %v", err)
		}
	})
	t.Run("circuits per peer", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 1, relay: RelayOptions{MaxCircuitsPerPeer: 1}})
		n.build(t, 0)
		_, err := n.client.Build(context.Background(), n.path(0))
		var de *DestroyedError
		if !errors.As(err, &de) || de.Reason != DestroyResource {
			t.Fatalf("second circuit: %v", err)
		}
	})
	t.Run("handshakes per second", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 1, relay: RelayOptions{HandshakesPerSecond: 0.001, HandshakeBurst: 1}})
		n.build(t, 0)
		_, err := n.client.Build(context.Background(), n.path(0))
		var de *DestroyedError
		if !errors.As(err, &de) || de.Reason != DestroyResource {
			t.Fatalf("second handshake: %v", err)
		}
	})
}
