package circuit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestHopLimitAtRelays builds loops A,B,C,A,B,C,... past the client's own
// check: eight hops are carried, and the ninth EXTEND is refused by the
// relays themselves (RELAY_EARLY), so a client cannot make one circuit into
// a long loop that multiplies every cell it sends.
func TestHopLimitAtRelays(t *testing.T) {
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	loop := func(hops int) []Hop {
		var p []Hop
		for i := 0; i < hops; i++ {
			p = append(p, n.relays[((2-(hops-1-i))%3+3)%3].Hop()) // ends at the exit
		}
		return p
	}
	tests := []struct {
		hops int
		ok   bool
	}{{MaxHops, true}, {MaxHops + 1, false}, {12, false}}
	for _, tc := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := n.client.buildPath(ctx, loop(tc.hops))
		cancel()
		if tc.ok {
			if err != nil {
				t.Fatalf("%d-hop loop: %v", tc.hops, err)
			}
			roundTrip(t, openStream(t, c, "127.0.0.1", echo), []byte("eight hops"))
			_ = c.Close()
			continue
		}
		var be *BuildError
		var de *DestroyedError
		if err == nil {
			_ = c.Close()
			t.Fatalf("%d-hop loop built", tc.hops)
		}
		if !errors.As(err, &be) || be.Hop != MaxHops || !errors.As(err, &de) || de.Reason != DestroyProtocol {
			t.Fatalf("%d-hop loop: %v, want hop %d destroyed for protocol", tc.hops, err, MaxHops+1)
		}
	}
}

// TestExtendNeedsRelayEarly: an EXTEND in a plain relay cell is refused.
func TestExtendNeedsRelayEarly(t *testing.T) {
	n := newTestNet(t, netOpts{})
	c := n.build(t, 0)
	hs, err := newClientHandshake(n.relays[1].host.ID(), n.relays[1].OnionKey().Public, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := extendMsg{peer: n.relays[1].host.ID(), addrs: n.relays[1].host.Addrs(), handshake: hs.msg}.encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sendTo(0, relayExtend, 0, msg); err != nil {
		t.Fatal(err)
	}
	waitDestroyed(t, c, DestroyProtocol)
}

// TestDropCellsCapped: a client that floods its exit with DROP cells (work
// for every hop, credited by no window) has its circuit closed; the relay
// counts them.
func TestDropCellsCapped(t *testing.T) {
	n := newTestNet(t, netOpts{})
	c := n.build(t, 0, 1, 2)
	for i := 0; i < 4*dropBurst; i++ {
		if err := c.sendTo(2, relayDrop, 0, nil); err != nil {
			break
		}
	}
	waitDestroyed(t, c, DestroyProtocol)
	if got := n.relays[2].Stats().Drops; got <= dropBurst {
		t.Errorf("exit counted %d drop cells, want more than %d", got, dropBurst)
	}
}

func waitDestroyed(t *testing.T, c *Circuit, want DestroyReason) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("circuit still open")
	}
	var de *DestroyedError
	if !errors.As(c.Err(), &de) || de.Reason != want {
		t.Fatalf("circuit error %v, want destroyed: %v", c.Err(), want)
	}
}

// TestCreateClockCoarse: two clients whose clocks differ by minutes within
// one window send the same time in their CREATEs (a relay cannot tell
// them apart by skew), and a relay accepts a time that old.
func TestCreateClockCoarse(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 1})
	r := n.relays[0]
	base := time.Unix(coarseTime(time.Now()), 0)
	var stamps [][]byte
	for _, skew := range []time.Duration{10 * time.Second, 2 * time.Minute, 4*time.Minute + 59*time.Second} {
		hs, err := newClientHandshake(r.host.ID(), r.OnionKey().Public, base.Add(skew))
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, hs.msg[66:74])
	}
	for i := range stamps[1:] {
		if string(stamps[i+1]) != string(stamps[0]) {
			t.Fatalf("CREATE times differ for clocks in one window: %x %x", stamps[0], stamps[i+1])
		}
	}
	// The oldest a coarse time gets, at the window's edge, still works.
	hs, _ := newClientHandshake(r.host.ID(), r.OnionKey().Public, time.Now().Add(-DefaultRelayOptions().ReplayWindow+time.Second))
	reply := sendCreate(t, rawLink(t, n, r), hs.msg)
	if reply[0] != cmdCreated {
		t.Fatalf("cell %d to a CREATE with the oldest coarse time, want CREATED", reply[0])
	}
}

// TestEarlyCellsHideLength: a guard sees as many RELAY_EARLY cells on a
// 2-hop circuit as on a 3-hop one (the client pads the count with its
// first cells), so they do not tell it how long the circuit is.
func TestEarlyCellsHideLength(t *testing.T) {
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	var passed atomic.Int32
	n.relays[0].tap = func(fwd bool, cell []byte) {
		if fwd && cell[0] == cmdRelayEarly {
			passed.Add(1)
		}
	}
	for _, idx := range [][]int{{0, 2}, {0, 1, 2}} {
		passed.Store(0)
		c := n.build(t, idx...)
		roundTrip(t, openStream(t, c, "127.0.0.1", echo), randBytes(t, 16*MaxCellData))
		_ = c.Close()
		// One EXTEND was for the guard itself; the rest it passed on.
		if got := passed.Load(); got != maxEarlyCells-1 {
			t.Errorf("%d-hop circuit: the guard passed %d early cells, want %d", len(idx), got, maxEarlyCells-1)
		}
	}
}
