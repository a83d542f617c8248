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

// A peer without a descriptor is not looked up again for unknownRelayFor,
// so EXTENDs naming made-up peers cost the DHT one lookup each per minute,
// in a cache of at most maxUnknownRelays.
const (
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
	entry, neg := d.negative[id]
	d.mu.Unlock()
	if neg && now.Before(entry.until) {
		return nil, fmt.Errorf("relay addresses of %s: %w", id, ErrUnknownRelay)
	}
	// The first resolveQuorum answers, not the whole lookup: kad-dht's
	// default waits for every peer near the key, a dead one included.
	desc, err := d.fetch(ctx, id, dht.Quorum(resolveQuorum))
	if errors.Is(err, routing.ErrNotFound) {
		d.rememberUnknown(id, now)
		err = fmt.Errorf("%w: %w", ErrUnknownRelay, err)
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

// rememberUnknown adds id to the negative cache for unknownRelayFor,
// pruning expired entries when the cache is full and giving up when it
// stays full.
func (d *Discovery) rememberUnknown(id peer.ID, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.negative) >= maxUnknownRelays {
		for k, e := range d.negative {
			if !now.Before(e.until) {
				delete(d.negative, k)
			}
		}
		if len(d.negative) >= maxUnknownRelays {
			return
		}
	}
	if e := d.negative[id]; e.until.Before(now.Add(unknownRelayFor)) {
		e.until = now.Add(unknownRelayFor)
		d.negative[id] = e
	}
}
