package exitnode

import (
	"context"
	"net/netip"
	"slices"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pikcio/pikcio/internal/sleep"
)

// An exit refuses its own addresses as destinations (NewPolicy's own), and
// these change while it runs: a NAT's public address observed by peers, a
// new interface. OwnIPs turns the host's addresses into that list, and
// KeepOwnAddrs applies a new list whenever it changes.

// OwnAddrsCheck is how often KeepOwnAddrs looks again at the own addresses
// without a change notice.
const OwnAddrsCheck = time.Minute

// OwnIPs are the distinct IP addresses of addrs, IPv4-mapped ones
// unmapped, without unspecified ones and addresses that carry no IP,
// sorted.
func OwnIPs(addrs []ma.Multiaddr) []netip.Addr {
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

// KeepOwnAddrs calls apply with own() whenever that differs from what was
// last applied (last at the start), looking at each notice on changed and
// every interval, until ctx ends. An apply that fails is tried again at
// the next look.
func KeepOwnAddrs(ctx context.Context, changed <-chan any, interval time.Duration, last []netip.Addr, own func() []netip.Addr, apply func([]netip.Addr) error) {
	sleep.Every(ctx, interval, changed, func() {
		if cur := own(); !slices.Equal(cur, last) && apply(cur) == nil {
			last = cur
		}
	})
}
