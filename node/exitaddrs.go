package node

import (
	"net/netip"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ownAddrsCheck is how often an exit re-reads its own addresses even
// without an address-change event.
const ownAddrsCheck = time.Minute

// ownAddrs are the IP addresses the node is reachable at, which its exit
// refuses as destinations: the host's listen and interface addresses, and
// the addresses peers observe it at (a NATed public IP) and that it
// announces.
func (n *Node) ownAddrs() []netip.Addr {
	var addrs []ma.Multiaddr
	if extra := n.extraOwnAddrs.Load(); extra != nil {
		addrs = append(addrs, *extra...)
	}
	addrs = append(addrs, n.host.Addrs()...) // announced ones with node.announce
	addrs = append(addrs, n.host.Network().ListenAddresses()...)
	if h, ok := n.host.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		addrs = append(addrs, h.AllAddrs()...) // with observed addresses
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, err := manet.ToIP(a)
		if err != nil {
			continue
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		if addr.IsUnspecified() || slices.Contains(out, addr) {
			continue
		}
		out = append(out, addr)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// keepExitAddrs re-applies the exit policy with the node's own addresses
// whenever they change (an address-change event, or the periodic check):
// an exit must not reach itself at an address it learned after start.
// last is what the addresses were when sub was made.
func (n *Node) keepExitAddrs(sub event.Subscription, last []netip.Addr) {
	defer sub.Close()
	t := time.NewTicker(ownAddrsCheck)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-sub.Out():
		case <-t.C:
		}
		cur := n.ownAddrs()
		if slices.Equal(cur, last) {
			continue
		}
		n.mu.Lock()
		rules := n.cfg.Relay.ExitPolicy
		n.mu.Unlock()
		p, err := n.exitPolicy(rules)
		if err != nil {
			n.log.WithError(err).Warn("exit policy with new own addresses")
			continue
		}
		n.exit.SetPolicy(p)
		last = cur
		n.log.Debug("exit policy updated for new own addresses")
	}
}
