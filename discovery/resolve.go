package discovery

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// RelayAddrs returns the addresses of relay id from its verified
// descriptor: the directory's, or else one fetched from the DHT and
// verified (and the VerifyRelay check). A relay extends circuits only to
// peers it answers for (circuit.RelayOptions.ResolveHop), so an EXTEND
// cannot make it dial anything but a relay, at the relay's own addresses.
func (d *Discovery) RelayAddrs(ctx context.Context, id peer.ID) ([]ma.Multiaddr, error) {
	if desc, ok := d.Descriptor(id); ok {
		return desc.Addrs, nil
	}
	desc, err := d.fetch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("relay addresses: %w", err)
	}
	now := d.o.now()
	if !now.Before(desc.Expires) {
		return nil, fmt.Errorf("relay addresses: descriptor of %s expired", id)
	}
	d.dir.put(desc)
	return desc.Addrs, nil
}
