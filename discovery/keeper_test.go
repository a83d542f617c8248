package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// fakeDirectory is a Directory whose relays the test sets; it counts
// refreshes.
type fakeDirectory struct {
	mu        sync.Mutex
	relays    []*Descriptor
	refreshes int
	refreshed chan struct{}
}

func (f *fakeDirectory) Refresh(context.Context) (RefreshStats, error) {
	f.mu.Lock()
	f.refreshes++
	n := len(f.relays)
	f.mu.Unlock()
	select {
	case f.refreshed <- struct{}{}:
	default:
	}
	return RefreshStats{Relays: n}, nil
}

func (f *fakeDirectory) Relays() []*Descriptor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.relays
}

func (f *fakeDirectory) set(relays []*Descriptor) {
	f.mu.Lock()
	f.relays = relays
	f.mu.Unlock()
}

// keeperNet is a guard, a middle and an exit for every port.
func keeperNet(t *testing.T) []*Descriptor {
	now := time.Now()
	var out []*Descriptor
	for i, flags := range []Flags{FlagRelay | FlagGuard, FlagRelay, FlagRelay | FlagExit} {
		var ports []PortRange
		if flags.Has(FlagExit) {
			ports = []PortRange{{1, 65535}}
		}
		out = append(out, fabricate(t, now, flags, ports, fmt.Sprintf("/ip4/10.%d.0.1/tcp/4001", i)))
	}
	return out
}

func newTestKeeper(d Directory, possible func()) *Keeper {
	return NewKeeper(d, Selector{}, func() int { return 3 }, possible, logrus.NewEntry(logrus.StandardLogger()))
}

// TestKeeperWaitPath: with too few relays WaitPath pokes the keeper and
// fails with ErrNoPath and the selection's reason when its context ends;
// it returns once relays for a path appear.
func TestKeeperWaitPath(t *testing.T) {
	d := &fakeDirectory{}
	k := newTestKeeper(d, func() {})
	ctx, cancel := context.WithTimeout(t.Context(), 3*WaitPathPoll)
	defer cancel()
	err := k.WaitPath(ctx, PathRequest{Hops: 3})
	if !errors.Is(err, ErrNoPath) || !IsSelectError(err) {
		t.Fatalf("WaitPath without relays: %v, want ErrNoPath with a selection error", err)
	}
	select {
	case <-k.poke:
	default:
		t.Fatal("WaitPath did not poke the keeper")
	}

	go func() {
		time.Sleep(WaitPathPoll)
		d.set(keeperNet(t))
	}()
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := k.WaitPath(ctx, PathRequest{Hops: 3}); err != nil {
		t.Fatalf("WaitPath after relays appeared: %v", err)
	}
}

// TestKeeperRun: the keeper calls possible once, when a path can first be
// made, not again at later refreshes; a poke refreshes again; Run ends
// with its context.
func TestKeeperRun(t *testing.T) {
	d := &fakeDirectory{refreshed: make(chan struct{}, 1)}
	var mu sync.Mutex
	calls := 0
	k := newTestKeeper(d, func() { mu.Lock(); calls++; mu.Unlock() })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	wait := func() {
		t.Helper()
		select {
		case <-d.refreshed:
		case <-time.After(20 * time.Second):
			t.Fatal("no refresh")
		}
	}
	wait() // no relays yet
	d.set(keeperNet(t))
	k.Poke()
	wait()
	k.Poke()
	wait()
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("possible called %d times, want once", calls)
	}
}

func TestIsSelectError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", ErrNoExit), true},
		{ErrNoGuard, true},
		{ErrNoMiddle, true},
		{context.DeadlineExceeded, false},
	} {
		if got := IsSelectError(tt.err); got != tt.want {
			t.Errorf("IsSelectError(%v) = %v", tt.err, got)
		}
	}
}
