package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	ma "github.com/multiformats/go-multiaddr"
)

// TestExitRefusesAddressLearnedLater: an exit whose host learns a new own
// address after start (here the public address a NAT would make peers
// observe, which a test cannot reach) refuses it as a destination once the
// host says its addresses changed. Before, the exit kept the addresses it
// had at start.
func TestExitRefusesAddressLearnedLater(t *testing.T) {
	n := startNode(t, relayConfig(t, true, nil, nil), Options{})
	natted := netip.MustParseAddr("8.8.4.4")
	if !n.exit.Policy().Allows(natted, 443) {
		t.Fatal("a public address refused before it was the exit's own")
	}
	extra := []ma.Multiaddr{ma.StringCast("/ip4/8.8.4.4/tcp/4001")}
	n.extraOwnAddrs.Store(&extra)
	em, err := n.host.EventBus().Emitter(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	if err := em.Emit(event.EvtLocalAddressesUpdated{Diffs: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the exit's new own address refused", func() bool {
		return !n.exit.Policy().Allows(natted, 443)
	})
}
