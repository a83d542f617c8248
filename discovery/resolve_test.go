package discovery

import (
	"errors"
	"slices"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// TestRelayAddrs: a relay without a directory answers for another relay
// from its descriptor in the DHT, and refuses a peer without one, looking
// it up only once a minute.
func TestRelayAddrs(t *testing.T) {
	net := newTestNetwork(t, 3)
	ctx := testContext(t, time.Minute)
	asker, other := net.relays[0], net.relays[1]
	got, err := asker.d.RelayAddrs(ctx, other.h.ID())
	if err != nil {
		t.Fatalf("addresses of a published relay: %v", err)
	}
	desc, ok := asker.d.Descriptor(other.h.ID())
	if !ok || !slices.EqualFunc(got, desc.Addrs, func(a, b ma.Multiaddr) bool { return a.Equal(b) }) {
		t.Fatalf("addresses %v, want the verified descriptor's", got)
	}
	stranger := newHost(t).ID()
	for i := range 2 {
		start := time.Now()
		_, err := asker.d.RelayAddrs(ctx, stranger)
		if !errors.Is(err, ErrUnknownRelay) {
			t.Fatalf("lookup %d of a peer without a descriptor: %v, want ErrUnknownRelay", i, err)
		}
		if i == 1 && time.Since(start) > time.Second {
			t.Fatalf("second lookup took %v: not cached", time.Since(start))
		}
	}
}
