package node

import (
	"context"
	"net"
	"net/netip"

	"github.com/pikcio/pikcio/proxy"
)

// IPv6 destinations. An exit with relay.ipv6_exit publishes
// discovery.ExtIPv6Exit; a client sends streams to IPv6 literals through a
// second pool whose circuits end at such exits (the main pool's circuits
// are built before their destinations are known, and their exits may not
// reach IPv6). Names are resolved at the exit, which tries both families
// (exitnode's Happy Eyeballs), so they use the main pool. The status page
// shows the main pool's circuits only.

// buildIPv6Circuit is the IPv6 pool's BuildFunc: a path whose exit reaches
// IPv6 (see build).
func (n *Node) buildIPv6Circuit(ctx context.Context) (proxy.Circuit, error) {
	return n.build(ctx, true)
}

// newIPv6Pool is the pool for IPv6 literals: no prebuilt circuits.
func newIPv6Pool(n *Node, opts proxy.PoolOptions) *proxy.Pool {
	opts.Prebuilt = -1
	return proxy.NewPool(n.buildIPv6Circuit, opts)
}

// ipv6Dialer sends streams to IPv6 literals to v6, the rest to Dialer.
type ipv6Dialer struct {
	proxy.Dialer
	v6 *proxy.Pool
}

func (d ipv6Dialer) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return d.v6.Dial(ctx, isolationKey, host, port)
	}
	return d.Dialer.Dial(ctx, isolationKey, host, port)
}
