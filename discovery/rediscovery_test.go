package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestDownMarks(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 1)
	d1 := relays[0]
	id := d1.PeerID
	usable := func(dir *directory, at time.Time) bool { return len(dir.usable(at)) == 1 }

	t.Run("escalate", func(t *testing.T) {
		dir := newDirectory()
		dir.put(d1)
		at := now
		for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
			if dir.markFailed(id, at, 30*time.Second, 4*time.Minute) {
				t.Fatalf("failure %d: reported already down", i)
			}
			if usable(dir, at.Add(want-time.Millisecond)) || !usable(dir, at.Add(want)) {
				t.Fatalf("failure %d: not down for exactly %v", i, want)
			}
			// A build that chose it before the mark fails too: not counted.
			if !dir.markFailed(id, at.Add(time.Second), 30*time.Second, 4*time.Minute) {
				t.Fatalf("failure %d: second failure within the mark counted", i)
			}
			at = at.Add(want)
		}
		dir.clearDown(id)
		dir.markFailed(id, at, 30*time.Second, 4*time.Minute)
		if !usable(dir, at.Add(30*time.Second)) {
			t.Fatal("a success did not reset the escalation")
		}
	})

	t.Run("newer descriptor lifts", func(t *testing.T) {
		dir := newDirectory()
		dir.put(d1)
		dir.markFailed(id, now, time.Minute, time.Hour)
		if dir.put(d1) || usable(dir, now) {
			t.Fatal("the same descriptor lifted the mark")
		}
		d2 := *d1
		d2.Published = d1.Published.Add(time.Second)
		d2.Signature = nil
		if !dir.put(&d2) || !usable(dir, now) {
			t.Fatal("a newer descriptor did not lift the mark")
		}
		// Marked again, against d2 now.
		dir.markFailed(id, now, time.Minute, time.Hour)
		if usable(dir, now) {
			t.Fatal("not marked down against the newer descriptor")
		}
	})

	t.Run("suspect", func(t *testing.T) {
		dir := newDirectory()
		dir.put(d1)
		dir.markDown(id, now.Add(time.Minute))
		if usable(dir, now) || !usable(dir, now.Add(time.Minute)) {
			t.Fatal("suspect mark wrong")
		}
		dir.expire(now.Add(time.Minute))
		if len(dir.down) != 0 {
			t.Fatal("ended mark kept")
		}
	})
}

// TestGuardFailureOncePerMark: builds that all chose a guard before it was
// marked down count one failure against it, not one each.
func TestGuardFailureOncePerMark(t *testing.T) {
	d := offlineDiscovery(t, fabricateNet(t, time.Now(), 24))
	path, err := d.SelectPath(PathRequest{Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d.ReportFailure(path, &HopError{Hop: 0, Err: errors.New("connection refused")})
	}
	for _, g := range d.Guards() {
		if g.ID == path[0].PeerID && g.Failures != 1 {
			t.Fatalf("guard failures %d, want 1", g.Failures)
		}
	}
}

// TestRestartedRelayUsedAgain: a relay that failed a build and then
// republishes (it restarted) is chosen again within seconds, without
// waiting for a refresh or for its down mark to end.
func TestRestartedRelayUsedAgain(t *testing.T) {
	const n = 3
	net := newTestNetwork(t, n)
	c := net.newClient()
	discoverAll(t, c, n, 30*time.Second)
	r := net.relays[1]
	desc, _ := c.Descriptor(r.h.ID())
	c.ReportFailure([]*Descriptor{desc}, &HopError{Hop: 0, Err: errors.New("handshake failed")})
	if containsID(c.Relays(), r.h.ID()) {
		t.Fatal("failed relay still chosen")
	}
	time.Sleep(time.Second) // the relay is still down: nothing newer
	if containsID(c.Relays(), r.h.ID()) {
		t.Fatal("relay back without a newer descriptor")
	}
	info, _ := r.relayInfo()
	info.OnionKey = OnionKey{Key: randKey(), Expires: time.Now().Add(time.Hour)}
	r.setInfo(info)
	ctx := testContext(t, time.Minute)
	back := time.Now()
	if err := r.d.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "restarted relay chosen again", func() bool { return containsID(c.Relays(), r.h.ID()) })
	t.Logf("relay chosen again %v after it republished", time.Since(back).Round(time.Millisecond))
	if d, _ := c.Descriptor(r.h.ID()); d.OnionKey.Key != info.OnionKey.Key {
		t.Fatal("old onion key kept")
	}
}

// TestNegativeCacheShort: a DHT server without a descriptor is asked again
// after seconds the first time, not after twice the refresh interval.
func TestNegativeCacheShort(t *testing.T) {
	net := newTestNetwork(t, 1)
	c := net.newClient()
	ctx := testContext(t, time.Minute)
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	neg, ok := c.negative[net.boot.host.ID()]
	c.mu.Unlock()
	if !ok {
		t.Fatal("bootstrap node without a descriptor not in the negative cache")
	}
	// The client's own first refresh may have missed it too: two misses.
	if left := time.Until(neg.until); left > 2*negativeMin {
		t.Fatalf("asked again in %v, want at most %v", left, 2*negativeMin)
	}
}

// TestSelectAvoidExits: exits a request avoids are passed over while
// another fits, and used when none does.
func TestSelectAvoidExits(t *testing.T) {
	relays := fabricateNet(t, time.Now(), 24)
	var exits []peer.ID
	for _, d := range relays {
		if d.Flags&FlagExit != 0 {
			exits = append(exits, d.PeerID)
		}
	}
	for _, hops := range []int{1, 3} {
		for _, guards := range [][]peer.ID{nil, {relays[0].PeerID, relays[2].PeerID}} {
			sel := &Selector{AllowSameSubnet: true}
			keep := exits[len(exits)-1]
			for range 20 {
				path, err := sel.Select(relays, PathRequest{Hops: hops, Port: 443, AvoidExits: exits[:len(exits)-1]}, guards)
				if err != nil {
					t.Fatal(err)
				}
				if got := path[len(path)-1].PeerID; got != keep && !(hops > 1 && guards != nil && slices.Contains(guards, keep)) {
					t.Fatalf("%d hops: exit %s avoided, want %s", hops, got, keep)
				}
			}
			if _, err := sel.Select(relays, PathRequest{Hops: hops, Port: 443, AvoidExits: exits}, guards); err != nil {
				t.Fatalf("every exit avoided: %v", err)
			}
		}
	}
}

// TestSelectAvoidMiddles: relays a request avoids are passed over as
// middles while another fits, and used when none does.
func TestSelectAvoidMiddles(t *testing.T) {
	relays := fabricateNet(t, time.Now(), 24)
	sel := &Selector{AllowSameSubnet: true}
	var avoid []peer.ID
	for _, d := range relays {
		avoid = append(avoid, d.PeerID)
	}
	// Everything but the last relay avoided: the middle is the last relay
	// whenever it can be one (it is not the path's guard or exit).
	keep := relays[len(relays)-1]
	for range 20 {
		path, err := sel.Select(relays, PathRequest{Hops: 3, Port: 443, Avoid: avoid[:len(avoid)-1]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m := path[1]; m.PeerID != keep.PeerID && path[0].PeerID != keep.PeerID && path[2].PeerID != keep.PeerID && keep.Flags.Has(FlagRelay) {
			t.Fatalf("middle %s avoided, want %s", m.PeerID, keep.PeerID)
		}
	}
	if _, err := sel.Select(relays, PathRequest{Hops: 3, Port: 443, Avoid: avoid}, nil); err != nil {
		t.Fatalf("every relay avoided: %v", err)
	}
}

// TestAllGuardsDownTriedAgain: when every guard is marked down (each
// failed once, as in churn), paths still go through a guard, the guards
// are tried again, rather than every build failing with ErrNoGuard until a
// mark ends.
func TestAllGuardsDownTriedAgain(t *testing.T) {
	d := offlineDiscovery(t, fabricateNet(t, time.Now(), 24))
	if _, err := d.SelectPath(PathRequest{Port: 443}); err != nil {
		t.Fatal(err)
	}
	guards := d.Guards()
	if len(guards) == 0 {
		t.Fatal("no guards")
	}
	for _, g := range guards {
		desc, ok := d.Descriptor(g.ID)
		if !ok {
			t.Fatalf("guard %s not in the directory", g.ID)
		}
		d.ReportFailure([]*Descriptor{desc, desc}, &HopError{Hop: 0, Err: errors.New("connection refused")})
	}
	path, err := d.SelectPath(PathRequest{Port: 443})
	if err != nil {
		t.Fatalf("every guard down once: %v", err)
	}
	if !slices.ContainsFunc(guards, func(g GuardInfo) bool { return g.ID == path[0].PeerID }) {
		t.Fatalf("first hop %s is not one of the guards", path[0].PeerID)
	}
}

// refusedErr is a build error as circuit.BuildError reports an EXTEND
// that the hop before the failing one refused or left unanswered.
type refusedErr struct{}

func (refusedErr) Error() string               { return "could not extend to next hop" }
func (refusedErr) ReportedByPreviousHop() bool { return true }

// TestRefusedExtendShortMark: a relay that one previous hop refused to
// extend to (it did not know it yet, or lies to steer clients off it) is
// kept out of paths for seconds, longer while the same hop keeps refusing
// it; a refusal by a second hop, or a failure the client saw itself,
// marks it down in full.
func TestRefusedExtendShortMark(t *testing.T) {
	relays := fabricateNet(t, time.Now(), 4)
	guard, m1, m2, exit := relays[0], relays[1], relays[2], relays[3]
	type report struct {
		middle *Descriptor
		err    error
	}
	refusedBy := func(m *Descriptor) report { return report{m, &HopError{Hop: 2, Err: refusedErr{}}} }
	tests := []struct {
		name    string
		reports []report // one every refusedTime
		down    time.Duration
	}{
		{"one refusal", []report{refusedBy(m1)}, refusedTime},
		{"same hop again", []report{refusedBy(m1), refusedBy(m1)}, 2 * refusedTime},
		{"same hop thrice", []report{refusedBy(m1), refusedBy(m1), refusedBy(m1)}, 4 * refusedTime},
		{"two hops", []report{refusedBy(m1), refusedBy(m2)}, firstDownTime},
		{"seen by the client", []report{{m1, &HopError{Hop: 2, Err: errors.New("handshake failed")}}}, firstDownTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := offlineDiscovery(t, relays)
			start := time.Now()
			var at time.Time
			for i, r := range tt.reports {
				at = start.Add(time.Duration(i) * refusedTime)
				d.o.now = func() time.Time { return at }
				d.ReportFailure([]*Descriptor{guard, r.middle, exit}, r.err)
			}
			if !d.dir.isDown(exit.PeerID, at.Add(tt.down-time.Millisecond)) || d.dir.isDown(exit.PeerID, at.Add(tt.down)) {
				t.Fatalf("exit not down for exactly %v after the last report", tt.down)
			}
			for _, r := range []*Descriptor{guard, m1, m2} {
				if d.dir.isDown(r.PeerID, at) {
					t.Fatalf("relay %s on the path marked down", r.PeerID.ShortString())
				}
			}
		})
	}
}

// TestFailureThroughReplacedDescriptor: a build that met a relay through a
// descriptor the directory has replaced since (it dialed a restarted
// guard at its old addresses while a refresh brought the new ones) marks
// nothing down and counts no guard failure. Before, the mark was made
// against the newer descriptor, so no lookup could lift it: the relay
// stayed out of paths for the whole first down time (TestFailover's
// restarted guard known 30 s after it was back).
func TestFailureThroughReplacedDescriptor(t *testing.T) {
	tests := []struct {
		name string
		hop  int
		err  error
	}{
		{"guard unreachable", 0, errors.New("connection refused")},
		{"middle handshake", 1, errors.New("handshake failed")},
		{"exit refused by the middle", 2, refusedErr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := offlineDiscovery(t, fabricateNet(t, time.Now(), 24))
			path, err := d.SelectPath(PathRequest{Port: 443})
			if err != nil {
				t.Fatal(err)
			}
			old := path[tt.hop]
			fresh := *old
			fresh.Published = old.Published.Add(time.Second)
			fresh.Signature = nil
			if !d.dir.put(&fresh) {
				t.Fatal("newer descriptor not stored")
			}
			d.ReportFailure(path, &HopError{Hop: tt.hop, Err: tt.err})
			if d.dir.isDown(old.PeerID, d.o.now()) {
				t.Fatal("relay marked down for a failure through its replaced descriptor")
			}
			for _, g := range d.Guards() {
				if g.Failures != 0 {
					t.Fatalf("guard %s: %d failures counted", g.ID.ShortString(), g.Failures)
				}
			}
			// Through the descriptor the directory holds, it is blamed.
			path[tt.hop] = &fresh
			d.ReportFailure(path, &HopError{Hop: tt.hop, Err: errors.New("connection refused")})
			if !d.dir.isDown(old.PeerID, d.o.now()) {
				t.Fatal("relay not marked down for a failure through its current descriptor")
			}
		})
	}
}

// TestLostRelayLookedUpAgain: when the node loses its connection to a
// relay it has a descriptor of, it looks that descriptor up again for a
// while, so that a relay that restarted (new addresses, in the test a new
// onion key) is known as it is now within seconds, before a build dials
// it at its old addresses. Before, the directory kept the old descriptor
// until the next refresh (TestFailover: a backup guard that had restarted
// as an exit was dialed at its old ports, a second lost per attempt).
func TestLostRelayLookedUpAgain(t *testing.T) {
	const n = 3
	net := newTestNetwork(t, n)
	c := net.newClient()
	discoverAll(t, c, n, 30*time.Second)
	r := net.relays[1]
	ctx := testContext(t, time.Minute)
	if err := c.host.Connect(ctx, peer.AddrInfo{ID: r.h.ID(), Addrs: r.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := c.host.Network().ClosePeer(r.h.ID()); err != nil {
		t.Fatal(err)
	}
	info, _ := r.relayInfo()
	info.OnionKey = OnionKey{Key: randKey(), Expires: time.Now().Add(time.Hour)}
	r.setInfo(info)
	if err := r.d.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the republished descriptor", func() bool {
		d, ok := c.Descriptor(r.h.ID())
		return ok && d.OnionKey.Key == info.OnionKey.Key
	})
	if !containsID(c.Relays(), r.h.ID()) {
		t.Fatal("relay not usable")
	}
}

// TestLostRelayWatchesBounded: only relays the directory holds are looked
// up when their connection is lost, and at most maxGoneWatches at a time,
// so peers that connect and drop (any DHT peer can) cost no lookups of
// made-up keys and no unbounded goroutines.
func TestLostRelayWatchesBounded(t *testing.T) {
	relays := fabricateNet(t, time.Now(), maxGoneWatches+8)
	d := offlineDiscovery(t, relays)
	if err := d.Start(testContext(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	stranger := fabricateNet(t, time.Now(), 1)[0].PeerID
	d.watchGone(stranger)
	for _, r := range relays {
		d.watchGone(r.PeerID)
		d.watchGone(r.PeerID) // a second loss extends the watch under way
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.watching[stranger]; ok {
		t.Fatal("a peer without a descriptor is watched")
	}
	if len(d.watching) != maxGoneWatches || d.goneWatches != maxGoneWatches {
		t.Fatalf("%d relays watched (%d lost), want %d", len(d.watching), d.goneWatches, maxGoneWatches)
	}
}
