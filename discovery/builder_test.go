package discovery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// offlineDiscovery is a Discovery, never started, whose directory holds
// fabricated relays.
func offlineDiscovery(t *testing.T, relays []*Descriptor, opts ...Option) *Discovery {
	t.Helper()
	d, err := New(newHost(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, r := range relays {
		d.dir.put(r)
	}
	return d
}

// fakeBuild records the paths it is given and fails as told.
type fakeBuild struct {
	mu    sync.Mutex
	paths [][]*Descriptor
	fail  func(path []*Descriptor, ctx context.Context) error
}

func (f *fakeBuild) build(ctx context.Context, path []*Descriptor) (int, error) {
	f.mu.Lock()
	f.paths = append(f.paths, path)
	n := len(f.paths)
	f.mu.Unlock()
	if err := f.fail(path, ctx); err != nil {
		return 0, err
	}
	return n, nil
}

func TestBuilderRetriesAnotherRelay(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 24)
	d := offlineDiscovery(t, relays)
	bad := map[peer.ID]bool{}
	for _, r := range relays[1:12] {
		bad[r.PeerID] = true
	}
	f := &fakeBuild{fail: func(path []*Descriptor, _ context.Context) error {
		if bad[path[1].PeerID] {
			return &HopError{Hop: 1, Err: errors.New("extend refused")}
		}
		return nil
	}}
	b := NewBuilder(d, f.build, BuilderOptions{MaxAttempts: 20})
	for range 5 {
		_, path, err := b.Build(context.Background(), PathRequest{Port: 443})
		if err != nil {
			t.Fatal(err)
		}
		if bad[path[1].PeerID] {
			t.Fatal("built through a failing middle")
		}
	}
	blamed := map[peer.ID]bool{}
	for _, p := range f.paths {
		if bad[p[1].PeerID] {
			blamed[p[1].PeerID] = true
			if containsID(d.Relays(), p[1].PeerID) {
				t.Fatal("failing middle not marked down")
			}
		}
	}
	for _, p := range f.paths {
		for _, h := range p {
			if !blamed[h.PeerID] && !containsID(d.Relays(), h.PeerID) {
				t.Fatal("a hop that did not fail was marked down")
			}
		}
	}
	t.Logf("%d builds, %d middles blamed", len(f.paths), len(blamed))
	for _, gi := range d.Guards() {
		if gi.Failures != 0 {
			t.Fatal("a middle's failure counted against the guard")
		}
	}
}

func TestBuilderTimeout(t *testing.T) {
	now := time.Now()
	d := offlineDiscovery(t, fabricateNet(t, now, 24))
	est := NewTimeoutEstimator()
	for range buildMinSamples {
		est.Success(10 * time.Millisecond)
	}
	if est.Timeout() != MinBuildTimeout {
		t.Fatalf("timeout %v, want the minimum", est.Timeout())
	}
	f := &fakeBuild{}
	f.fail = func(path []*Descriptor, ctx context.Context) error {
		f.mu.Lock()
		first := len(f.paths) == 1
		f.mu.Unlock()
		if first {
			<-ctx.Done() // a hop that never answers
			return ctx.Err()
		}
		return nil
	}
	b := NewBuilder(d, f.build, BuilderOptions{Estimator: est})
	start := time.Now()
	_, path, err := b.Build(context.Background(), PathRequest{Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < MinBuildTimeout {
		t.Fatalf("first attempt ended after %v, before the timeout", took)
	}
	slow := f.paths[0]
	if !containsID(d.Relays(), slow[0].PeerID) {
		t.Fatal("a timeout marked the guard down")
	}
	for _, h := range slow[1:] {
		if containsID(d.Relays(), h.PeerID) {
			t.Fatal("relay of a timed-out build still chosen")
		}
	}
	if path[0].PeerID != slow[0].PeerID {
		t.Fatal("guard changed after a timeout")
	}
}

func TestBuilderGivesUp(t *testing.T) {
	now := time.Now()
	d := offlineDiscovery(t, fabricateNet(t, now, 24))
	boom := errors.New("boom")
	f := &fakeBuild{fail: func([]*Descriptor, context.Context) error { return boom }}
	b := NewBuilder(d, f.build, BuilderOptions{MaxAttempts: 3})
	_, _, err := b.Build(context.Background(), PathRequest{Port: 443})
	if !errors.Is(err, ErrBuildFailed) || !errors.Is(err, boom) || len(f.paths) != 3 {
		t.Fatalf("err %v after %d attempts", err, len(f.paths))
	}

	_, _, err = b.Build(context.Background(), PathRequest{Port: 25})
	if !errors.Is(err, ErrBuildFailed) || !errors.Is(err, ErrNoExit) {
		t.Fatalf("no exit: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	f.fail = func([]*Descriptor, context.Context) error { cancel(); return context.Canceled }
	before := len(f.paths)
	if _, _, err := b.Build(ctx, PathRequest{Port: 443}); !errors.Is(err, context.Canceled) || len(f.paths) != before+1 {
		t.Fatalf("cancelled build: %v after %d attempts", err, len(f.paths)-before)
	}
}

// TestBuilderLocalFailure: a failure that is the client's own (a
// LocalError: no admission token) marks no relay, counts nothing against
// the guard, and is not retried through other paths.
func TestBuilderLocalFailure(t *testing.T) {
	now := time.Now()
	relays := fabricateNet(t, now, 24)
	d := offlineDiscovery(t, relays)
	noTokens := errors.New("no tokens")
	f := &fakeBuild{fail: func([]*Descriptor, context.Context) error { return &LocalError{Err: noTokens} }}
	b := NewBuilder(d, f.build, BuilderOptions{MaxAttempts: 3})
	for range 5 {
		if _, _, err := b.Build(t.Context(), PathRequest{Port: 443}); !errors.Is(err, ErrBuildFailed) || !errors.Is(err, noTokens) {
			t.Fatalf("err %v", err)
		}
	}
	if len(f.paths) != 5 {
		t.Fatalf("%d attempts for 5 builds, want one each", len(f.paths))
	}
	if n := len(d.Relays()); n != len(relays) {
		t.Fatalf("%d of %d relays usable after local failures", n, len(relays))
	}
	for _, gi := range d.Guards() {
		if gi.Failures != 0 {
			t.Fatalf("guard %s: %d failures counted for the client's own", gi.ID, gi.Failures)
		}
	}
}

func TestTimeoutEstimator(t *testing.T) {
	e := NewTimeoutEstimator()
	for i := range buildMinSamples - 1 {
		e.Success(time.Duration(i+1) * time.Second)
	}
	if e.Timeout() != DefaultBuildTimeout {
		t.Fatalf("timeout with %d samples %v", e.Samples(), e.Timeout())
	}
	e.Success(20 * time.Second) // samples 1s..20s: P80 is 16s
	if got, want := e.Timeout(), 24*time.Second; got != want {
		t.Fatalf("timeout %v, want %v", got, want)
	}
	for range buildWindow {
		e.Success(100 * time.Second)
	}
	if e.Samples() != buildWindow || e.Timeout() != MaxBuildTimeout {
		t.Fatalf("%d samples, timeout %v", e.Samples(), e.Timeout())
	}
	for range buildWindow {
		e.Success(2 * time.Millisecond)
	}
	if e.Timeout() != MinBuildTimeout {
		t.Fatalf("old samples not forgotten: %v", e.Timeout())
	}
	for range buildTimeoutsToReset - 1 {
		e.TimedOut()
	}
	e.Success(time.Millisecond) // a success breaks the run of timeouts
	for range buildTimeoutsToReset - 1 {
		e.TimedOut()
	}
	if e.Samples() == 0 {
		t.Fatal("reset without enough consecutive timeouts")
	}
	e.TimedOut()
	if e.Samples() != 0 || e.Timeout() != DefaultBuildTimeout {
		t.Fatal("consecutive timeouts did not reset the estimate")
	}
}

// TestBuilderStallWithinCallerDeadline: a caller's deadline no longer than
// the learned timeout (the pool gives a build as long as the Builder's
// default) still leaves room for the stalled first attempt to time out,
// be reported and be retried on another path.
func TestBuilderStallWithinCallerDeadline(t *testing.T) {
	now := time.Now()
	d := offlineDiscovery(t, fabricateNet(t, now, 24))
	est := NewTimeoutEstimator()
	if est.Timeout() != DefaultBuildTimeout {
		t.Fatalf("fresh estimator timeout %v", est.Timeout())
	}
	f := &fakeBuild{}
	f.fail = func(path []*Descriptor, ctx context.Context) error {
		f.mu.Lock()
		first := len(f.paths) == 1
		f.mu.Unlock()
		if first {
			<-ctx.Done() // silently stalled
			return ctx.Err()
		}
		return nil
	}
	b := NewBuilder(d, f.build, BuilderOptions{Estimator: est})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _, err := b.Build(ctx, PathRequest{Port: 443})
	if err != nil {
		t.Fatalf("build within the caller's deadline: %v after %d attempts", err, len(f.paths))
	}
	if len(f.paths) != 2 {
		t.Fatalf("%d attempts, want 2", len(f.paths))
	}
	for _, h := range f.paths[0][1:] {
		if containsID(d.Relays(), h.PeerID) {
			t.Fatal("relay of the stalled attempt not marked suspect")
		}
	}
}

// TestBuilderCallerDeadlineReports: an attempt ended by the caller's
// deadline still marks its relays suspect; one ended by cancellation does not.
func TestBuilderCallerDeadlineReports(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cancel  bool
		suspect bool
	}{{"deadline", false, true}, {"canceled", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			d := offlineDiscovery(t, fabricateNet(t, time.Now(), 24))
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			f := &fakeBuild{fail: func(_ []*Descriptor, actx context.Context) error {
				if tc.cancel {
					cancel()
				}
				<-actx.Done()
				return actx.Err()
			}}
			b := NewBuilder(d, f.build, BuilderOptions{})
			if _, _, err := b.Build(ctx, PathRequest{Port: 443}); err == nil {
				t.Fatal("stalled build succeeded")
			}
			for _, h := range f.paths[0][1:] {
				if got := !containsID(d.Relays(), h.PeerID); got != tc.suspect {
					t.Fatalf("relay suspect %v, want %v", got, tc.suspect)
				}
			}
		})
	}
}
