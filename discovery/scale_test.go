package discovery

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestScale runs 50 relays in one process (12 under -short or -race) and
// reports, per discovery strategy, the share of relays a fresh client finds
// in one refresh round and the time it takes, then checks 1,000 path
// selections against the relay weights.
func TestScale(t *testing.T) {
	n := 50
	if heavy() {
		n = 12
	}
	start := time.Now()
	net := newTestNetwork(t, n)
	t.Logf("%d relays up and published in %v", n, time.Since(start).Round(time.Millisecond))

	ctx := testContext(t, 2*time.Minute)
	var full *Discovery
	for _, s := range []struct {
		name     string
		strategy Strategy
	}{{"walk", StrategyWalk}, {"providers", StrategyProviders}, {"both", StrategyBoth}} {
		c := net.newClient(WithStrategy(s.strategy), NoDiscovery())
		var line []string
		for round := 1; round <= 3; round++ {
			st, err := c.Refresh(ctx)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			line = append(line, fmt.Sprintf("round %d: %d/%d (%.0f%%) in %v, %d asked, walk met %d, %d providers",
				round, st.Relays, n, 100*float64(st.Relays)/float64(n), st.Duration.Round(time.Millisecond),
				st.Candidates, st.FromWalk, st.Providers))
		}
		t.Logf("strategy %s:\n\t%s", s.name, strings.Join(line, "\n\t"))
		if s.strategy == StrategyBoth {
			full = c
		}
	}
	// Both strategies together must find every relay within a few rounds.
	discoverAll(t, full, n, 30*time.Second)

	// 1,000 selections of 3-hop paths with weights 1, 2, 3.
	relays := full.Relays()
	w := mapWeigher{}
	for i, d := range relays {
		w[d.PeerID] = float64(1 + i%3)
	}
	s := &Selector{Self: full.host.ID(), Weigher: w, AllowSameSubnet: true}
	const paths = 1000
	use := map[peer.ID][3]int{}
	exits := map[peer.ID]int{}
	for range paths {
		path, err := s.Select(relays, PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range path {
			u := use[d.PeerID]
			u[i]++
			use[d.PeerID] = u
		}
		exits[path[2].PeerID]++
	}
	exitWeights := map[peer.ID]float64{}
	for _, d := range relays {
		if d.AcceptsPort(443) {
			exitWeights[d.PeerID] = w[d.PeerID]
		}
	}
	var total float64
	for _, x := range exitWeights {
		total += x
	}
	var b strings.Builder
	fmt.Fprintf(&b, "relay use over %d paths (guard/middle/exit, expected exit share):\n", paths)
	sorted := append([]*Descriptor(nil), relays...)
	sort.Slice(sorted, func(i, j int) bool { return w[sorted[i].PeerID] < w[sorted[j].PeerID] })
	for _, d := range sorted {
		u := use[d.PeerID]
		exp := 0.0
		if x, ok := exitWeights[d.PeerID]; ok {
			exp = paths * x / total
		}
		fmt.Fprintf(&b, "\t%s w=%.0f %-6s %4d %4d %4d  exit expected %5.1f %s\n", d.PeerID.ShortString(), w[d.PeerID],
			flagString(d.Flags), u[0], u[1], u[2], exp, strings.Repeat("#", (u[0]+u[1]+u[2])/10))
	}
	chi, df := chiSquare(exits, exitWeights, paths)
	fmt.Fprintf(&b, "exit chi-square %.1f, %d degrees of freedom, bound %.1f", chi, df, chiBound(df))
	t.Log(b.String())
	if chi > chiBound(df) {
		t.Fatalf("exit choices do not follow the weights: chi-square %.1f > %.1f", chi, chiBound(df))
	}
}

func flagString(f Flags) string {
	s := ""
	for _, x := range []struct {
		f Flags
		c string
	}{{FlagRelay, "R"}, {FlagGuard, "G"}, {FlagExit, "E"}} {
		if f.Has(x.f) {
			s += x.c
		}
	}
	return s
}

func BenchmarkSelectPath(b *testing.B) {
	now := time.Now()
	relays := fabricateNet(b, now, 200)
	s := &Selector{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Select(relays, PathRequest{Port: 443}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "paths/s")
}
