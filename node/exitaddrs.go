package node

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/event"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/exitnode"
)

// ownAddrs are the IP addresses the node is reachable at, which its exit
// refuses as destinations (circuit.HostAddrs: announced, listen and
// observed addresses).
func (n *Node) ownAddrs() []netip.Addr {
	var addrs []ma.Multiaddr
	if extra := n.extraOwnAddrs.Load(); extra != nil {
		addrs = append(addrs, *extra...)
	}
	return exitnode.OwnIPs(append(addrs, circuit.HostAddrs(n.host)...))
}

// keepExitAddrs re-applies the exit policy with the node's own addresses
// whenever they change (an address-change event, or the periodic check):
// an exit must not reach itself at an address it learned after start.
// last is what the addresses were when sub was made.
func (n *Node) keepExitAddrs(sub event.Subscription, last []netip.Addr) {
	defer sub.Close()
	exitnode.KeepOwnAddrs(n.ctx, sub.Out(), exitnode.OwnAddrsCheck, last, n.ownAddrs, func([]netip.Addr) error {
		n.mu.Lock()
		rules := n.cfg.Relay.ExitPolicy
		n.mu.Unlock()
		p, err := n.exitPolicy(rules)
		if err != nil {
			n.log.WithError(err).Warn("exit policy with new own addresses")
			return err
		}
		n.exit.SetPolicy(p)
		n.log.Debug("exit policy updated for new own addresses")
		return nil
	})
}
