package discovery

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
)

// fakeCircuitClient records the hops it is asked for and fails with err.
type fakeCircuitClient struct {
	hops []circuit.Hop
	err  error
}

func (f *fakeCircuitClient) Build(_ context.Context, hops []circuit.Hop) (*circuit.Circuit, error) {
	f.hops = hops
	if f.err != nil {
		return nil, f.err
	}
	return &circuit.Circuit{}, nil
}

func TestCircuitBuild(t *testing.T) {
	now := time.Now()
	path := fabricateNet(t, now, 3)
	errTokens := errors.New("no tokens")
	other := errors.New("other")
	cases := []struct {
		name    string
		err     error
		wantHop int // -1: no HopError
		local   bool
	}{
		{"built", nil, -1, false},
		{"hop 1 failed", &circuit.BuildError{Hop: 1, Err: other}, 1, false},
		{"hop 0 failed", fmt.Errorf("wrapped: %w", &circuit.BuildError{Hop: 0, Err: other}), 0, false},
		{"no hop's fault", &circuit.BuildError{Hop: 0, Err: errTokens}, -1, true},
		{"not a build error", other, -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCircuitClient{err: tc.err}
			build := CircuitBuild(f, func(err error) bool { return errors.Is(err, errTokens) })
			c, err := build(t.Context(), path)
			if len(f.hops) != len(path) {
				t.Fatalf("%d hops, want %d", len(f.hops), len(path))
			}
			for i, h := range f.hops {
				if h.ID != path[i].PeerID || h.OnionKey != path[i].OnionKey.Key || len(h.Addrs) != len(path[i].Addrs) {
					t.Fatalf("hop %d is %+v, want descriptor %s", i, h, path[i].PeerID)
				}
			}
			if tc.err == nil {
				if err != nil || c == nil {
					t.Fatalf("built: %v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, tc.err) && !errors.Is(err, errors.Unwrap(tc.err)) {
				t.Fatalf("error %v does not carry %v", err, tc.err)
			}
			if _, local := errors.AsType[*LocalError](err); local != tc.local {
				t.Fatalf("error %v: LocalError %v, want %v", err, local, tc.local)
			}
			he, isHop := errors.AsType[*HopError](err)
			switch {
			case tc.wantHop < 0 && isHop:
				t.Fatalf("HopError %v, want none", he)
			case tc.wantHop >= 0 && (!isHop || he.Hop != tc.wantHop):
				t.Fatalf("error %v, want a HopError for hop %d", err, tc.wantHop)
			}
		})
	}
}

// TestCircuitFailed: an integrity failure after build counts against the
// guard, also for hops the directory no longer knows; a close does not.
func TestCircuitFailed(t *testing.T) {
	guard := fabricate(t, time.Now(), FlagGuard, nil, "/ip4/10.9.0.1/tcp/4001").PeerID
	d, path := guardNet(t, guard)
	hops := Hops(path)
	hops[2].ID = peer.ID("gone") // not in the directory
	d.CircuitFailed(hops, fmt.Errorf("closed: %w", circuit.ErrCircuitClosed))
	if g := d.Guards(); len(g) != 1 || g[0].CircuitFailures != 0 {
		t.Fatalf("after a close: %+v, want no failure", g)
	}
	d.CircuitFailed(hops, fmt.Errorf("cell: %w", circuit.ErrIntegrity))
	d.CircuitFailed(hops, &circuit.DestroyedError{Reason: circuit.DestroyProtocol})
	if g := d.Guards(); len(g) != 1 || g[0].CircuitFailures != 2 {
		t.Fatalf("after two tampering failures: %+v, want two", g)
	}
}
