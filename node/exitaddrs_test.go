package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	ma "github.com/multiformats/go-multiaddr"

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
