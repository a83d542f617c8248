package node

import (
	"context"

	"github.com/pikcio/pikcio/proxy"
)

// IPv6 destinations: an exit with relay.ipv6_exit publishes
// discovery.ExtIPv6Exit; a client sends streams to IPv6 literals
// (proxy.SplitIPv6) through a second pool whose circuits end at such
// exits. The status page shows the main pool's circuits only.

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
