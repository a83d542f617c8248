package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/circuit"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
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

// TestShortCircuitsWarn: a client configured with fewer than three hops
// starts (tests and the demo use them) but warns; three hops do not.
func TestShortCircuitsWarn(t *testing.T) {
	for _, hops := range []int{1, 2, 3} {
		hook := new(logtest.Hook)
		old := logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
		logrus.AddHook(hook)
		cfg := testConfig(t)
		cfg.Client.Hops = hops
		startNode(t, cfg, Options{})
		warned := false
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && e.Data["hops"] == hops {
				warned = true
			}
		}
		logrus.StandardLogger().ReplaceHooks(old)
		if warned != (hops < 3) {
			t.Errorf("%d hops: warned %v", hops, warned)
		}
	}
}

// TestCircuitFailureReachesPathBias: a built circuit that fails for
// integrity counts against its guard in discovery; one closed for lack of
// resources does not.
func TestCircuitFailureReachesPathBias(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 4, exits: 2, policy: []string{"accept 127.0.0.1:*"}})
	n.waitReady(t)
	c := n.client
	onFailure := c.clientOptions().OnFailure
	if onFailure == nil {
		t.Fatal("the circuit client is not told to report failures")
	}
	circs := c.cc.Circuits()
	if len(circs) == 0 {
		t.Fatal("no circuit")
	}
	path := circs[0].Path()
	failures := func() int {
		for _, g := range c.disc.Guards() {
			if g.ID == path[0].ID {
				return g.CircuitFailures
			}
		}
		t.Fatal("the circuit's first hop is not a guard")
		return 0
	}
	onFailure(path, &circuit.DestroyedError{Reason: circuit.DestroyResource})
	if got := failures(); got != 0 {
		t.Fatalf("a resource refusal counted: %d", got)
	}
	onFailure(path, &circuit.DestroyedError{Reason: circuit.DestroyIntegrity})
	if got := failures(); got != 1 {
		t.Fatalf("%d path-bias failures after an integrity failure, want 1", got)
	}
}
