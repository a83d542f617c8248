package circuit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// buildWhileHostDies builds a circuit through relays path of a fresh test
// network whose last relay takes the circuit stream and never answers (so
// the EXTEND to it waits), kills relay dies meanwhile, and returns the hop
// the build error names. A killed relay says nothing more: its neighbours
// (the client too) drop their links to it first, and only then is its
// host closed, which alone would let it send a last DESTROY for the
// EXTEND its closing broke ("could not extend"), which a kill -9 cannot.
func buildWhileHostDies(t *testing.T, path []int, dies int) int {
	t.Helper()
	n := newTestNet(t, netOpts{relays: len(path)})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	n.hosts[path[len(path)-1]].SetStreamHandler(ProtocolID, func(s network.Stream) {
		<-hold
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := n.client.Build(ctx, n.path(path...))
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond)
	victim := n.hosts[dies].ID()
	for _, h := range append([]host.Host{n.chost}, n.hosts...) {
		if h.ID() != victim {
			_ = h.Network().ClosePeer(victim)
		}
	}
	_ = n.hosts[dies].Close()
	var err error
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatalf("build still waiting 15 s after relay %d died", dies)
	}
	be, ok := errors.AsType[*BuildError](err)
	if !ok {
		t.Fatalf("build: %v, want a BuildError", err)
	}
	t.Logf("build: %v", err)
	return be.Hop
}

// TestLinkLossBlamesFirstHop: when the link to the first hop breaks while
// an EXTEND waits (the guard died), the build error names hop 0, not the
// hop being extended to: that relay did nothing wrong, and a client that
// marked it down lost a live relay for half a minute.
func TestLinkLossBlamesFirstHop(t *testing.T) {
	if hop := buildWhileHostDies(t, []int{0, 1}, 0); hop != 0 {
		t.Fatalf("build error names hop %d, want 0, the guard whose link broke", hop)
	}
}

// TestMiddleLossBlamesMiddle: when the middle dies while the EXTEND
// through it to the exit waits, the guard reports the lost link
// (DestroyLinkLost) and the build error names the middle, not the exit
// (which did nothing wrong, and was marked down for half a minute).
func TestMiddleLossBlamesMiddle(t *testing.T) {
	if hop := buildWhileHostDies(t, []int{0, 1, 2}, 1); hop != 1 {
		t.Fatalf("build error names hop %d, want 1, the middle that died", hop)
	}
}

// TestRelayCloseDuringExtend: a relay closing while one of its EXTENDs
// waits for the next hop's CREATED returns at once, not at ExtendTimeout
// (15 s): a node's shutdown waited that long, past the CLI's 4 s.
func TestRelayCloseDuringExtend(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	n.hosts[1].SetStreamHandler(ProtocolID, func(s network.Stream) {
		<-hold
		_ = s.Reset()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := n.client.Build(ctx, n.path(0, 1)); err == nil {
			c.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	closed := make(chan struct{})
	go func() { _ = n.relays[0].Close(); close(closed) }()
	select {
	case <-closed:
		t.Logf("relay closed in %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("relay Close still waiting 5 s into a pending EXTEND")
	}
	<-done
}

// TestRefusedExtendReported: a build error says whether the client saw
// the failing hop fail (the first hop's link or handshake) or only has
// the word of the hop before it (an EXTEND it refused: the next hop may
// be dead, unknown to it yet, or the relay may lie to steer clients), so
// that discovery does not keep a relay out long on one relay's word.
func TestRefusedExtendReported(t *testing.T) {
	tests := []struct {
		name         string
		dead         int // the relay whose host is closed before the build
		wantHop      int
		wantReported bool
	}{
		{"first hop", 0, 0, false},
		{"middle", 1, 1, true},
		{"exit", 2, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNet(t, netOpts{relays: 3})
			_ = n.hosts[tt.dead].Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := n.client.Build(ctx, n.path(0, 1, 2))
			if err == nil {
				c.Close()
				t.Fatal("build through a dead relay succeeded")
			}
			be, ok := errors.AsType[*BuildError](err)
			if !ok {
				t.Fatalf("build: %v, want a BuildError", err)
			}
			if be.Hop != tt.wantHop || be.Reported != tt.wantReported || be.ReportedByPreviousHop() != tt.wantReported {
				t.Fatalf("build: %v: hop %d reported %v, want hop %d reported %v", err, be.Hop, be.Reported, tt.wantHop, tt.wantReported)
			}
		})
	}
}
