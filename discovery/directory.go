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
	down   map[peer.ID]downMark
}

// downMark keeps a relay out of paths until a time. A descriptor the relay
// published after the one the mark was made against (it restarted, or
// changed its key or addresses) lifts the mark: the failure said nothing
// about it. failures counts the hop failures since the relay last worked,
// so that a relay that keeps failing stays out longer each time.
type downMark struct {
	until    time.Time
	against  time.Time // Published of the descriptor known when marked
	failures int
	forgetAt time.Time // the failure count is dropped after this
	// refusedBy is the last relay that refused (or left unanswered) an
	// EXTEND to this one, at refusedAt; refusals counts its refusals in
	// a row, which double its short marks.
	refusedBy peer.ID
	refusedAt time.Time
	refusals  int
}

func newDirectory() *directory {
	return &directory{relays: map[peer.ID]*Descriptor{}, down: map[peer.ID]downMark{}}
}

// put stores a verified descriptor unless the directory has a newer one of
// the same relay. It reports whether d was stored; a stored descriptor
// newer than the one a down mark was made against lifts the mark.
func (dir *directory) put(d *Descriptor) bool {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if old, ok := dir.relays[d.PeerID]; ok && !newer(d, old) {
		return false
	}
	dir.relays[d.PeerID] = d
	if m, ok := dir.down[d.PeerID]; ok && d.Published.After(m.against) {
		m.until = time.Time{}
		dir.down[d.PeerID] = m
	}
	return true
}

// hasNewer reports whether the directory holds a descriptor of d's relay
// published after d (one that would lift a mark made against d).
func (dir *directory) hasNewer(d *Descriptor) bool {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	cur, ok := dir.relays[d.PeerID]
	return ok && cur.Published.After(d.Published)
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
	for id, m := range dir.down {
		if !now.Before(m.until) && !now.Before(m.forgetAt) {
			delete(dir.down, id)
		}
	}
	return n
}

// markDown keeps id out of paths until until (a later mark wins), without
// counting a failure.
func (dir *directory) markDown(id peer.ID, until time.Time) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	m := dir.markLocked(id)
	if until.After(m.until) {
		m.until = until
	}
	m.forgetAt = later(m.forgetAt, m.until)
	dir.down[id] = m
}

// markFailed counts a failure of id and keeps it out of paths for first,
// doubled for every failure since it last worked, up to limit. It reports
// whether id was already down (a failure of a build that chose it before
// the mark), and then counts nothing.
func (dir *directory) markFailed(id peer.ID, now time.Time, first, limit time.Duration) (wasDown bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	m := dir.markLocked(id)
	if now.Before(m.until) && m.failures > 0 {
		return true
	}
	m.failures++
	d := first
	for i := 1; i < m.failures && d < limit; i++ {
		d *= 2
	}
	m.until = later(m.until, now.Add(min(d, limit)))
	// Forget the count once it has been quiet for as long as the longest mark.
	m.forgetAt = m.until.Add(limit)
	dir.down[id] = m
	return false
}

// markRefused records that relay by refused an EXTEND to id at now. When
// another relay refused id within window, it reports true, and the caller
// blames id in full: two relays saying so is evidence. Otherwise id is
// kept out of paths briefly, for first doubled by every refusal by the
// same relay in a row, up to limit, and no failure is counted: one relay's
// word (a middle refusing every EXTEND to an exit it wants clients off)
// keeps a relay out for seconds, and only when that relay is on the path.
func (dir *directory) markRefused(id, by peer.ID, now time.Time, first, limit, window time.Duration) (corroborated bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	m := dir.markLocked(id)
	recent := m.refusedBy != "" && now.Before(m.refusedAt.Add(window))
	if recent && m.refusedBy != by {
		m.refusedBy, m.refusals = "", 0
		dir.down[id] = m
		return true
	}
	if !recent || m.refusedBy != by {
		m.refusals = 0
	}
	m.refusedBy, m.refusedAt = by, now
	m.refusals++
	d := first
	for i := 1; i < m.refusals && d < limit; i++ {
		d *= 2
	}
	m.until = later(m.until, now.Add(min(d, limit)))
	m.forgetAt = later(m.forgetAt, now.Add(window))
	dir.down[id] = m
	return false
}

// markLocked returns id's mark, made against the descriptor known now (the
// one the failure was met with). The caller holds dir.mu.
func (dir *directory) markLocked(id peer.ID) downMark {
	m := dir.down[id]
	if d := dir.relays[id]; d != nil {
		m.against = d.Published
	}
	return m
}

// isDown reports whether id is kept out of paths at now.
func (dir *directory) isDown(id peer.ID, now time.Time) bool {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return now.Before(dir.down[id].until)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
		if now.Before(d.Expires) && now.Before(d.OnionKey.Expires) && !now.Before(dir.down[id].until) {
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
