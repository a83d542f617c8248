package proxy

import (
	"context"
	"net"
	"net/netip"
)

// SplitIPv6 sends streams to IPv6 literals to v6 and the rest (names,
// IPv4 and IPv4-mapped addresses) to d. A client keeps a second pool whose
// circuits end at exits that reach IPv6 (discovery's ExtIPv6Exit) for v6:
// the main pool's circuits are built before their destinations are known,
// and their exits may not reach IPv6. Names are resolved at the exit,
// which tries both families, so they stay on d. Like the observing
// wrappers, the result is no Resolver: WithResolver adds one.
func SplitIPv6(d, v6 Dialer) Dialer { return splitIPv6{d, v6} }

type splitIPv6 struct{ d, v6 Dialer }

func (s splitIPv6) Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error) {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return s.v6.Dial(ctx, isolationKey, host, port)
	}
	return s.d.Dial(ctx, isolationKey, host, port)
}
