package discovery

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
)

// fakePathSource selects paths from a fixed set of relays, guard first.
type fakePathSource struct {
	sel    *Selector
	relays []*Descriptor
	guards []peer.ID
}

func (f *fakePathSource) SelectPath(req PathRequest) ([]*Descriptor, error) {
	return f.sel.Select(f.relays, req, f.guards)
}

func (f *fakePathSource) Descriptor(id peer.ID) (*Descriptor, bool) {
	for _, d := range f.relays {
		if d.PeerID == id {
			return d, true
		}
	}
	return nil, false
}

// TestServicePath: a path to a named relay ends there and holds it once,
// also when it is the guard and when only three relays exist; a path to
// any relay avoids the avoided ones while others exist, and takes one of
// them when none does.
func TestServicePath(t *testing.T) {
	now := time.Now()
	fab := func(n int) []*Descriptor {
		var out []*Descriptor
		for i := range n {
			out = append(out, fabricate(t, now, FlagRelay|FlagGuard, nil, fmt.Sprintf("/ip4/10.%d.0.1/tcp/4001", i)))
		}
		return out
	}
	sel := &Selector{Now: func() time.Time { return now }}
	six, three := fab(6), fab(3)
	tests := []struct {
		name   string
		relays []*Descriptor
		to     int // index of the named relay; -1: any
		avoid  []int
	}{
		{"to a middle", six, 3, nil},
		{"to the guard", six, 0, nil},
		{"to the guard of three", three, 0, nil},
		{"to a relay of three", three, 2, nil},
		{"any", six, -1, nil},
		{"any avoiding", six, -1, []int{1, 2, 3}},
		{"any avoiding all but the path", three, -1, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakePathSource{sel: sel, relays: tt.relays, guards: []peer.ID{tt.relays[0].PeerID}}
			var to peer.ID
			if tt.to >= 0 {
				to = tt.relays[tt.to].PeerID
			}
			var avoid []peer.ID
			for _, i := range tt.avoid {
				avoid = append(avoid, tt.relays[i].PeerID)
			}
			for range 20 {
				path, err := servicePath(f, to, avoid)
				if err != nil {
					t.Fatal(err)
				}
				if len(path) != DefaultHops {
					t.Fatalf("%d hops", len(path))
				}
				seen := map[peer.ID]bool{}
				for _, d := range path {
					if seen[d.PeerID] {
						t.Fatal("a relay twice in a path")
					}
					seen[d.PeerID] = true
				}
				last := path[len(path)-1].PeerID
				if to != "" && last != to {
					t.Fatalf("ends at %s, not %s", last.ShortString(), to.ShortString())
				}
				if to == "" && len(avoid) < len(tt.relays)-2 {
					for _, a := range avoid {
						if a == last {
							t.Fatal("ends at an avoided relay while others exist")
						}
					}
				}
			}
		})
	}
	f := &fakePathSource{sel: sel, relays: six, guards: []peer.ID{six[0].PeerID}}
	if _, err := servicePath(f, fab(1)[0].PeerID, nil); !errors.Is(err, circuit.ErrNotRelay) {
		t.Fatalf("to an unknown relay: %v", err)
	}
}
