package discovery

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// fabricate makes a signed descriptor with the given flags, exit ports and
// address; these are data only, nothing is sent to the address.
func fabricate(t testing.TB, now time.Time, flags Flags, ports []PortRange, addr string) *Descriptor {
	t.Helper()
	d, _ := signedDescriptor(t, newKey(t), now, func(d *Descriptor) {
		d.Flags, d.ExitPorts = flags, ports
		d.Addrs = []ma.Multiaddr{mustAddr(t, addr)}
	})
	return d
}

// fabricateNet makes n relays in distinct /16s: every third an exit for
// 443 only, every other one a guard.
func fabricateNet(t testing.TB, now time.Time, n int) []*Descriptor {
	out := make([]*Descriptor, n)
	for i := range out {
		flags := FlagRelay
		var ports []PortRange
		if i%3 == 0 {
			flags |= FlagExit
			ports = []PortRange{{443, 443}}
		}
		if i%2 == 0 {
			flags |= FlagGuard
		}
		out[i] = fabricate(t, now, flags, ports, fmt.Sprintf("/ip4/10.%d.0.1/tcp/4001", i))
	}
	return out
}

func checkPath(t *testing.T, path []*Descriptor, hops int, port uint16, sameSubnetOK bool) {
	t.Helper()
	if len(path) != hops {
		t.Fatalf("path of %d hops, want %d", len(path), hops)
	}
	seen := map[peer.ID]bool{}
	for i, d := range path {
		if seen[d.PeerID] {
			t.Fatalf("relay %d twice in a path", i)
		}
		seen[d.PeerID] = true
		for _, e := range path[:i] {
			if !sameSubnetOK && sameSubnet(d, e) {
				t.Fatalf("hops share a subnet: %v %v", d.Addrs, e.Addrs)
			}
		}
	}
	exit := path[len(path)-1]
	if port != 0 && !exit.AcceptsPort(port) {
		t.Fatalf("exit does not accept %d", port)
	}
	if hops > 1 && !path[0].Flags.Has(FlagGuard) {
		t.Fatal("first hop is not a guard")
	}
}

func TestSelectPath(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 30)
	ssh := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{22, 22}}, "/ip4/10.200.0.1/tcp/1")
	relays = append(relays, ssh)
	s := &Selector{}
	for hops := 1; hops <= MaxHops; hops++ {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			for range 50 {
				path, err := s.Select(relays, PathRequest{Hops: hops, Port: 443}, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkPath(t, path, hops, 443, false)
			}
		})
	}
	t.Run("exit port filter", func(t *testing.T) {
		for range 20 {
			path, err := s.Select(relays, PathRequest{Port: 22}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if path[2] != ssh {
				t.Fatal("port 22 did not get the only exit accepting it")
			}
		}
		if _, err := s.Select(relays, PathRequest{Port: 25}, nil); !errors.Is(err, ErrNoExit) {
			t.Fatalf("port nobody accepts: %v", err)
		}
	})
	t.Run("unknown port needs 443 and 80", func(t *testing.T) {
		if _, err := s.Select(relays, PathRequest{}, nil); !errors.Is(err, ErrNoExit) {
			t.Fatalf("no exit accepts 80 and 443, got %v", err)
		}
		web := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{80, 80}, {443, 443}}, "/ip4/10.201.0.1/tcp/1")
		path, err := s.Select(append(relays, web), PathRequest{}, nil)
		if err != nil || path[2] != web {
			t.Fatalf("unknown port: %v", err)
		}
	})
	t.Run("bad hop counts", func(t *testing.T) {
		for _, h := range []int{-1, MaxHops + 1} {
			if _, err := s.Select(relays, PathRequest{Hops: h, Port: 443}, nil); !errors.Is(err, ErrHops) {
				t.Fatalf("%d hops: %v", h, err)
			}
		}
	})
}

func TestSelectSubnets(t *testing.T) {
	now := time.Now()
	guard := fabricate(t, now, FlagRelay|FlagGuard, nil, "/ip4/203.0.1.1/tcp/1")
	sameGuard16 := fabricate(t, now, FlagRelay, nil, "/ip4/203.0.200.7/tcp/1") // same /16 as guard
	exit := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{443, 443}}, "/ip6/2001:db8:1::1/tcp/1")
	sameExit32 := fabricate(t, now, FlagRelay, nil, "/ip6/2001:db8:ffff::2/tcp/1") // same /32 as exit
	mapped := fabricate(t, now, FlagRelay, nil, "/ip6/::ffff:203.0.9.9/tcp/1")     // IPv4-mapped, guard's /16
	relays := []*Descriptor{guard, sameGuard16, exit, sameExit32, mapped}
	s := &Selector{}
	if _, err := s.Select(relays, PathRequest{Port: 443}, nil); !errors.Is(err, ErrNoMiddle) {
		t.Fatalf("every middle shares a subnet, got %v", err)
	}
	other := fabricate(t, now, FlagRelay, nil, "/ip4/198.18.0.1/tcp/1")
	for range 20 {
		path, err := s.Select(append(relays, other), PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if path[0] != guard || path[1] != other || path[2] != exit {
			t.Fatalf("wrong path %v", ids(path))
		}
	}
	lo := &Selector{AllowSameSubnet: true}
	seen := map[peer.ID]bool{}
	for range 200 {
		path, err := lo.Select(relays, PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkPath(t, path, 3, 443, true)
		seen[path[1].PeerID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("with AllowSameSubnet %d middles used, want 3", len(seen))
	}
}

// TestSelectObservedSubnet: two relays that declare addresses in
// different /16s but are reached at the same /16 never share a path.
func TestSelectObservedSubnet(t *testing.T) {
	now := time.Now()
	guard := fabricate(t, now, FlagRelay|FlagGuard, nil, "/ip4/203.0.1.1/tcp/1")
	liar := fabricate(t, now, FlagRelay, nil, "/ip4/198.18.0.1/tcp/1") // declares another /16
	honest := fabricate(t, now, FlagRelay, nil, "/ip4/192.0.2.1/tcp/1")
	exit := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{443, 443}}, "/ip4/100.64.0.1/tcp/1")
	observed := map[peer.ID][]ma.Multiaddr{liar.PeerID: {mustAddr(t, "/ip4/203.0.77.7/tcp/1")}} // reached in the guard's /16
	s := &Selector{Observed: func(id peer.ID) []ma.Multiaddr { return observed[id] }}
	for range 50 {
		path, err := s.Select([]*Descriptor{guard, liar, honest, exit}, PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if path[1] == liar {
			t.Fatalf("a relay reached in the guard's /16 was chosen with it: %v", ids(path))
		}
	}
	if _, err := s.Select([]*Descriptor{guard, liar, exit}, PathRequest{Port: 443}, nil); !errors.Is(err, ErrNoMiddle) {
		t.Fatalf("only the liar as middle: %v, want ErrNoMiddle", err)
	}
}

// TestSelectNeverDNSOnly: a relay whose descriptor lists only /dns
// addresses is never chosen, in any role.
func TestSelectNeverDNSOnly(t *testing.T) {
	now := time.Now()
	guard := fabricate(t, now, FlagRelay|FlagGuard, nil, "/ip4/203.0.1.1/tcp/1")
	middle := fabricate(t, now, FlagRelay, nil, "/ip4/192.0.2.1/tcp/1")
	exit := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{443, 443}}, "/ip4/100.64.0.1/tcp/1")
	dnsGuard := fabricate(t, now, FlagRelay|FlagGuard, nil, "/dns4/relay.example/tcp/1")
	dnsMiddle := fabricate(t, now, FlagRelay, nil, "/dns4/middle.example/tcp/1")
	dnsExit := fabricate(t, now, FlagRelay|FlagExit, []PortRange{{443, 443}}, "/dns6/exit.example/tcp/1")
	s := &Selector{}
	for range 100 {
		path, err := s.Select([]*Descriptor{guard, middle, exit, dnsGuard, dnsMiddle, dnsExit}, PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range path {
			if d == dnsGuard || d == dnsMiddle || d == dnsExit {
				t.Fatalf("a relay with only /dns addresses was chosen: %v", d.Addrs)
			}
		}
	}
	if _, err := s.Select([]*Descriptor{dnsGuard, dnsMiddle, dnsExit}, PathRequest{Port: 443}, nil); err == nil {
		t.Fatal("a path of /dns-only relays was selected")
	}
}

func TestSelectNeverExpiredOrSelf(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 12)
	expired := fabricate(t, now.Add(-2*time.Hour), FlagRelay|FlagGuard|FlagExit, []PortRange{{443, 443}}, "/ip4/10.100.0.1/tcp/1")
	keyExpired, _ := signedDescriptor(t, newKey(t), now.Add(-10*time.Minute), func(d *Descriptor) {
		d.OnionKey.Expires = now.Add(-time.Second)
		d.Addrs = []ma.Multiaddr{mustAddr(t, "/ip4/10.101.0.1/tcp/1")}
	})
	self := relays[0].PeerID
	s := &Selector{Self: self, Now: func() time.Time { return now }}
	all := append(relays, expired, keyExpired)
	for range 300 {
		path, err := s.Select(all, PathRequest{Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range path {
			if d == expired || d == keyExpired || d.PeerID == self {
				t.Fatalf("chose %v", d.PeerID)
			}
		}
	}
}

type mapWeigher map[peer.ID]float64

func (w mapWeigher) Weight(d *Descriptor, _ Role) float64 { return w[d.PeerID] }

// chiSquare returns the statistic of observed counts against weights.
func chiSquare(counts map[peer.ID]int, weights map[peer.ID]float64, n int) (float64, int) {
	var total float64
	for _, w := range weights {
		total += w
	}
	var chi float64
	df := -1
	for id, w := range weights {
		if w <= 0 {
			continue
		}
		exp := float64(n) * w / total
		d := float64(counts[id]) - exp
		chi += d * d / exp
		df++
	}
	return chi, df
}

// chiBound is far above the 0.999 quantile of chi-square with df degrees
// of freedom, so a correct sampler does not fail it.
func chiBound(df int) float64 { return float64(df) + 6*math.Sqrt(2*float64(df)) + 10 }

func TestSelectWeights(t *testing.T) {
	now := time.Now()
	exits := make([]*Descriptor, 8)
	w := mapWeigher{}
	for i := range exits {
		exits[i] = fabricate(t, now, FlagRelay|FlagExit|FlagGuard, []PortRange{{443, 443}}, fmt.Sprintf("/ip4/10.%d.0.1/tcp/1", i))
		w[exits[i].PeerID] = float64(i % 4) // 0, 1, 2, 3: zero weight is never chosen
	}
	s := &Selector{Weigher: w}
	const n = 1000
	counts := map[peer.ID]int{}
	for range n {
		path, err := s.Select(exits, PathRequest{Hops: 1, Port: 443}, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[path[0].PeerID]++
	}
	for i, d := range exits {
		t.Logf("exit %d weight %.0f: %d", i, w[d.PeerID], counts[d.PeerID])
		if w[d.PeerID] == 0 && counts[d.PeerID] != 0 {
			t.Fatalf("zero-weight exit chosen %d times", counts[d.PeerID])
		}
	}
	chi, df := chiSquare(counts, w, n)
	t.Logf("chi-square %.1f, %d degrees of freedom, bound %.1f", chi, df, chiBound(df))
	if chi > chiBound(df) {
		t.Fatalf("distribution does not follow the weights: chi-square %.1f > %.1f", chi, chiBound(df))
	}
	zero := &Selector{Weigher: mapWeigher{}}
	if _, err := zero.Select(exits, PathRequest{Hops: 1, Port: 443}, nil); !errors.Is(err, ErrNoExit) {
		t.Fatalf("all weights zero: %v", err)
	}
}

func TestSelectGuardOrder(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 12)
	var guards []peer.ID
	for _, d := range relays {
		if d.Flags.Has(FlagGuard) && !d.IsExit() {
			guards = append(guards, d.PeerID)
		}
	}
	s := &Selector{}
	for range 50 {
		path, err := s.Select(relays, PathRequest{Port: 443}, guards[:3])
		if err != nil {
			t.Fatal(err)
		}
		if path[0].PeerID != guards[0] {
			t.Fatal("first hop is not the primary guard")
		}
	}
	// The primary guard is not in the directory: the first backup is used.
	absent := append([]peer.ID{"gone"}, guards[1:3]...)
	path, err := s.Select(relays, PathRequest{Port: 443}, absent)
	if err != nil || path[0].PeerID != guards[1] {
		t.Fatalf("backup guard not used: %v", err)
	}
	if _, err := s.Select(relays, PathRequest{Port: 443}, []peer.ID{}); !errors.Is(err, ErrNoGuard) {
		t.Fatalf("empty guard set: %v", err)
	}
	// The only guard is also the only exit for the port: another exit is
	// impossible, so the path cannot be built.
	both := fabricate(t, now, FlagRelay|FlagGuard|FlagExit, []PortRange{{22, 22}}, "/ip4/10.250.0.1/tcp/1")
	if _, err := s.Select(append(relays, both), PathRequest{Port: 22}, []peer.ID{both.PeerID}); !errors.Is(err, ErrNoExit) {
		t.Fatalf("guard = only exit: %v", err)
	}
	// The guard shares a /16 with the first exit drawn: another exit is drawn.
	g := fabricate(t, now, FlagRelay|FlagGuard, nil, "/ip4/10.0.77.1/tcp/1") // relays[0] is exit in 10.0/16
	for range 30 {
		path, err := s.Select(append(relays, g), PathRequest{Port: 443}, []peer.ID{g.PeerID})
		if err != nil {
			t.Fatal(err)
		}
		if path[0] != g || path[2] == relays[0] {
			t.Fatal("exit in the guard's /16")
		}
	}
}

// TestSelectInternal: a path that ends inside the network (a service's
// intro point or rendezvous relay) needs no exit.
func TestSelectInternal(t *testing.T) {
	now := time.Now()
	var relays []*Descriptor
	for i := range 6 {
		relays = append(relays, fabricate(t, now, FlagRelay|FlagGuard, nil, fmt.Sprintf("/ip4/10.%d.0.1/tcp/4001", i)))
	}
	s := &Selector{Now: func() time.Time { return now }}
	for _, c := range []struct {
		req  PathRequest
		fail bool
	}{
		{PathRequest{}, true},
		{PathRequest{Internal: true}, false},
		{PathRequest{Internal: true, AvoidExits: []peer.ID{relays[0].PeerID}}, false},
	} {
		path, err := s.Select(relays, c.req, nil)
		if c.fail != (err != nil) {
			t.Fatalf("%+v: path %d hops, err %v", c.req, len(path), err)
		}
		if err == nil && len(path) != DefaultHops {
			t.Fatalf("%+v: %d hops", c.req, len(path))
		}
	}
}
