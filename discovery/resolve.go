package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
)

// A peer without a descriptor is not looked up again for unknownRelayMin,
// doubling up to unknownRelayFor, so EXTENDs naming made-up peers cost the
// DHT one lookup each per minute, in a cache of at most maxUnknownRelays.
const (
	unknownRelayMin  = 2 * time.Second
	unknownRelayFor  = time.Minute
	maxUnknownRelays = 4096
	// resolveQuorum is how many DHT answers a relay waits for when it
	// resolves a next hop it has no descriptor of; the newest wins.
	resolveQuorum = 2
)

// ErrUnknownRelay reports a peer with no valid descriptor in the DHT.
var ErrUnknownRelay = errors.New("no descriptor for relay")

// RelayAddrs returns the addresses of relay id from its verified
// descriptor: the directory's, or else one fetched from the DHT and
// verified (and the VerifyRelay check). A relay extends circuits only to
// peers it answers for (circuit.RelayOptions.ResolveHop), so an EXTEND
// cannot make it dial anything but a relay, at the relay's own addresses.
func (d *Discovery) RelayAddrs(ctx context.Context, id peer.ID) ([]ma.Multiaddr, error) {
	if desc, ok := d.Descriptor(id); ok {
		return desc.Addrs, nil
	}
	now := d.o.now()
	d.mu.Lock()
	entry, neg := d.unknown[id]
	d.mu.Unlock()
	if neg && now.Before(entry.until) {
		return nil, fmt.Errorf("relay addresses of %s: %w", id, ErrUnknownRelay)
	}
	// The first resolveQuorum answers, not the whole lookup: kad-dht's
	// default waits for every peer near the key, a dead one included.
	desc, err := d.fetch(ctx, id, dht.Quorum(resolveQuorum))
	switch {
	case errors.Is(err, routing.ErrNotFound):
		d.rememberUnknown(id, now)
		err = fmt.Errorf("%w: %w", ErrUnknownRelay, err)
	case err == nil:
		d.mu.Lock()
		delete(d.unknown, id)
		d.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("relay addresses: %w", err)
	}
	if !now.Before(desc.Expires) {
		return nil, fmt.Errorf("relay addresses: descriptor of %s expired", id)
	}
	d.dir.put(desc)
	return desc.Addrs, nil
}

// rememberUnknown keeps id out of lookups a while: unknownRelayMin the
// first time, doubling while it stays unknown up to unknownRelayFor. A
// relay that publishes late (a client extends to it as soon as it has its
// descriptor) is found again in seconds; a made-up peer costs a lookup a
// minute. The cache is pruned of ended entries when full, and gives up
// when it stays full. It is apart from Refresh's negative cache, so that a
// peer a refresh found without a descriptor (before it published) does
// not refuse EXTENDs to it for as long.
func (d *Discovery) rememberUnknown(id peer.ID, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.unknown) >= maxUnknownRelays {
		for k, e := range d.unknown {
			if !now.Before(e.until.Add(e.wait)) {
				delete(d.unknown, k)
			}
		}
		if len(d.unknown) >= maxUnknownRelays {
			return
		}
	}
	d.unknown[id] = d.unknown[id].next(now, unknownRelayMin, unknownRelayFor)
}
