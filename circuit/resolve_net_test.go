package circuit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
)

// heldResolver answers every name with 192.0.2.1 once released; it holds
// lookups to show the exit's cap on pending resolutions.
type heldResolver struct {
	release chan struct{}
	mu      sync.Mutex
	waiting int
}

func (h *heldResolver) DialExit(context.Context, string, uint16) (net.Conn, error) {
	return nil, errors.New("no streams here")
}

func (h *heldResolver) ResolveExit(ctx context.Context, _ string) ([]netip.Addr, error) {
	h.mu.Lock()
	h.waiting++
	h.mu.Unlock()
	select {
	case <-h.release:
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *heldResolver) ResolvePTRExit(context.Context, netip.Addr) (string, error) {
	return "", errors.New("no PTR")
}

func (h *heldResolver) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}

// A circuit has at most maxPendingResolves resolutions in flight at its
// exit: one more is refused at once, and the held ones are answered once
// the resolver answers. A relay that is not an exit answers "not an exit".
func TestResolvePendingCap(t *testing.T) {
	h := &heldResolver{release: make(chan struct{})}
	n := newTestNet(t, netOpts{relays: 2, exit: func(i int) ExitDialer {
		if i == 1 {
			return h
		}
		return nil
	}})
	c := n.build(t, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, maxPendingResolves)
	for range maxPendingResolves {
		go func() {
			a, err := c.Resolve(ctx, "held.test")
			if err == nil && (len(a) != 1 || a[0] != netip.MustParseAddr("192.0.2.1")) {
				err = errors.New("wrong answer")
			}
			errs <- err
		}()
	}
	for h.held() < maxPendingResolves {
		if ctx.Err() != nil {
			t.Fatalf("%d resolutions reached the exit", h.held())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.Resolve(ctx, "one-more.test"); !errors.Is(err, endreason.ErrMisc) {
		t.Fatalf("resolution beyond the cap: %v, want ErrMisc", err)
	}
	close(h.release)
	for range maxPendingResolves {
		if err := <-errs; err != nil {
			t.Fatalf("held resolution: %v", err)
		}
	}
	// The middle relay (no exit) refuses.
	c1 := n.build(t, 0)
	if _, err := c1.Resolve(ctx, "x.test"); !errors.Is(err, endreason.ErrNotExit) {
		t.Fatalf("resolve at a non-exit: %v, want ErrNotExit", err)
	}
}
