package circuit

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DialableAddr reports whether a relay may dial a: an IPv4 or IPv6 address
// with TCP, or UDP and QUIC v1, and at most a /p2p suffix. Never a name
// (/dns*: the relay would resolve what a client chose), /ws or /wss (which
// speak HTTP to whatever listens), a relay circuit or a Unix socket; never
// an unspecified, multicast or reserved address; and a loopback, private,
// link-local or shared (CGNAT) address only when allowPrivate (a test
// network on loopback, a LAN).
func DialableAddr(a ma.Multiaddr, allowPrivate bool) bool {
	comps := []ma.Component(a)
	if len(comps) > 0 && comps[len(comps)-1].Code() == ma.P_P2P {
		comps = comps[:len(comps)-1]
	}
	switch len(comps) {
	case 2:
		if comps[1].Code() != ma.P_TCP {
			return false
		}
	case 3:
		if comps[1].Code() != ma.P_UDP || comps[2].Code() != ma.P_QUIC_V1 {
			return false
		}
	default:
		return false
	}
	if c := comps[0].Code(); c != ma.P_IP4 && c != ma.P_IP6 {
		return false
	}
	ip, ok := netip.AddrFromSlice(comps[0].RawValue())
	if !ok {
		return false
	}
	return PublicIP(ip) || (allowPrivate && privateIP(ip))
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

var shared = netip.MustParsePrefix("100.64.0.0/10")

// PublicIP reports whether ip is a global unicast address a relay may
// always dial.
func PublicIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || shared.Contains(ip) {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// privateIP: loopback, private, link-local or shared.
func privateIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || shared.Contains(ip)
}

// AllowPrivateFor reports whether a node listening on listen is on a
// private network (a loopback or private listen address: a test network,
// a LAN), and so may dial private addresses.
func AllowPrivateFor(listen []string) bool {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if ip, err := manet.ToIP(a); err == nil {
			if nip, ok := netip.AddrFromSlice(ip); ok && privateIP(nip) {
				return true
			}
		}
	}
	return false
}

// Gater is a libp2p connection gater that lets the host dial only the
// addresses DialableAddr allows: whatever asks the host to connect (an
// EXTEND, a DHT record, identify), it never reaches a name it did not
// resolve itself, an HTTP server through /ws, or, on a public node, a
// loopback or private service. Inbound connections are not gated.
type Gater struct{ allowPrivate bool }

// NewGater returns a gater; allowPrivate lets private and loopback
// addresses through (see AllowPrivateFor).
func NewGater(allowPrivate bool) *Gater { return &Gater{allowPrivate: allowPrivate} }

// InterceptPeerDial allows every peer.
func (g *Gater) InterceptPeerDial(peer.ID) bool { return true }

// InterceptAddrDial allows the addresses DialableAddr does. libp2p calls
// it with names already resolved.
func (g *Gater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool {
	return DialableAddr(a, g.allowPrivate)
}

// InterceptAccept allows every inbound connection.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured allows every secured connection.
func (g *Gater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}

// InterceptUpgraded allows every upgraded connection.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
