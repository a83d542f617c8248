package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/control/client"
)

// waitNewGuardView waits until the guards see the client's circuits only
// from identities not in before (nil: any), and returns them.
func waitNewGuardView(t *testing.T, relays []*Node, before map[peer.ID]bool, what string) map[peer.ID]bool {
	t.Helper()
	var after map[peer.ID]bool
	waitFor(t, 60*time.Second, what, func() bool {
		after = guardView(relays)
		for id := range after {
			if before[id] {
				return false // an old identity still holds a circuit
			}
		}
		return len(after) > 0
	})
	return after
}

// checkGuardViews: no identity a guard saw in one view is in another,
// and none is the node's own.
func checkGuardViews(t *testing.T, self peer.ID, views ...map[peer.ID]bool) {
	t.Helper()
	seen := map[peer.ID]int{}
	for i, v := range views {
		if v[self] {
			t.Fatalf("view %d: a guard saw the client's own identity %s on a circuit", i, self)
		}
		if len(v) != 1 {
			t.Fatalf("view %d: guards saw %d circuit identities, want one", i, len(v))
		}
		for id := range v {
			if j, ok := seen[id]; ok {
				t.Fatalf("views %d and %d share the circuit identity %s", j, i, id)
			}
			seen[id] = i
		}
	}
}

// TestGuardViewAcrossPeriods: with a short identity period the guards see
// the client's circuits come from a new peer ID each period, never the
// node's own, and the old identity's host closes once its circuits have.
func TestGuardViewAcrossPeriods(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNet(t, s, 3)
	cfg := net.client.Config()
	if err := net.client.Close(); err != nil {
		t.Fatal(err)
	}
	net.client = startNode(t, cfg, Options{AllowSameSubnet: true, CircuitIdentityPeriod: 3 * time.Second})
	net.waitReady(t)
	self := net.client.ID()
	first := waitNewGuardView(t, net.relays, nil, "the guards to see the client's circuits")
	second := waitNewGuardView(t, net.relays, first, "a new circuit identity in the second period")
	third := waitNewGuardView(t, net.relays, second, "a new circuit identity in the third period")
	checkGuardViews(t, self, first, second, third)
	waitFor(t, 30*time.Second, "the retired identities' hosts closed", func() bool { return net.client.cids.Hosts() <= 2 })
}

// TestNewIdentityNewPeerID: the control API's new identity (Tor's
// NEWNYM) makes the guards see the client's circuits from a new peer ID.
func TestNewIdentityNewPeerID(t *testing.T) {
	s := newTestTIS(t)
	net, _ := newTISNetClient(t, s, 3, func(c *config.Config) { c.Client.ControlListen = "127.0.0.1:0" })
	net.waitReady(t)
	before := waitNewGuardView(t, net.relays, nil, "the guards to see the client's circuits")
	c, err := client.ForDataDir(net.client.ControlAddr(), net.client.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.NewIdentity(ctx); err != nil {
		t.Fatal(err)
	}
	after := waitNewGuardView(t, net.relays, before, "the guards to see a new circuit identity")
	checkGuardViews(t, net.client.ID(), before, after)
	waitFor(t, 30*time.Second, "the old identity's host closed", func() bool { return net.client.cids.Hosts() == 1 })
}
