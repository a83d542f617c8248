package circuit

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// NewHost starts a libp2p host with identity priv listening on listen
// (none when empty), fit for the circuit protocol: no libp2p relaying, a
// resource manager whose limits fit ro's caps (one stream per circuit per
// link, for a relay's caps and for a client's circuits through its guard
// alike), the gater of AllowPrivateFor(listen) and LinkOptions; extra
// options come after these.
func NewHost(priv crypto.PrivKey, listen []string, ro RelayOptions, extra ...libp2p.Option) (host.Host, error) {
	return startHost(priv, listen, listen, ro, extra...)
}

// NewDialHost is NewHost for a host that listens nowhere and only dials
// (a client's circuit identity), whose gater allows private addresses as
// the node's listen addresses nodeListen say.
func NewDialHost(priv crypto.PrivKey, nodeListen []string, ro RelayOptions, extra ...libp2p.Option) (host.Host, error) {
	return startHost(priv, nil, nodeListen, ro, extra...)
}

// NewFreshDialHost is NewDialHost with a new Ed25519 identity: the host
// a client builds its circuits from (Identities), never the node's own
// identity (which its DHT and trust traffic use). It listens nowhere and
// serves no protocol of its own, so that a guard sees a peer ID nothing
// else carries (a Tor client's guard sees only its address, too).
func NewFreshDialHost(nodeListen []string, ro RelayOptions) (host.Host, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("circuit identity: %w", err)
	}
	h, err := NewDialHost(priv, nodeListen, ro, libp2p.DisableMetrics())
	if err != nil {
		return nil, fmt.Errorf("circuit host: %w", err)
	}
	return h, nil
}

func startHost(priv crypto.PrivKey, listen, nodeListen []string, ro RelayOptions, extra ...libp2p.Option) (host.Host, error) {
	rm, err := ResourceManager(ro)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.DisableRelay(),
		libp2p.ResourceManager(rm), // closed by the host
		libp2p.ConnectionGater(NewGater(AllowPrivateFor(nodeListen))),
	}
	opts = append(opts, extra...)
	opts = append(opts, LinkOptions()...)
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// Announce makes a host made with NewHost advertise the announce
// addresses instead of its listen addresses (a relay behind a port
// forward, as Tor's ORPort NoListen/NoAdvertise): identify, the relay's
// descriptor and the addresses the node prints then carry them. None: the
// listen addresses.
func Announce(announce []string) ([]libp2p.Option, error) {
	if len(announce) == 0 {
		return nil, nil
	}
	addrs := make([]ma.Multiaddr, 0, len(announce))
	for _, s := range announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("announce address %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	return []libp2p.Option{libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr {
		return slices.Clone(addrs)
	})}, nil
}

// HostAddrs are every address h is known at: those it advertises (with an
// AddrsFactory, the announced ones), its listen addresses and, where the
// host keeps them, the ones peers observe it at (a NAT's public address).
// An exit refuses them all as destinations.
func HostAddrs(h host.Host) []ma.Multiaddr {
	addrs := append(h.Addrs(), h.Network().ListenAddresses()...)
	if all, ok := h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		addrs = append(addrs, all.AllAddrs()...)
	}
	return addrs
}
