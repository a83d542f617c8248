package circuit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// TestLinkLossBlamesFirstHop: when the link to the first hop breaks while
// an EXTEND waits (the guard died), the build error names hop 0, not the
// hop being extended to: that relay did nothing wrong, and a client that
// marked it down lost a live relay for half a minute.
func TestLinkLossBlamesFirstHop(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	// Relay 1 takes the guard's circuit stream and never answers, so the
	// EXTEND to it waits.
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	n.hosts[1].SetStreamHandler(ProtocolID, func(s network.Stream) {
		<-hold
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := n.client.Build(ctx, n.path(0, 1))
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond)
	_ = n.hosts[0].Close() // the guard's links go, as when it is killed
	var err error
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatal("build still waiting 15 s after its guard died")
	}
	be, ok := errors.AsType[*BuildError](err)
	if !ok {
		t.Fatalf("build: %v, want a BuildError", err)
	}
	if be.Hop != 0 {
		t.Fatalf("build error names hop %d (%v), want 0, the guard whose link broke", be.Hop, err)
	}
}

// TestMiddleLossBlamesMiddle: when the middle dies while the EXTEND
// through it to the exit waits, the guard reports the lost link
// (DestroyLinkLost) and the build error names the middle, not the exit
// (which did nothing wrong, and was marked down for half a minute).
func TestMiddleLossBlamesMiddle(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 3})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	n.hosts[2].SetStreamHandler(ProtocolID, func(s network.Stream) {
		<-hold
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := n.client.Build(ctx, n.path(0, 1, 2))
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond)
	_ = n.hosts[1].Close() // the middle dies
	var err error
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatal("build still waiting 15 s after its middle died")
	}
	be, ok := errors.AsType[*BuildError](err)
	if !ok {
		t.Fatalf("build: %v, want a BuildError", err)
	}
	if be.Hop != 1 {
		t.Fatalf("build error names hop %d (%v), want 1, the middle that died", be.Hop, err)
	}
}
