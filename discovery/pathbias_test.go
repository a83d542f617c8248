package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/pikcio/pikcio/circuit"
)

// guardNet is a Discovery client whose directory holds fabricated relays,
// with guard standing in for the relay at index 0 (the only guard).
func guardNet(t *testing.T, guard peer.ID, opts ...Option) (*Discovery, []*Descriptor) {
	t.Helper()
	now := time.Now()
	relays := fabricateNet(t, now, 6)
	for i, d := range relays {
		d.Flags &^= FlagGuard
		if i == 0 {
			d.PeerID = guard
			d.Flags |= FlagGuard
		}
	}
	d, err := New(newHost(t), append([]Option{NoDiscovery(), Guards(1, 3), DataDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, r := range relays {
		d.dir.put(r)
	}
	ids, err := d.guards.refresh(d.dir.usable(now), now)
	if err != nil || !slices.Equal(ids, []peer.ID{guard}) {
		t.Fatalf("guards %v (%v), want the one guard", ids, err)
	}
	return d, []*Descriptor{relays[0], relays[1], relays[3]}
}

// TestResourceRefusalsKeepGuard: a real relay that refuses with
// DESTROY(resource) three times stays the client's guard (an attacker can
// make a relay busy; it should not push clients off their guards), while
// three failures to reach it count.
func TestResourceRefusalsKeepGuard(t *testing.T) {
	gh := newHost(t)
	opts := circuit.DefaultRelayOptions()
	opts.MaxCircuitsPerPeer = 1
	r, err := circuit.NewRelay(gh, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ch := newHost(t)
	cc := circuit.NewClient(ch, circuit.DefaultClientOptions())
	t.Cleanup(func() { cc.Close() })
	build := circuitBuild(cc)
	ctx := testContext(t, 30*time.Second)
	hop := []*Descriptor{{PeerID: gh.ID(), Addrs: gh.Addrs(), OnionKey: OnionKey{Key: r.OnionKey().Public}}}
	held, err := build(ctx, hop) // takes the one circuit the guard allows us
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })

	d, path := guardNet(t, gh.ID())
	for range 3 {
		_, err := build(ctx, hop)
		if de, ok := errors.AsType[*circuit.DestroyedError](err); !ok || de.Reason != circuit.DestroyResource {
			t.Fatalf("build through a full relay: %v, want DESTROY(resource)", err)
		}
		d.ReportFailure(path, err)
	}
	if g := d.Guards(); len(g) != 1 || g[0].ID != gh.ID() || g[0].Failures != 0 {
		t.Fatalf("guards after three resource refusals: %+v, want the guard without failures", g)
	}
	// Unreachability does count: once per down mark (three reports of one
	// outage are one failure).
	for range 3 {
		d.ReportFailure(path, &HopError{Hop: 0, Err: errors.New("connection refused")})
	}
	if g := d.Guards(); len(g) != 1 || g[0].Failures != 1 {
		t.Fatalf("guards after three unreachable in one outage: %+v, want one failure counted", g)
	}
}

// TestPathBiasDropsGuard: circuits through a guard that fail after they
// were built are counted; past the threshold the guard is dropped with one
// warning and never sampled again, and the counts survive a restart.
func TestPathBiasDropsGuard(t *testing.T) {
	hook := logtest.NewGlobal()
	level := logrus.GetLevel()
	logrus.SetLevel(logrus.WarnLevel)
	t.Cleanup(func() { logrus.SetLevel(level); hook.Reset() })
	guard := fabricate(t, time.Now(), FlagGuard, nil, "/ip4/10.9.0.1/tcp/4001").PeerID
	d, path := guardNet(t, guard, PathBias(10, 0.3))
	for range 10 {
		d.ReportSuccess(path)
	}
	warnings := func() int {
		n := 0
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && e.Data["guard"] == guard {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 3; i++ {
		d.ReportCircuitFailure(path)
		g := d.Guards()
		if len(g) != 1 || g[0].CircuitFailures != i || g[0].Circuits != 10 {
			t.Fatalf("after %d failures: %+v", i, g)
		}
	}
	if warnings() != 0 {
		t.Fatal("warned below the threshold")
	}
	d.ReportCircuitFailure(path) // 4 of 10 > 30%
	d.ReportCircuitFailure(path)
	if g := d.Guards(); len(g) != 0 {
		t.Fatalf("guards %+v, want the biased guard dropped", g)
	}
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings, want one", n)
	}
	now := time.Now()
	ids, _ := d.guards.refresh(d.dir.usable(now), now)
	if slices.Contains(ids, guard) {
		t.Fatal("dropped guard sampled again")
	}
	g2, err := loadGuardSet(d.guards.path, d.guards.cfg, d.sel)
	if err != nil {
		t.Fatal(err)
	}
	if !g2.disabled[guard] {
		t.Fatal("path-bias drop not persisted")
	}
}
