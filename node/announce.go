package node

import (
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"
)

// announceOptions make the host advertise the node.announce addresses
// instead of its listen addresses (a relay behind a port forward, as Tor's
// ORPort NoListen/NoAdvertise): identify, the relay's descriptor and the
// addresses the node prints then carry them. None: the listen addresses.
func announceOptions(announce []string) ([]libp2p.Option, error) {
	if len(announce) == 0 {
		return nil, nil
	}
	addrs := make([]ma.Multiaddr, 0, len(announce))
	for _, s := range announce {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("node.announce %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	return []libp2p.Option{libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr {
		return slices.Clone(addrs)
	})}, nil
}
