package discovery

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// directory holds the verified descriptors a node knows and the relays it
// marked down after a failure. Descriptors in it are never modified.
type directory struct {
	mu     sync.Mutex
	relays map[peer.ID]*Descriptor
	down   map[peer.ID]time.Time // until when
}

func newDirectory() *directory {
	return &directory{relays: map[peer.ID]*Descriptor{}, down: map[peer.ID]time.Time{}}
}

// put stores a verified descriptor unless the directory has a newer one of
// the same relay. It reports whether d was stored.
func (dir *directory) put(d *Descriptor) bool {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if old, ok := dir.relays[d.PeerID]; ok && !newer(d, old) {
		return false
	}
	dir.relays[d.PeerID] = d
	return true
}

func (dir *directory) get(id peer.ID) (*Descriptor, bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	d, ok := dir.relays[id]
	return d, ok
}

// expire drops the descriptors (or onion keys) expired at now and the down
// marks that ended, and returns how many descriptors it dropped.
func (dir *directory) expire(now time.Time) int {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	n := 0
	for id, d := range dir.relays {
		if !now.Before(d.Expires) || !now.Before(d.OnionKey.Expires) {
			delete(dir.relays, id)
			n++
		}
	}
	for id, until := range dir.down {
		if !now.Before(until) {
			delete(dir.down, id)
		}
	}
	return n
}

// markDown keeps id out of paths until until (a later mark wins).
func (dir *directory) markDown(id peer.ID, until time.Time) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if until.After(dir.down[id]) {
		dir.down[id] = until
	}
}

func (dir *directory) clearDown(id peer.ID) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	delete(dir.down, id)
}

// usable returns the descriptors valid at now of relays not marked down,
// sorted by peer ID.
func (dir *directory) usable(now time.Time) []*Descriptor {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]*Descriptor, 0, len(dir.relays))
	for _, id := range slices.Sorted(maps.Keys(dir.relays)) {
		d := dir.relays[id]
		if now.Before(d.Expires) && now.Before(d.OnionKey.Expires) && !now.Before(dir.down[id]) {
			out = append(out, d)
		}
	}
	return out
}

// all returns every descriptor valid at now, down or not.
func (dir *directory) all(now time.Time) []*Descriptor {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]*Descriptor, 0, len(dir.relays))
	for _, id := range slices.Sorted(maps.Keys(dir.relays)) {
		if d := dir.relays[id]; now.Before(d.Expires) && now.Before(d.OnionKey.Expires) {
			out = append(out, d)
		}
	}
	return out
}

func (dir *directory) ids() []peer.ID {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return slices.Collect(maps.Keys(dir.relays))
}

// drop removes the descriptors for which refuse is true and returns how
// many it removed. refuse runs under the directory's lock and must not
// call back into it.
func (dir *directory) drop(refuse func(*Descriptor) bool) int {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	n := 0
	for id, d := range dir.relays {
		if refuse(d) {
			delete(dir.relays, id)
			n++
		}
	}
	return n
}
