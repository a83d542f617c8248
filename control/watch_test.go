package control_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/control/client"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/web"
)

// fakePool is a control.Pool whose events and counters the test drives.
type fakePool struct {
	mu       sync.Mutex
	observer func(proxy.PoolEvent)
	failures uint64
	guards   []string
}

var _ control.Pool = (*fakePool)(nil)

func (p *fakePool) SetObserver(f func(proxy.PoolEvent)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observer = f
}

func (p *fakePool) Stats() proxy.PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return proxy.PoolStats{BuildFailures: p.failures}
}

// CircuitFor answers circuit 5 for the key "alice".
func (p *fakePool) CircuitFor(key string) (proxy.CircuitInfo, bool) {
	if key == "alice" {
		return proxy.CircuitInfo{ID: 5}, true
	}
	return proxy.CircuitInfo{}, false
}

// NewCircuitFor retires two circuits of "alice"'s, none of others'.
func (p *fakePool) NewCircuitFor(key string) int {
	if key == "alice" {
		return 2
	}
	return 0
}

func (p *fakePool) emit(e proxy.PoolEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.observer != nil {
		p.observer(e)
	}
}

func (p *fakePool) observed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.observer != nil
}

func (p *fakePool) Guards() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.guards)
}

// TestWatch: the pool's events become circuit_built and circuit_closed, a
// rising failure counter one circuit_failed per failure, and a change of
// guards guards_changed (not the first guards seen); Watch ends with its
// context and takes its observer back.
func TestWatch(t *testing.T) {
	s, c := serveTest(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p := &fakePool{failures: 3, guards: []string{"aaaa"}}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(wctx, p, p.Guards, 5*time.Millisecond)
	}()
	for !p.observed() {
		select {
		case <-ctx.Done():
			t.Fatal("Watch set no observer")
		case <-time.After(time.Millisecond):
		}
	}
	next := func() control.Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return control.Event{}
	}

	p.emit(proxy.PoolEvent{Built: true, ID: 7})
	if e := next(); e.Type != control.EventCircuitBuilt || e.Circuit != 7 {
		t.Fatalf("event %+v, want circuit_built 7", e)
	}
	p.emit(proxy.PoolEvent{ID: 7, Group: 2})
	if e := next(); e.Type != control.EventCircuitClosed || e.Circuit != 7 || e.Group != 2 {
		t.Fatalf("event %+v, want circuit_closed 7 of group 2", e)
	}
	p.mu.Lock()
	p.failures += 2
	p.mu.Unlock()
	for range 2 {
		if e := next(); e.Type != control.EventCircuitFailed || e.Message == "" {
			t.Fatalf("event %+v, want circuit_failed", e)
		}
	}
	p.mu.Lock()
	p.guards = []string{"aaaa", "bbbb"}
	p.mu.Unlock()
	if e := next(); e.Type != control.EventGuardsChanged || !slices.Equal(e.Guards, []string{"aaaa", "bbbb"}) {
		t.Fatalf("event %+v, want guards_changed", e)
	}

	stop()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Watch did not end with its context")
	}
	if p.observed() {
		t.Fatal("Watch left its observer on the pool")
	}
}

// TestWatchWithoutPool: a node without a client has only guards to watch.
func TestWatchWithoutPool(t *testing.T) {
	s, err := control.Listen("127.0.0.1:0", filepath.Join(t.TempDir(), control.CookieFile), &statusBackend{}, noKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	calls := 0
	s.Watch(ctx, nil, func() []string { calls++; return nil }, 5*time.Millisecond)
	if calls == 0 {
		t.Fatal("Watch never read the guards")
	}
}

// TestServePoolEndsAtClose: the watcher ServePool runs observes the pool
// until Close, which waits for it (the pool's observer is unset after).
func TestServePoolEndsAtClose(t *testing.T) {
	s, err := control.Listen("127.0.0.1:0", filepath.Join(t.TempDir(), control.CookieFile), &statusBackend{}, noKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePool{}
	s.ServePool(p, p.Guards, 5*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for !p.observed() {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never set the pool's observer")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if p.observed() {
		t.Fatal("Close returned with the watcher still observing the pool")
	}
	s.ServePool(p, p.Guards, 5*time.Millisecond) // after Close: no watcher runs
	if p.observed() {
		t.Fatal("ServePool after Close observes the pool")
	}
}

// circuitBackend's status has circuit 5.
type circuitBackend struct{ statusBackend }

func (b *circuitBackend) Status() web.Status {
	return web.Status{Client: &web.ClientStatus{Circuits: []web.CircuitStatus{{ID: 5, State: "in use"}}}}
}

// TestServePoolCircuits: the circuit requests answer from the pool given
// to ServePool (the key's circuit as the status shows it, none for a key
// without one, the count a new circuit retired), and ErrUnavailable (409)
// before it and with no pool.
func TestServePoolCircuits(t *testing.T) {
	for _, withPool := range []bool{true, false} {
		t.Run(fmt.Sprint("pool ", withPool), func(t *testing.T) {
			byUser := func(iso control.Isolation) (string, error) { return iso.Username, nil }
			s, c := serveTest(t, &circuitBackend{}, byUser)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			alice := control.Isolation{Proxy: "socks", Username: "alice"}
			if _, err := c.Circuit(ctx, alice); !client.IsStatus(err, http.StatusConflict) {
				t.Fatalf("before ServePool: %v, want 409", err)
			}
			var pool control.Pool
			if withPool {
				pool = &fakePool{}
			}
			s.ServePool(pool, func() []string { return nil }, time.Hour)
			if !withPool {
				if _, err := c.NewCircuit(ctx, alice); !client.IsStatus(err, http.StatusConflict) {
					t.Fatalf("no pool: %v, want 409", err)
				}
				return
			}
			if ci, err := c.Circuit(ctx, alice); err != nil || ci == nil || ci.ID != 5 {
				t.Fatalf("alice's circuit %+v, %v; want circuit 5", ci, err)
			}
			if ci, err := c.Circuit(ctx, control.Isolation{Proxy: "socks", Username: "bob"}); err != nil || ci != nil {
				t.Fatalf("bob's circuit %+v, %v; want none", ci, err)
			}
			if n, err := c.NewCircuit(ctx, alice); err != nil || n != 2 {
				t.Fatalf("new circuit: %d, %v; want 2 retired", n, err)
			}
		})
	}
}
