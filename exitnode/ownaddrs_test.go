package exitnode_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/exitnode"
)

func TestOwnIPs(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		want  []string
	}{
		{"none", nil, nil},
		{"sorted and distinct", []string{"/ip4/10.0.0.2/tcp/1", "/ip4/10.0.0.1/udp/2/quic-v1", "/ip4/10.0.0.2/tcp/3"}, []string{"10.0.0.1", "10.0.0.2"}},
		{"unspecified dropped", []string{"/ip4/0.0.0.0/tcp/1", "/ip6/::/tcp/1", "/ip6/2001:db8::1/tcp/1"}, []string{"2001:db8::1"}},
		{"mapped unmapped", []string{"/ip6/::ffff:192.0.2.7/tcp/1", "/ip4/192.0.2.7/tcp/1"}, []string{"192.0.2.7"}},
		{"no IP", []string{"/dns4/example.com/tcp/1", "/ip4/127.0.0.1/tcp/1"}, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []ma.Multiaddr
			for _, s := range tt.addrs {
				addrs = append(addrs, ma.StringCast(s))
			}
			var got []string
			for _, a := range exitnode.OwnIPs(addrs) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("OwnIPs = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestKeepOwnAddrs: a change notice with new addresses applies them, one
// with the same addresses applies nothing, an apply that fails is tried
// again, and the loop ends with its context.
func TestKeepOwnAddrs(t *testing.T) {
	a := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	b := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.9")}
	var mu sync.Mutex
	cur := a
	fail := true
	applied := make(chan []netip.Addr, 10)
	changed := make(chan any)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		exitnode.KeepOwnAddrs(ctx, changed, time.Hour, a, func() []netip.Addr {
			mu.Lock()
			defer mu.Unlock()
			return cur
		}, func(addrs []netip.Addr) error {
			mu.Lock()
			defer mu.Unlock()
			applied <- addrs
			if fail {
				fail = false
				return errors.New("bad policy")
			}
			return nil
		})
	}()
	wait := func() []netip.Addr {
		t.Helper()
		select {
		case got := <-applied:
			return got
		case <-time.After(10 * time.Second):
			t.Fatal("nothing applied")
		}
		return nil
	}
	changed <- struct{}{} // same addresses: nothing
	mu.Lock()
	cur = b
	mu.Unlock()
	changed <- struct{}{}
	if got := wait(); !slices.Equal(got, b) {
		t.Fatalf("applied %v, want %v", got, b)
	}
	changed <- struct{}{} // the first apply failed: again
	if got := wait(); !slices.Equal(got, b) {
		t.Fatalf("applied %v again, want %v", got, b)
	}
	changed <- struct{}{} // applied: nothing
	cancel()
	<-done
	if len(applied) != 0 {
		t.Fatalf("applied %v with unchanged addresses", <-applied)
	}
}
